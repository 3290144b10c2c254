package mail

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// counting is a deterministic stand-in for crypto/rand: 0x00, 0x01, 0x02, …
type counting struct{ n byte }

func (c *counting) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

var composeTime = time.Date(2026, time.March, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))

func TestComposeGolden(t *testing.T) {
	tests := []struct {
		name string
		from string
		m    Message
		// wantSubject is the decoded Subject; wantText must appear in the decoded plain-text part.
		wantSubject, wantText, wantHTML string
	}{
		{
			name: "text",
			from: DefaultFrom,
			m: Message{
				To: "ada@example.com", Subject: "Your verification code", Tenant: "acme",
				Text: "Your code is 493027.\nIt expires in 10 minutes.\n",
			},
			wantSubject: "Your verification code", wantText: "Your code is 493027.",
		},
		{
			name: "alternative",
			from: `"Acme Shop" <no-reply@acme.example>`,
			m: Message{
				To: "Ada Lovelace <ada@example.com>", Subject: "Your verification code",
				Text: "Your code is 49302718.",
				HTML: `<p style="font-size:20px">Your code is <b>49302718</b>.</p>`,
			},
			wantSubject: "Your verification code", wantText: "Your code is 49302718.",
			wantHTML: `<p style="font-size:20px">Your code is <b>49302718</b>.</p>`,
		},
		{
			// RFC 2047: non-ASCII Subject and display names become encoded words; the body is
			// quoted-printable UTF-8.
			name: "non-ascii",
			from: "Café Crème <bonjour@creme.example>",
			m: Message{
				To: "Zoë Ångström <zoe@example.com>", Subject: "Votre code de vérification — 123456",
				Text: "Bonjour Zoë,\r\nvotre code est 123456.\r\n",
			},
			wantSubject: "Votre code de vérification — 123456", wantText: "votre code est 123456.",
		},
		{
			// RFC 5322 section 2.2.3: a long header is folded at white space.
			name: "folded",
			from: DefaultFrom,
			m: Message{
				To:      "ada@example.com",
				Subject: "A rather long subject line that goes on and on so that it has to be folded over more than one line of the header",
				Text:    "Code: 000111\n\n. a line starting with a dot\ntrailing space \nlong: " + strings.Repeat("0123456789", 10),
			},
			wantSubject: "A rather long subject line that goes on and on so that it has to be folded over more than one line of the header",
			wantText:    "Code: 000111",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := compose(tt.from, tt.m, composeTime, &counting{})
			if err != nil {
				t.Fatalf("compose: %v", err)
			}
			golden := filepath.Join("testdata", "compose", tt.name+".eml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("compose output differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}

			checkLines(t, got)
			p := parseMessage(t, got)
			if p.subject != tt.wantSubject {
				t.Errorf("Subject = %q, want %q", p.subject, tt.wantSubject)
			}
			if !strings.Contains(p.text, tt.wantText) {
				t.Errorf("text part %q does not contain %q", p.text, tt.wantText)
			}
			if p.html != tt.wantHTML {
				t.Errorf("html part = %q, want %q", p.html, tt.wantHTML)
			}
			if p.header.Get("Date") != "Sat, 14 Mar 2026 09:26:53 +0100" {
				t.Errorf("Date = %q", p.header.Get("Date"))
			}
		})
	}
}

func TestComposeRandomIDs(t *testing.T) {
	m := Message{To: "ada@example.com", Subject: "s", Text: "123456", HTML: "<p>123456</p>"}
	a, err := Compose(DefaultFrom, m, composeTime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compose(DefaultFrom, m, composeTime)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := parseMessage(t, a), parseMessage(t, b)
	if id := pa.header.Get("Message-ID"); id == pb.header.Get("Message-ID") || !strings.HasSuffix(id, "@localhost>") {
		t.Errorf("Message-IDs %q and %q: want distinct, at the From domain", id, pb.header.Get("Message-ID"))
	}
}

func TestComposeRefuses(t *testing.T) {
	ok := Message{To: "ada@example.com", Subject: "Your code", Text: "123456"}
	tests := []struct {
		name      string
		from      string
		edit      func(*Message)
		wantErr   string
		lineBreak bool
	}{
		{name: "to CRLF Bcc", edit: func(m *Message) { m.To = "ada@example.com\r\nBcc: eve@evil.example" }, wantErr: "to contains a line break", lineBreak: true},
		{name: "to LF", edit: func(m *Message) { m.To = "ada@example.com\nBcc: eve@evil.example" }, wantErr: "to contains a line break", lineBreak: true},
		{name: "to CR", edit: func(m *Message) { m.To = "ada@example.com\rBcc: eve@evil.example" }, wantErr: "to contains a line break", lineBreak: true},
		{name: "subject CRLF header", edit: func(m *Message) { m.Subject = "hi\r\nContent-Type: text/html" }, wantErr: "subject contains a line break", lineBreak: true},
		{name: "subject CRLF CRLF body", edit: func(m *Message) { m.Subject = "hi\r\n\r\nfake body" }, wantErr: "subject contains a line break", lineBreak: true},
		{name: "subject LF", edit: func(m *Message) { m.Subject = "hi\nX: y" }, wantErr: "subject contains a line break", lineBreak: true},
		{name: "from CRLF", from: "no-reply@localhost\r\nBcc: eve@evil.example", wantErr: "from contains a line break", lineBreak: true},
		{name: "display name CRLF", edit: func(m *Message) { m.To = "\"Ada\r\nBcc: eve@evil.example\" <ada@example.com>" }, wantErr: "to contains a line break", lineBreak: true},
		{name: "subject NUL", edit: func(m *Message) { m.Subject = "hi\x00" }, wantErr: "subject contains a control character"},
		{name: "subject invalid UTF-8", edit: func(m *Message) { m.Subject = "hi\xff" }, wantErr: "subject is not valid UTF-8"},
		{name: "to empty", edit: func(m *Message) { m.To = "" }, wantErr: "to is empty"},
		{name: "to two addresses", edit: func(m *Message) { m.To = "ada@example.com, eve@evil.example" }, wantErr: "to is not one valid address"},
		{name: "to no domain", edit: func(m *Message) { m.To = "ada" }, wantErr: "to is not one valid address"},
		{name: "to non-ASCII address", edit: func(m *Message) { m.To = "zoë@example.com" }, wantErr: "to address is not ASCII"},
		{name: "text empty", edit: func(m *Message) { m.Text = " \n" }, wantErr: "text is empty"},
		{name: "text invalid UTF-8", edit: func(m *Message) { m.Text = "123456 \xff" }, wantErr: "text is not valid UTF-8"},
		{name: "subject word too long", edit: func(m *Message) { m.Subject = strings.Repeat("x", 1000) }, wantErr: "subject has a word too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			if tt.edit != nil {
				tt.edit(&m)
			}
			from := DefaultFrom
			if tt.from != "" {
				from = tt.from
			}
			got, err := Compose(from, m, composeTime)
			if err == nil {
				t.Fatalf("Compose succeeded, want error %q; message:\n%s", tt.wantErr, got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrLineBreak) != tt.lineBreak {
				t.Errorf("errors.Is(err, ErrLineBreak) = %v, want %v", !tt.lineBreak, tt.lineBreak)
			}
		})
	}
}

// checkLines checks RFC 5322 section 2.1.1 and 2.3: CRLF only, lines at most 998 octets, headers folded
// to 78 where they have white space, 7-bit clean.
func checkLines(t *testing.T, msg []byte) {
	t.Helper()
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		t.Errorf("message does not end with CRLF")
	}
	inHeader := true
	for i, line := range strings.Split(strings.TrimSuffix(string(msg), "\r\n"), "\r\n") {
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if line == "" {
			inHeader = false
		}
		if len(line) > 998 || (inHeader && len(line) > 78) || (!inHeader && len(line) > 76) {
			t.Errorf("line %d is %d octets long: %q", i+1, len(line), line)
		}
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Errorf("line %d is not 7-bit: %q", i+1, line)
				break
			}
		}
	}
}

type parsed struct {
	header     mail.Header
	subject    string
	text, html string
}

// parseMessage reads msg as a mail client would: net/mail for the header, mime for the parts.
func parseMessage(t *testing.T, msg []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, msg)
	}
	var p parsed
	p.header = m.Header
	p.subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decoding Subject: %v", err)
	}
	for _, h := range []string{"From", "To"} {
		if _, err := m.Header.AddressList(h); err != nil {
			t.Errorf("header %s: %v", h, err)
		}
	}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	decode := func(cte, charset string, r io.Reader) string {
		t.Helper()
		if cte != "quoted-printable" || charset != "utf-8" {
			t.Errorf("part encoding %q, charset %q: want quoted-printable, utf-8", cte, charset)
		}
		b, err := io.ReadAll(quotedprintable.NewReader(r))
		if err != nil {
			t.Fatalf("decoding quoted-printable: %v", err)
		}
		return string(b)
	}
	switch mediaType {
	case "text/plain":
		p.text = decode(m.Header.Get("Content-Transfer-Encoding"), params["charset"], m.Body)
	case "multipart/alternative":
		mr := multipart.NewReader(m.Body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading part: %v", err)
			}
			pt, pp, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
			if err != nil {
				t.Fatalf("part Content-Type: %v", err)
			}
			body := decode(part.Header.Get("Content-Transfer-Encoding"), pp["charset"], part)
			switch pt {
			case "text/plain":
				p.text = body
			case "text/html":
				p.html = strings.TrimSuffix(body, "\r\n")
			default:
				t.Errorf("unexpected part %s", pt)
			}
		}
	default:
		t.Fatalf("Content-Type %s", mediaType)
	}
	return p
}
