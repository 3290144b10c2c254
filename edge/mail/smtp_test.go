package mail

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"
)

// The SMTP tests run a real server, emersion/go-smtp, on 127.0.0.1:0.

// received is one message as the test server got it.
type received struct {
	from, to string
	user     string // the AUTH PLAIN username, if any
	tls      bool   // whether the connection was encrypted when DATA came
	data     []byte
}

type serverOptions struct {
	starttls bool              // offer STARTTLS
	implicit bool              // TLS from the first byte
	users    map[string]string // when set, offer AUTH PLAIN and require it
	insecure bool              // AllowInsecureAuth: AUTH over plain connections
}

type testServer struct {
	addr string
	got  chan received
}

// startServer runs a go-smtp server until the test ends.
func startServer(t *testing.T, cert tls.Certificate, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{got: make(chan received, 16)}
	be := smtpd.BackendFunc(func(c *smtpd.Conn) (smtpd.Session, error) {
		return &session{ts: ts, conn: c, users: opts.users}, nil
	})
	s := smtpd.NewServer(be)
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.AllowInsecureAuth = opts.insecure
	s.ErrorLog = log.New(io.Discard, "", 0)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if opts.starttls {
		s.TLSConfig = tlsConfig
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.implicit {
		ln = tls.NewListener(ln, tlsConfig)
	}
	ts.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return ts
}

type session struct {
	ts    *testServer
	conn  *smtpd.Conn
	users map[string]string
	user  string
	authd bool
	msg   received
}

func (s *session) AuthMechanisms() []string {
	if s.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if want, ok := s.users[username]; !ok || want != password {
			return smtpd.ErrAuthFailed
		}
		s.user, s.authd = username, true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtpd.MailOptions) error {
	if s.users != nil && !s.authd {
		return smtpd.ErrAuthRequired
	}
	s.msg.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtpd.RcptOptions) error {
	if strings.HasPrefix(to, "nobody@") {
		return &smtpd.SMTPError{Code: 550, EnhancedCode: smtpd.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	}
	s.msg.to = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.msg.data, s.msg.user, s.msg.tls = b, s.user, isTLS
	s.ts.got <- s.msg
	return nil
}

func (s *session) Reset()        { s.msg = received{} }
func (s *session) Logout() error { return nil }

// testCert makes a self-signed certificate for localhost and 127.0.0.1, and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "postern test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

const testPassword = "s3cret-Pa55word"

var codeMessage = Message{
	To:      "Ada <ada@example.com>",
	Subject: "Vérifiez votre adresse",
	Text:    "Your verification code is 482915.\n",
	HTML:    "<p>Your verification code is <b>482915</b>.</p>",
	Tenant:  "acme",
}

func TestSMTPSend(t *testing.T) {
	cert, pool := testCert(t)
	users := map[string]string{"postern": testPassword}
	tests := []struct {
		name   string
		server serverOptions
		config SMTPConfig // Addr is filled in
		msg    *Message   // default codeMessage
		// wantErr is empty for a delivery, else a substring of the error.
		wantErr  string
		wantTLS  bool
		wantUser string
	}{
		{name: "plain to loopback", config: SMTPConfig{TLS: TLSNone}},
		{
			name: "plain to loopback with auth", server: serverOptions{users: users, insecure: true},
			config: SMTPConfig{TLS: TLSNone, Username: "postern", Password: testPassword}, wantUser: "postern",
		},
		{
			name: "starttls", server: serverOptions{starttls: true},
			config: SMTPConfig{TLS: TLSStartTLS, RootCAs: pool}, wantTLS: true,
		},
		{
			name: "starttls is the default", server: serverOptions{starttls: true},
			config: SMTPConfig{RootCAs: pool}, wantTLS: true,
		},
		{
			name: "starttls with auth accepted", server: serverOptions{starttls: true, users: users},
			config:  SMTPConfig{TLS: TLSStartTLS, RootCAs: pool, Username: "postern", Password: testPassword},
			wantTLS: true, wantUser: "postern",
		},
		{
			name: "starttls with auth refused", server: serverOptions{starttls: true, users: users},
			config:  SMTPConfig{TLS: TLSStartTLS, RootCAs: pool, Username: "postern", Password: testPassword + "x"},
			wantErr: `authenticating as "postern": 535`,
		},
		{
			name: "starttls required but not offered", server: serverOptions{},
			config:  SMTPConfig{TLS: TLSStartTLS, RootCAs: pool},
			wantErr: `server does not offer STARTTLS, which tls "starttls" requires`,
		},
		{
			name: "starttls with an untrusted certificate", server: serverOptions{starttls: true},
			config:  SMTPConfig{TLS: TLSStartTLS},
			wantErr: "starting TLS: tls: failed to verify certificate",
		},
		{
			name: "starttls with another server name", server: serverOptions{starttls: true},
			config:  SMTPConfig{TLS: TLSStartTLS, RootCAs: pool, ServerName: "mail.example.com"},
			wantErr: "starting TLS: tls: failed to verify certificate",
		},
		{
			name: "starttls skipping verification", server: serverOptions{starttls: true},
			config: SMTPConfig{TLS: TLSStartTLS, InsecureSkipVerify: true}, wantTLS: true,
		},
		{
			name: "starttls to localhost by name", server: serverOptions{starttls: true},
			config: SMTPConfig{TLS: TLSStartTLS, RootCAs: pool, ServerName: "localhost"}, wantTLS: true,
		},
		{
			name: "implicit tls", server: serverOptions{implicit: true},
			config: SMTPConfig{TLS: TLSImplicit, RootCAs: pool}, wantTLS: true,
		},
		{
			name: "implicit tls with auth accepted", server: serverOptions{implicit: true, users: users},
			config:  SMTPConfig{TLS: TLSImplicit, RootCAs: pool, Username: "postern", Password: testPassword},
			wantTLS: true, wantUser: "postern",
		},
		{
			name: "implicit tls with auth refused", server: serverOptions{implicit: true, users: users},
			config:  SMTPConfig{TLS: TLSImplicit, RootCAs: pool, Username: "mallory", Password: testPassword},
			wantErr: `authenticating as "mallory": 535`,
		},
		{
			name: "implicit tls with an untrusted certificate", server: serverOptions{implicit: true},
			config:  SMTPConfig{TLS: TLSImplicit},
			wantErr: "connecting: tls: failed to verify certificate",
		},
		{
			name: "username but no AUTH offered", server: serverOptions{starttls: true},
			config:  SMTPConfig{TLS: TLSStartTLS, RootCAs: pool, Username: "postern", Password: testPassword},
			wantErr: "server does not offer AUTH PLAIN",
		},
		{
			name: "plain auth not offered without TLS", server: serverOptions{users: users},
			config:  SMTPConfig{TLS: TLSNone, Username: "postern", Password: testPassword},
			wantErr: "server does not offer AUTH PLAIN",
		},
		{
			name: "auth required but not configured", server: serverOptions{starttls: true, users: users},
			config:  SMTPConfig{TLS: TLSStartTLS, RootCAs: pool},
			wantErr: `MAIL FROM: 502 "5.7.0 Please authenticate first"`,
		},
		{
			name: "recipient refused", config: SMTPConfig{TLS: TLSNone},
			msg:     &Message{To: "nobody@example.com", Subject: "s", Text: "123456"},
			wantErr: `RCPT TO: 550 "5.1.1 No such user here"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, cert, tt.server)
			cfg := tt.config
			cfg.Addr = srv.addr
			cfg.From = "Acme <no-reply@acme.example>"
			cfg.Timeout = 5 * time.Second
			s, err := NewSMTP(cfg)
			if err != nil {
				t.Fatalf("NewSMTP: %v", err)
			}
			m := codeMessage
			if tt.msg != nil {
				m = *tt.msg
			}
			err = s.Send(context.Background(), m)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Send succeeded, want error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testPassword) {
					t.Errorf("error %q leaks the password", err)
				}
				select {
				case r := <-srv.got:
					t.Errorf("server received a message despite the error: %+v", r)
				default:
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			var r received
			select {
			case r = <-srv.got:
			default:
				t.Fatal("Send returned nil but the server has no message")
			}
			if r.from != "no-reply@acme.example" || r.to != "ada@example.com" {
				t.Errorf("envelope from %q to %q", r.from, r.to)
			}
			if r.tls != tt.wantTLS {
				t.Errorf("delivered over TLS = %v, want %v", r.tls, tt.wantTLS)
			}
			if r.user != tt.wantUser {
				t.Errorf("authenticated as %q, want %q", r.user, tt.wantUser)
			}
			p := parseMessage(t, r.data)
			if p.subject != m.Subject {
				t.Errorf("Subject %q, want %q", p.subject, m.Subject)
			}
			if !strings.Contains(p.text, "482915") {
				t.Errorf("text part %q does not contain the code", p.text)
			}
		})
	}
}

func TestSMTPServerDown(t *testing.T) {
	// A port that was just free and is now closed: the connection is refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := NewSMTP(SMTPConfig{Addr: addr, TLS: TLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Send(context.Background(), codeMessage)
	if err == nil || !strings.Contains(err.Error(), "sending mail via "+addr+": connecting:") {
		t.Fatalf("Send = %v, want a connecting error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %s, longer than the 2s timeout", d)
	}
}

// TestSMTPTimeout: a server that accepts but never speaks (or stops mid-way) costs at most the timeout.
func TestSMTPTimeout(t *testing.T) {
	tests := []struct {
		name     string
		greeting string // what the silent server says before falling silent
		wantStep string
	}{
		{name: "no greeting", wantStep: "reading greeting"},
		{name: "no EHLO reply", greeting: "220 localhost ESMTP\r\n", wantStep: "saying hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			held := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, tt.greeting)
				held <- c
			}()
			t.Cleanup(func() {
				ln.Close()
				select {
				case c := <-held:
					c.Close()
				default:
				}
			})

			const timeout = 300 * time.Millisecond
			s, err := NewSMTP(SMTPConfig{Addr: ln.Addr().String(), TLS: TLSNone, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = s.Send(context.Background(), codeMessage)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Send succeeded against a silent server")
			}
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tt.wantStep+": no answer within 300ms") {
				t.Errorf("error %q: want %q and context.DeadlineExceeded", err, tt.wantStep+": no answer within 300ms")
			}
			if elapsed < timeout || elapsed > timeout+2*time.Second {
				t.Errorf("Send took %s, want about %s", elapsed, timeout)
			}
		})
	}
}

// TestSMTPCanceled: ending the caller's context interrupts a delivery in progress.
func TestSMTPCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cancel() // the client is now waiting for the greeting
		_, _ = io.Copy(io.Discard, c)
	}()
	s, err := NewSMTP(SMTPConfig{Addr: ln.Addr().String(), TLS: TLSNone, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Send(ctx, codeMessage)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Send took %s after cancel", d)
	}
}

func TestSMTPConcurrent(t *testing.T) {
	cert, pool := testCert(t)
	srv := startServer(t, cert, serverOptions{starttls: true})
	s, err := NewSMTP(SMTPConfig{Addr: srv.addr, RootCAs: pool, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			m := codeMessage
			m.Text = fmt.Sprintf("Your code is %06d.", i)
			errs <- s.Send(context.Background(), m)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	seen := map[string]bool{}
	for range n {
		p := parseMessage(t, (<-srv.got).data)
		seen[p.text] = true
	}
	if len(seen) != n {
		t.Errorf("received %d distinct messages, want %d", len(seen), n)
	}
}

// TestSMTPReplyIsTextprotoError: callers can tell 4xx from 5xx.
func TestSMTPReplyIsTextprotoError(t *testing.T) {
	cert, _ := testCert(t)
	srv := startServer(t, cert, serverOptions{})
	s, err := NewSMTP(SMTPConfig{Addr: srv.addr, TLS: TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), Message{To: "nobody@example.com", Subject: "s", Text: "123456"})
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 550 {
		t.Errorf("Send = %v, want a *textproto.Error with code 550", err)
	}
}

func TestNewSMTPRefuses(t *testing.T) {
	tests := []struct {
		name    string
		cfg     SMTPConfig
		wantErr string
	}{
		{name: "no address", cfg: SMTPConfig{}, wantErr: `address "" is not host:port`},
		{name: "no port", cfg: SMTPConfig{Addr: "mail.example.com"}, wantErr: "is not host:port"},
		{name: "no host", cfg: SMTPConfig{Addr: ":25"}, wantErr: `address ":25" has no host`},
		{name: "bad port", cfg: SMTPConfig{Addr: "mail.example.com:smtp"}, wantErr: "port must be a number"},
		{name: "port out of range", cfg: SMTPConfig{Addr: "mail.example.com:70000"}, wantErr: "port must be a number"},
		{name: "unknown tls", cfg: SMTPConfig{Addr: "mail.example.com:587", TLS: "ssl"}, wantErr: `tls "ssl" is not one of "none", "starttls", "tls"`},
		{name: "plain to a remote host", cfg: SMTPConfig{Addr: "mail.example.com:25", TLS: TLSNone}, wantErr: `only to a loopback address, not "mail.example.com"`},
		{name: "plain to a private address", cfg: SMTPConfig{Addr: "10.0.0.1:25", TLS: TLSNone}, wantErr: "only to a loopback address"},
		{name: "bad from", cfg: SMTPConfig{Addr: "mail.example.com:587", From: "postern"}, wantErr: "from is not one valid address"},
		{name: "from with a line break", cfg: SMTPConfig{Addr: "mail.example.com:587", From: "a@b.example\r\nBcc: c@d.example"}, wantErr: "from contains a line break"},
		{name: "password without username", cfg: SMTPConfig{Addr: "mail.example.com:587", Password: testPassword}, wantErr: "username and password must be set together"},
		{name: "username without password", cfg: SMTPConfig{Addr: "mail.example.com:587", Username: "postern"}, wantErr: "username and password must be set together"},
		{name: "NUL in password", cfg: SMTPConfig{Addr: "mail.example.com:587", Username: "postern", Password: testPassword + "\x00"}, wantErr: "must not contain NUL"},
		{name: "negative timeout", cfg: SMTPConfig{Addr: "mail.example.com:587", Timeout: -time.Second}, wantErr: "timeout -1s is negative"},
		{name: "hello name with space", cfg: SMTPConfig{Addr: "mail.example.com:587", HelloName: "a b"}, wantErr: "hello name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSMTP(tt.cfg)
			if err == nil {
				t.Fatalf("NewSMTP succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "configuring smtp: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q: want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}

	for _, addr := range []string{"127.0.0.1:25", "[::1]:25", "localhost:1025", "127.8.9.10:25"} {
		if _, err := NewSMTP(SMTPConfig{Addr: addr, TLS: TLSNone}); err != nil {
			t.Errorf("NewSMTP(plain to %s): %v", addr, err)
		}
	}
}

func TestSMTPConfigHidesPassword(t *testing.T) {
	cfg := SMTPConfig{Addr: "mail.example.com:587", Username: "postern", Password: testPassword}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("smtp", "config", cfg)
	for _, s := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		cfg.String(), fmt.Sprint(&cfg), logged.String(),
	} {
		if strings.Contains(s, testPassword) {
			t.Errorf("%q shows the password", s)
		}
		if !strings.Contains(s, "redacted") {
			t.Errorf("%q does not say the password is redacted", s)
		}
	}
}
