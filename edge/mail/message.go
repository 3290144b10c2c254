package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one email.
type Message struct {
	// To is the single recipient: "user@example.com" or "Name <user@example.com>".
	To string
	// Subject is any UTF-8 text without line breaks; non-ASCII is RFC 2047 encoded.
	Subject string
	// Text is the plain-text part. One-time codes must appear here (CONTRACT.md "Email").
	Text string
	// HTML is the optional HTML part; when set the message is multipart/alternative.
	HTML string
	// Tenant names the tenant the message is sent for, for the log and the outbox file name. It is not
	// written into the message.
	Tenant string
}

// DefaultFrom is the From address used by [Outbox], and by [SMTP] when [SMTPConfig].From is empty.
const DefaultFrom = "Postern <no-reply@localhost>"

// ErrLineBreak is wrapped by the error [Compose] returns when a header value (From, To or Subject) contains
// CR or LF: such a value could add headers of its own, so it is refused, never cleaned.
var ErrLineBreak = errors.New("contains a line break")

// maxLine is RFC 5322 section 2.1.1's hard limit on a line, without its CRLF.
const maxLine = 998

// foldAt is the line length RFC 5322 section 2.1.1 recommends; headers are folded at spaces to stay under
// it where they can.
const foldAt = 78

// Compose builds the RFC 5322 bytes of m, sent from the address from, dated now.
//
// The result has CRLF line endings and these headers, in this order: From, To, Subject (RFC 2047 encoded
// when not ASCII), Date, Message-ID (random, at the domain of from), MIME-Version, Auto-Submitted
// (auto-generated, RFC 3834, so vacation responders stay quiet), Content-Type and, for a single part,
// Content-Transfer-Encoding. With m.HTML empty the body is text/plain; charset=utf-8, otherwise
// multipart/alternative with the text part first; every part is quoted-printable.
//
// Compose refuses, with an error, a From, To or Subject containing CR or LF (wrapping [ErrLineBreak]) or
// another control character, an address that does not parse or is not ASCII (SMTPUTF8 is not supported),
// an empty Text, and text that is not valid UTF-8.
func Compose(from string, m Message, now time.Time) ([]byte, error) {
	return compose(from, m, now, rand.Reader)
}

// compose is Compose with the source of the Message-ID and the MIME boundary given, so that tests can
// fix them.
func compose(from string, m Message, now time.Time, random io.Reader) ([]byte, error) {
	fromAddr, err := parseAddress("from", from)
	if err != nil {
		return nil, fmt.Errorf("composing message: %w", err)
	}
	toAddr, err := parseAddress("to", m.To)
	if err != nil {
		return nil, fmt.Errorf("composing message: %w", err)
	}
	if err := checkHeaderValue("subject", m.Subject); err != nil {
		return nil, fmt.Errorf("composing message: %w", err)
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, errors.New("composing message: text is empty (the plain-text part is required)")
	}
	if !utf8.ValidString(m.Text) {
		return nil, errors.New("composing message: text is not valid UTF-8")
	}
	if !utf8.ValidString(m.HTML) {
		return nil, errors.New("composing message: html is not valid UTF-8")
	}

	var id [16]byte
	if _, err := io.ReadFull(random, id[:]); err != nil {
		return nil, fmt.Errorf("composing message: generating Message-ID: %w", err)
	}
	domain := fromAddr.Address[strings.LastIndexByte(fromAddr.Address, '@')+1:]

	var b bytes.Buffer
	h := headerWriter{b: &b}
	h.field("From", fromAddr.String())
	h.field("To", toAddr.String())
	h.field("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h.field("Date", now.Format(time.RFC1123Z))
	h.field("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	h.field("MIME-Version", "1.0")
	h.field("Auto-Submitted", "auto-generated")

	if m.HTML == "" {
		h.field("Content-Type", "text/plain; charset=utf-8")
		h.field("Content-Transfer-Encoding", "quoted-printable")
		if h.err != nil {
			return nil, fmt.Errorf("composing message: %w", h.err)
		}
		b.WriteString("\r\n")
		writeQP(&b, m.Text)
		return b.Bytes(), nil
	}

	var bnd [12]byte
	if _, err := io.ReadFull(random, bnd[:]); err != nil {
		return nil, fmt.Errorf("composing message: generating MIME boundary: %w", err)
	}
	// A quoted-printable body never contains "=_" ("=" always starts a hex pair or a soft line break), so
	// this boundary cannot occur in any part (RFC 2045 section 6.7, RFC 2046 section 5.1.1).
	boundary := "=_postern_" + hex.EncodeToString(bnd[:])
	h.field("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": boundary}))
	if h.err != nil {
		return nil, fmt.Errorf("composing message: %w", h.err)
	}
	b.WriteString("\r\n")
	for i, part := range []struct{ mediaType, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("--" + boundary + "\r\n")
		b.WriteString("Content-Type: " + part.mediaType + "\r\n")
		b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		writeQP(&b, part.body)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// parseAddress parses one address of the header field named field, refusing line breaks, control
// characters and non-ASCII addresses.
func parseAddress(field, s string) (*mail.Address, error) {
	if err := checkHeaderValue(field, s); err != nil {
		return nil, err
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s is empty", field)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%s is not one valid address: %w", field, err)
	}
	for i := 0; i < len(a.Address); i++ {
		if a.Address[i] >= utf8.RuneSelf {
			return nil, fmt.Errorf("%s address is not ASCII (internationalized addresses are not supported)", field)
		}
	}
	return a, nil
}

// checkHeaderValue refuses a header value that could break out of its header line.
func checkHeaderValue(field, s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("%s %w", field, ErrLineBreak)
	}
	for _, r := range s {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return fmt.Errorf("%s contains a control character", field)
		}
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	return nil
}

// headerWriter writes header fields, folding them at spaces (RFC 5322 section 2.2.3). The first error
// sticks.
type headerWriter struct {
	b   *bytes.Buffer
	err error
}

func (h *headerWriter) field(name, value string) {
	if h.err != nil {
		return
	}
	line := name + ":"
	for _, word := range strings.Split(value, " ") {
		if len(line)+1+len(word) > foldAt && line != name+":" {
			h.b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + word
		if len(line) > maxLine {
			h.err = fmt.Errorf("%s has a word too long for a header line", strings.ToLower(name))
			return
		}
	}
	h.b.WriteString(line + "\r\n")
}

// writeQP writes s quoted-printable with CRLF line endings, ending in a line break.
func writeQP(b *bytes.Buffer, s string) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	w := quotedprintable.NewWriter(b)
	// Writes to a bytes.Buffer cannot fail.
	_, _ = io.WriteString(w, s)
	_ = w.Close()
}
