package oidc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	smtpd "github.com/emersion/go-smtp"

	"postern.dev/postern/cluster"
	"postern.dev/postern/cluster/clustertest"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge"
	edgemail "postern.dev/postern/edge/mail"
	"postern.dev/postern/edge/oidc"
	"postern.dev/postern/edge/tokens"
)

// TestBrowserSignUpWithEmailCode signs up on the hosted pages in real headless Chromium: from the sign-in
// page's link to the sign-up form, whose pattern the browser checks and then the server (the error next to
// the field, the other values kept), to the code the edge mails through a real SMTP server run by the test,
// typed into the verify page, and back to a real client app with a code. The ID token names the new,
// verified address; then a second app of the tenant gets a code from the same browser without a password
// prompt (single sign-on).
func TestBrowserSignUpWithEmailCode(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("needs Debian's chromium at /usr/bin/chromium; .ci/run installs it")
		}
		t.Fatalf("CI is set and the browser is missing: %v", err)
	}
	box := startMailbox(t)
	e := newEnvMailingTo(t, box.addr)
	client := newClientApp(t)
	acme, err := e.store.Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	settings := acme.Settings
	settings.SignUp = directory.SignUp{EmailVerification: true, Attributes: []directory.AttributeDef{
		{Name: "given_name", Required: true},
		{Name: "loyalty_id", Label: "Loyalty number", Pattern: "[0-9]{8}"},
	}}
	settings.Branding = directory.Branding{CompanyName: brandCompany, Logo: brandLogo(brandPrimary),
		Colors: map[string]string{"primary": fmt.Sprintf("#%02x%02x%02x", brandPrimary.R, brandPrimary.G, brandPrimary.B)}}
	grants := []string{"authorization_code", "refresh_token"}
	e.propose(
		directory.MakeOp(directory.OpTenantUpdate, directory.TenantPatch{ID: "acme", Settings: &settings}),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "portal", Tenant: "acme", Name: "portal", ClientID: "portal",
			Type: directory.AppWeb, Secrets: []directory.SecretHash{{Hash: directory.HashClientSecret(e.secret), CreatedAt: time.Now()}},
			RedirectURIs: []string{client.url + "/callback"}, GrantTypes: grants}),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "storefront", Tenant: "acme", Name: "storefront", ClientID: "storefront",
			Type: directory.AppSPA, RedirectURIs: []string{client.url + "/spa-callback"}, GrantTypes: grants}),
	)
	const (
		email      = "bea.reyes@example.com"
		newPass    = "a-long-unusual-passphrase-42"
		givenName  = "Bea"
		badLoyalty = "1234"
		loyalty    = "12345678"
	)

	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	tab := startChromium(t, ctx)
	documents := recordDocuments(t, tab)
	console := recordConsole(tab)
	issuer := e.issuer("acme")
	// submit clicks the form's submit button and waits for the page the browser loads next.
	submit := func(step string) {
		t.Helper()
		submitted, stop := context.WithTimeout(tab, 10*time.Second)
		defer stop()
		if _, err := chromedp.Run(submitted, chromedp.WaitEvent(page.LoadEventFired, nil,
			chromedp.Click(chromedp.CSS(`form [type="submit"]`)))); err != nil {
			loc, _ := chromedp.Run(tab, chromedp.Location())
			t.Fatalf("%s: no page loaded (%v); the browser is at %s; console: %q", step, err, loc, console.all())
		}
	}
	at := func(step, prefix string) {
		t.Helper()
		if loc, _ := chromedp.Run(tab, chromedp.Location()); !strings.HasPrefix(loc, prefix) {
			body, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Fatalf("%s: the browser is at %s, want %s…; the page says:\n%s", step, loc, prefix, body)
		}
	}

	// The authorization request (PKCE S256, state, nonce) shows the sign-in page; its link leads to sign-up.
	verifier, challenge := pkce()
	if err := chromedp.Do(tab, chromedp.Navigate(issuer+"/authorize?"+authorizeQuery("portal", client.url+"/callback", "st4te-signup",
		url.Values{"nonce": {"n0nce-signup"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}).Encode())); err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	at("authorization request", issuer+"/sign-in?j=")
	linked, stop := context.WithTimeout(tab, 10*time.Second)
	_, err = chromedp.Run(linked, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`a[href*="/sign-up?j="]`))))
	stop()
	if err != nil {
		t.Fatalf("following the sign-up link: %v; console: %q", err, console.all())
	}
	at("sign-up link", issuer+"/sign-up?j=")
	form, err := chromedp.Run(tab, chromedp.Evaluate[signUpForm](inspectSignUpJS))
	if err != nil {
		t.Fatalf("reading the sign-up page: %v", err)
	}
	if form.Company != brandCompany || !form.LogoShown {
		t.Errorf("sign-up page branding: company %q, logo shown %v", form.Company, form.LogoShown)
	}
	want := map[string]signUpInput{
		"email":      {Type: "email", Autocomplete: "email", Required: true},
		"password":   {Type: "password", Autocomplete: "new-password", Required: true},
		"given_name": {Type: "text", Autocomplete: "given-name", Required: true},
		"loyalty_id": {Type: "text", Autocomplete: "off", Pattern: "[0-9]{8}"},
	}
	if len(form.Inputs) != len(want) {
		t.Errorf("sign-up inputs %+v, want %d: email, password, given_name, loyalty_id", form.Inputs, len(want))
	}
	for _, in := range form.Inputs {
		w, ok := want[in.Name]
		if !ok {
			t.Errorf("unexpected sign-up input %+v", in)
			continue
		}
		if in.Label == "" || in.Type != w.Type || in.Autocomplete != w.Autocomplete || in.Required != w.Required || in.Pattern != w.Pattern {
			t.Errorf("sign-up input %q: %+v, want a label and %+v", in.Name, in, w)
		}
	}

	// A loyalty number that does not match: the browser itself refuses to submit the form...
	byName := func(name string) chromedp.CSS { return chromedp.CSS(`form input[name="` + name + `"]`) }
	if err := chromedp.Do(tab,
		chromedp.SendKeys(byName("email"), email),
		chromedp.SendKeys(byName("password"), newPass),
		chromedp.SendKeys(byName("given_name"), givenName),
		chromedp.SendKeys(byName("loyalty_id"), badLoyalty),
	); err != nil {
		t.Fatalf("filling in the sign-up form: %v", err)
	}
	seen := documents.count()
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`form [type="submit"]`)), chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if shown := documents.since(seen); len(shown) != 0 {
		t.Errorf("the browser submitted a loyalty number its pattern refuses; it loaded %q", shown)
	}
	if mismatch, err := chromedp.Run(tab, chromedp.Evaluate[bool](
		`document.querySelector('form input[name="loyalty_id"]').validity.patternMismatch`)); err != nil || !mismatch {
		t.Errorf("the browser does not flag the loyalty number %q as a pattern mismatch: %v %v", badLoyalty, mismatch, err)
	}
	// ...and with the browser's checks off (an old browser, a script, a bot) the server refuses it: the
	// error next to that field, the other values kept, the password not echoed, nothing mailed.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.querySelector('form').noValidate = true`)); err != nil {
		t.Fatal(err)
	}
	submit("submitting an invalid loyalty number")
	at("after an invalid loyalty number", issuer+"/sign-up?j=")
	form, err = chromedp.Run(tab, chromedp.Evaluate[signUpForm](inspectSignUpJS))
	if err != nil {
		t.Fatalf("reading the sign-up page again: %v", err)
	}
	values := map[string]signUpInput{}
	for _, in := range form.Inputs {
		values[in.Name] = in
	}
	if l := values["loyalty_id"]; !l.Invalid || l.Error == "" || !l.ErrorInField || !l.ErrorDescribes || l.Value != badLoyalty {
		t.Errorf("loyalty_id after the server refused it: %+v, want its value kept, aria-invalid, and an error in its field that describes it", l)
	}
	if v := values["email"]; v.Value != email || v.Invalid || v.Error != "" {
		t.Errorf("email after the refusal: %+v, want %q kept without an error", v, email)
	}
	if v := values["given_name"]; v.Value != givenName || v.Invalid || v.Error != "" {
		t.Errorf("given_name after the refusal: %+v, want %q kept without an error", v, givenName)
	}
	if v := values["password"]; v.Value != "" {
		t.Errorf("the server echoed the password into the page: %+v", v)
	}
	if form.FormError != "" {
		t.Errorf("a form-level error %q beside the field's", form.FormError)
	}
	if m, ok := box.poll(); ok {
		t.Fatalf("a message was sent for a refused sign-up: %s", m.data)
	}

	// Fix the number (the password again, as the page did not keep it) and submit: the verify page.
	// (A JS assignment: chromedp v0.23's SetValue reports "could not set value" for an empty value.)
	if cleared, err := chromedp.Run(tab, chromedp.Evaluate[string](
		`(() => { const el = document.querySelector('form input[name="loyalty_id"]'); el.value = ''; return el.value })()`)); err != nil || cleared != "" {
		t.Fatalf("clearing the loyalty number: %q %v", cleared, err)
	}
	if err := chromedp.Do(tab,
		chromedp.SendKeys(byName("loyalty_id"), loyalty),
		chromedp.SendKeys(byName("password"), newPass),
	); err != nil {
		t.Fatalf("correcting the sign-up form: %v", err)
	}
	submit("submitting the sign-up form")
	at("after signing up", issuer+"/verify?j=")
	verify, err := chromedp.Run(tab, chromedp.Evaluate[verifyPage](`(() => {
		const code = document.querySelector('form input[autocomplete="one-time-code"]');
		return {
			codeInputs: document.querySelectorAll('form input[autocomplete="one-time-code"]').length,
			inputMode: code?.inputMode ?? '',
			label: code ? [...code.labels].map(l => l.textContent.trim()).join(' ') : '',
			text: document.querySelector('main')?.innerText ?? '',
			company: document.querySelector('.company')?.textContent.trim() ?? '',
		};
	})()`))
	if err != nil {
		t.Fatalf("reading the verify page: %v", err)
	}
	if verify.CodeInputs != 1 || verify.InputMode != "numeric" || verify.Label == "" {
		t.Errorf("verify page: %+v, want one labelled input with autocomplete=one-time-code and inputmode=numeric", verify)
	}
	if !strings.Contains(verify.Text, email) || verify.Company != brandCompany {
		t.Errorf("the verify page does not name the address %s or the tenant %q:\n%s (company %q)", email, brandCompany, verify.Text, verify.Company)
	}
	if _, err := e.store.UserByEmail("acme", email); err == nil {
		t.Fatal("the user exists before the code was entered")
	}

	// The code, from the message the SMTP server received.
	m := box.next(t, ctx)
	if m.rcpt != email {
		t.Errorf("the message went to %q, want %q", m.rcpt, email)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, m.data)
	}
	if to, err := mail.ParseAddress(msg.Header.Get("To")); err != nil || to.Address != email {
		t.Errorf("To: %q (%v), want %s", msg.Header.Get("To"), err, email)
	}
	if subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil || !strings.Contains(subject, brandCompany) {
		t.Errorf("Subject %q (%v) does not name the tenant %q", subject, err, brandCompany)
	}
	text := plainText(t, msg)
	code := sixDigits.FindString(text)
	if code == "" {
		t.Fatalf("no 6-digit code in the text part:\n%s", text)
	}

	// Typing it in completes the sign-up and the authorization: the browser lands at the client with a code.
	if err := chromedp.Do(tab, chromedp.SendKeys(chromedp.CSS(`form input[autocomplete="one-time-code"]`), code)); err != nil {
		t.Fatalf("typing the code: %v", err)
	}
	submit("submitting the code")
	q := client.received(t, ctx, "/callback")
	if q.Get("code") == "" || q.Get("state") != "st4te-signup" || q.Get("iss") != issuer {
		t.Fatalf("authorization response at the client: %v", q)
	}
	at("after the code", client.url+"/callback?")

	status, tok := e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {client.url + "/callback"},
		"client_id": {"portal"}, "client_secret": {e.secret}, "code_verifier": {verifier}})
	rawID, _ := tok["id_token"].(string)
	if status != http.StatusOK || rawID == "" {
		t.Fatalf("redeeming the code: %d %v", status, tok)
	}
	claims := jwtPayload(t, rawID)
	if claims["email"] != email || claims["email_verified"] != true || claims["given_name"] != givenName ||
		claims["nonce"] != "n0nce-signup" || claims["aud"] != "portal" || claims["iss"] != issuer {
		t.Errorf("ID token claims %v, want email %s verified, given_name %s, the nonce, aud portal and iss %s", claims, email, givenName, issuer)
	}
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if _, err := provider.Verifier(&gooidc.Config{ClientID: "portal"}).Verify(ctx, rawID); err != nil {
		t.Errorf("go-oidc refuses the ID token: %v", err)
	}
	u, err := e.store.UserByEmail("acme", email)
	if err != nil || !u.EmailVerified || u.Profile.GivenName != givenName || u.Attributes["loyalty_id"] != loyalty || claims["sub"] != u.ID {
		t.Errorf("the new user: %+v %v (ID token sub %v)", u, err, claims["sub"])
	}

	// Single sign-on: the SPA's authorization request comes straight back with a code, no page shown.
	seen = documents.count()
	verifier, challenge = pkce()
	if err := chromedp.Do(tab, chromedp.Navigate(issuer+"/authorize?"+authorizeQuery("storefront", client.url+"/spa-callback", "st4te-spa",
		url.Values{"nonce": {"n0nce-spa"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}).Encode())); err != nil {
		t.Fatalf("SPA authorization request: %v", err)
	}
	q = client.received(t, ctx, "/spa-callback")
	if q.Get("code") == "" || q.Get("state") != "st4te-spa" || q.Get("iss") != issuer {
		t.Fatalf("SPA authorization response: %v", q)
	}
	if shown := documents.since(seen); len(shown) != 1 || !strings.HasPrefix(shown[0], client.url+"/spa-callback?") {
		t.Fatalf("single sign-on showed %q, want only the SPA's callback", shown)
	}
	if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('input[type=password]').length`)); err != nil || n != 0 {
		t.Fatalf("a password field on the page after single sign-on: %d %v", n, err)
	}
	status, tok = e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {client.url + "/spa-callback"},
		"client_id": {"storefront"}, "code_verifier": {verifier}})
	rawID, _ = tok["id_token"].(string)
	if status != http.StatusOK || rawID == "" {
		t.Fatalf("redeeming the SPA's code: %d %v", status, tok)
	}
	if spa := jwtPayload(t, rawID); spa["sub"] != claims["sub"] || spa["email"] != email || spa["nonce"] != "n0nce-spa" || spa["aud"] != "storefront" {
		t.Errorf("SPA's ID token claims %v, want the new user %v", spa, claims["sub"])
	}
	if m, ok := box.poll(); ok {
		t.Errorf("an unexpected second message: %s", m.data)
	}
}

// signUpForm is what the browser makes of a sign-up page.
type signUpForm struct {
	Company   string        `json:"company"`
	LogoShown bool          `json:"logoShown"`
	FormError string        `json:"formError"`
	Inputs    []signUpInput `json:"inputs"`
}

type signUpInput struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Autocomplete   string `json:"autocomplete"`
	Pattern        string `json:"pattern"`
	Required       bool   `json:"required"`
	Label          string `json:"label"`
	Value          string `json:"value"`
	Invalid        bool   `json:"invalid"`        // aria-invalid="true"
	Error          string `json:"error"`          // the text of the field's error
	ErrorInField   bool   `json:"errorInField"`   // the error is inside the input's own field box
	ErrorDescribes bool   `json:"errorDescribes"` // the input's aria-describedby names the error
}

// inspectSignUpJS reads the sign-up form's visible inputs with their current values and errors.
const inspectSignUpJS = `(() => {
	const logo = document.querySelector('.brand img');
	return {
		company: document.querySelector('.company')?.textContent.trim() ?? '',
		logoShown: !!logo && logo.complete && logo.naturalWidth > 0,
		formError: document.querySelector('.form-error')?.textContent.trim() ?? '',
		inputs: [...document.querySelectorAll('form input')].filter(el => el.type !== 'hidden').map(el => {
			const field = el.closest('.field');
			const err = field?.querySelector('.field-error') ?? null;
			const described = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
			return {
				name: el.name, type: el.type, autocomplete: el.getAttribute('autocomplete') ?? '',
				pattern: el.getAttribute('pattern') ?? '', required: el.required,
				label: [...el.labels].map(l => l.textContent.trim()).join(' '),
				value: el.value,
				invalid: el.getAttribute('aria-invalid') === 'true',
				error: err?.textContent.trim() ?? '',
				errorInField: !!err && field.contains(el),
				errorDescribes: !!err && described.includes(err.id),
			};
		}),
	};
})()`

type verifyPage struct {
	CodeInputs int    `json:"codeInputs"`
	InputMode  string `json:"inputMode"`
	Label      string `json:"label"`
	Text       string `json:"text"`
	Company    string `json:"company"`
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// plainText is the decoded text/plain part of a message, single-part or multipart.
func plainText(t *testing.T, msg *mail.Message) string {
	t.Helper()
	var walk func(contentType, encoding string, body io.Reader) (string, bool)
	walk = func(contentType, encoding string, body io.Reader) (string, bool) {
		media, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			t.Fatalf("Content-Type %q: %v", contentType, err)
		}
		switch {
		case strings.HasPrefix(media, "multipart/"):
			mr := multipart.NewReader(body, params["boundary"])
			for {
				part, err := mr.NextRawPart() // raw: the transfer encoding is decoded below
				if err == io.EOF {
					return "", false
				}
				if err != nil {
					t.Fatalf("reading a MIME part: %v", err)
				}
				if s, ok := walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part); ok {
					return s, true
				}
			}
		case media == "text/plain":
			switch strings.ToLower(encoding) {
			case "quoted-printable":
				body = quotedprintable.NewReader(body)
			case "base64":
				body = base64.NewDecoder(base64.StdEncoding, body)
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatalf("decoding the text part (%s): %v", encoding, err)
			}
			return string(b), true
		}
		return "", false
	}
	ct := msg.Header.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	s, ok := walk(ct, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if !ok {
		t.Fatalf("the message has no text/plain part (Content-Type %q)", ct)
	}
	return s
}

// jwtPayload decodes a JWT's claims without checking its signature.
func jwtPayload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact serialization: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return c
}

// mailbox is a real SMTP server (emersion/go-smtp) on 127.0.0.1:0 that keeps every message it accepts.
type mailbox struct {
	addr string
	got  chan smtpMessage
}

type smtpMessage struct {
	from, rcpt string
	data       []byte
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	box := &mailbox{got: make(chan smtpMessage, 16)}
	s := smtpd.NewServer(smtpd.BackendFunc(func(*smtpd.Conn) (smtpd.Session, error) { return &mailboxSession{box: box}, nil }))
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return box
}

// next returns the next message the server accepted.
func (b *mailbox) next(t *testing.T, ctx context.Context) smtpMessage {
	t.Helper()
	select {
	case m := <-b.got:
		return m
	case <-ctx.Done():
		t.Fatalf("no message reached the SMTP server: %v", ctx.Err())
		return smtpMessage{}
	}
}

// poll returns a message the server has accepted, if there is one.
func (b *mailbox) poll() (smtpMessage, bool) {
	select {
	case m := <-b.got:
		return m, true
	default:
		return smtpMessage{}, false
	}
}

type mailboxSession struct {
	box *mailbox
	msg smtpMessage
}

func (s *mailboxSession) Mail(from string, _ *smtpd.MailOptions) error {
	s.msg.from = from
	return nil
}

func (s *mailboxSession) Rcpt(to string, _ *smtpd.RcptOptions) error {
	if s.msg.rcpt != "" {
		return &smtpd.SMTPError{Code: 452, EnhancedCode: smtpd.EnhancedCode{4, 5, 3}, Message: "One recipient per message here"}
	}
	s.msg.rcpt = to
	return nil
}

func (s *mailboxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.box.got <- s.msg
	return nil
}

func (s *mailboxSession) Reset()        { s.msg = smtpMessage{} }
func (s *mailboxSession) Logout() error { return nil }

// newEnvMailingTo is newEnv with the provider's mail going through edge/mail's SMTP sender to the server
// at smtpAddr, as `postern` wires it, and the provider's log kept for a failing test.
func newEnvMailingTo(t *testing.T, smtpAddr string) *env {
	t.Helper()
	sender, err := edgemail.NewSMTP(edgemail.SMTPConfig{Addr: smtpAddr, TLS: edgemail.TLSNone,
		From: "Acme Outfitters <no-reply@acme.example>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	node, store := clustertest.Single(t)
	kek := clustertest.KEK(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the provider's log:\n%s", logs.String())
		}
	})
	e := &env{t: t, base: "http://" + ln.Addr().String(), node: node, store: store, kek: kek}
	e.keys = tokens.NewKeyRing(store, kek)
	p := oidc.New(oidc.Config{Store: store, Write: node, Keys: e.keys, KEK: kek, PublicURL: e.base,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
		Mail: func(ctx context.Context, tenant, to, subject, text string) error {
			return sender.Send(ctx, edgemail.Message{Tenant: tenant, To: to, Subject: subject, Text: text})
		}})
	node.Listen(func(a cluster.Applied) {
		for _, c := range a.Changes {
			p.Invalidate(c.Tenant, c.Kind)
		}
	})
	srv := edge.NewServer(node, nil, p)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	e.secret = directory.NewClientSecret()
	e.tenant("acme")
	return e
}

// syncBuffer is a bytes.Buffer safe for the provider's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
