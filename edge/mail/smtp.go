package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/smtp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The values of [SMTPConfig].TLS.
const (
	// TLSNone speaks plain SMTP. It is allowed only to a loopback address (a local relay or a test server).
	TLSNone = "none"
	// TLSStartTLS upgrades with STARTTLS (RFC 3207) and fails when the server does not offer it. It is the
	// default.
	TLSStartTLS = "starttls"
	// TLSImplicit starts TLS before SMTP, as on port 465 (RFC 8314).
	TLSImplicit = "tls"
)

// DefaultTimeout bounds the delivery of one message when [SMTPConfig].Timeout is zero.
const DefaultTimeout = 10 * time.Second

// SMTPConfig configures an [SMTP] sender. Its String and LogValue methods never show the password.
type SMTPConfig struct {
	// Addr is the server's host:port.
	Addr string
	// From is the envelope and header From, e.g. "Postern <no-reply@example.com>". Default: [DefaultFrom].
	From string
	// TLS is [TLSNone], [TLSStartTLS] (the default when empty) or [TLSImplicit].
	TLS string
	// Username and Password, when set, authenticate with AUTH PLAIN (RFC 4616), which is used only over
	// TLS or to a loopback address. Set both or neither.
	Username, Password string
	// ServerName is the name the server's certificate must hold. Default: the host of Addr.
	ServerName string
	// InsecureSkipVerify accepts any certificate. For development only.
	InsecureSkipVerify bool
	// RootCAs verifies the server's certificate. Default: the system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds the delivery of one message, from dialling to the reply after DATA. Default:
	// [DefaultTimeout].
	Timeout time.Duration
	// HelloName is the name given in EHLO. Default: "localhost".
	HelloName string
}

// String describes c without its password.
func (c SMTPConfig) String() string {
	return fmt.Sprintf("smtp %s tls=%s from=%q user=%q password=%s", c.Addr, c.TLS, c.From, c.Username, redacted(c.Password))
}

// GoString is String, so that %#v does not show the password either.
func (c SMTPConfig) GoString() string { return c.String() }

// LogValue describes c for slog without its password.
func (c SMTPConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("tls", c.TLS),
		slog.String("from", c.From),
		slog.String("username", c.Username),
		slog.String("password", redacted(c.Password)),
	)
}

func redacted(secret string) string {
	if secret == "" {
		return "(none)"
	}
	return "(redacted)"
}

// SMTP sends each message over its own connection to an SMTP server. It is safe for concurrent use.
type SMTP struct {
	addr, host   string
	from         string // the header From
	envelopeFrom string // the bare address for MAIL FROM
	mode         string
	username     string
	password     string
	helloName    string
	timeout      time.Duration
	tlsConfig    *tls.Config
}

// NewSMTP validates cfg and returns a sender that delivers through the server it names. It does not
// connect; the first Send does.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	s, err := newSMTP(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring smtp: %w", err)
	}
	return s, nil
}

func newSMTP(cfg SMTPConfig) (*SMTP, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q is not host:port: %w", cfg.Addr, err)
	}
	if host == "" {
		return nil, fmt.Errorf("address %q has no host", cfg.Addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("address %q: port must be a number from 1 to 65535", cfg.Addr)
	}

	s := &SMTP{
		addr:      cfg.Addr,
		host:      host,
		from:      cfg.From,
		mode:      cfg.TLS,
		username:  cfg.Username,
		password:  cfg.Password,
		helloName: cfg.HelloName,
		timeout:   cfg.Timeout,
	}
	if s.from == "" {
		s.from = DefaultFrom
	}
	from, err := parseAddress("from", s.from)
	if err != nil {
		return nil, err
	}
	s.envelopeFrom = from.Address

	switch s.mode {
	case "":
		s.mode = TLSStartTLS
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return nil, fmt.Errorf("tls %q is not one of %q, %q, %q", cfg.TLS, TLSNone, TLSStartTLS, TLSImplicit)
	}
	if s.mode == TLSNone && !isLoopbackHost(host) {
		return nil, fmt.Errorf("tls %q (plain SMTP) is allowed only to a loopback address, not %q; use %q or %q",
			TLSNone, host, TLSStartTLS, TLSImplicit)
	}

	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("username and password must be set together")
	}
	if strings.ContainsRune(cfg.Username, 0) || strings.ContainsRune(cfg.Password, 0) {
		return nil, errors.New("username and password must not contain NUL (AUTH PLAIN cannot carry it)")
	}

	if s.timeout < 0 {
		return nil, fmt.Errorf("timeout %s is negative", s.timeout)
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.helloName == "" {
		s.helloName = "localhost"
	}
	if strings.ContainsAny(s.helloName, " \t\r\n") {
		return nil, fmt.Errorf("hello name %q contains white space", s.helloName)
	}

	serverName := cfg.ServerName
	if serverName == "" {
		serverName = host
	}
	s.tlsConfig = &tls.Config{
		ServerName:         serverName,
		RootCAs:            cfg.RootCAs,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
	return s, nil
}

// isLoopbackHost reports whether host names the loopback interface: "localhost" or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Send composes m and delivers it. It returns nil once the server has accepted the message after DATA,
// and an error, at the latest when the configured timeout or ctx ends, otherwise.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := Compose(s.from, m, time.Now())
	if err != nil {
		return fmt.Errorf("sending mail: %w", err)
	}
	to, err := mail.ParseAddress(m.To) // Compose has checked it.
	if err != nil {
		return fmt.Errorf("sending mail: %w", err)
	}
	if err := s.deliver(ctx, to.Address, msg); err != nil {
		return fmt.Errorf("sending mail via %s: %w", s.addr, err)
	}
	return nil
}

// deliver runs one SMTP transaction for msg to the recipient rcpt.
func (s *SMTP) deliver(ctx context.Context, rcpt string, msg []byte) error {
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout,
		fmt.Errorf("no answer within %s: %w", s.timeout, context.DeadlineExceeded))
	defer cancel()
	// fail names the step that failed and, when the deadline or the caller ended it, says so.
	fail := func(step string, err error) error {
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("%s: %w (%v)", step, cause, err)
		}
		return fmt.Errorf("%s: %w", step, err)
	}

	dialer := &net.Dialer{}
	var conn net.Conn
	var err error
	if s.mode == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: s.tlsConfig}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fail("connecting", err)
	}
	defer conn.Close()

	loopback := false
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		loopback = ta.IP.IsLoopback()
	}
	if s.mode == TLSNone && !loopback {
		return fmt.Errorf("connecting: %s resolved to %s, which is not loopback; refusing plain SMTP",
			s.host, conn.RemoteAddr())
	}

	// net/smtp knows no contexts. When ctx ends (its deadline or the caller's cancel), the connection's
	// deadline moves into the past, which interrupts the read or write in progress; ctx is done by then,
	// so fail can say why. The connection's own deadline, a second later, is only a backstop.
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline.Add(time.Second)); err != nil {
		return fail("setting deadline", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fail("reading greeting", err)
	}
	if err := c.Hello(s.helloName); err != nil {
		return fail("saying hello", err)
	}

	if s.mode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("server does not offer STARTTLS, which tls %q requires", TLSStartTLS)
		}
		if err := c.StartTLS(s.tlsConfig); err != nil {
			return fail("starting TLS", err)
		}
	}

	if s.username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return errors.New("server does not offer AUTH PLAIN, and a username is configured")
		}
		if err := c.Auth(plainAuth{username: s.username, password: s.password, loopback: loopback}); err != nil {
			return fail(fmt.Sprintf("authenticating as %q", s.username), err)
		}
	}

	if err := c.Mail(s.envelopeFrom); err != nil {
		return fail("MAIL FROM", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fail("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail("writing message", err)
	}
	if err := w.Close(); err != nil {
		return fail("ending message", err)
	}
	// The server has accepted the message; a failing QUIT does not change that.
	_ = c.Quit()
	return nil
}

// plainAuth is SASL PLAIN (RFC 4616) that, unlike net/smtp's PlainAuth, trusts the loopback check made on
// the connected address rather than the configured host name.
type plainAuth struct {
	username, password string
	loopback           bool
}

func (a plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !a.loopback {
		return "", nil, errors.New("refusing AUTH PLAIN over an unencrypted connection to a non-loopback server")
	}
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge after AUTH PLAIN")
	}
	return nil, nil
}
