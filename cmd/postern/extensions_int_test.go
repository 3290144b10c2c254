package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"gopkg.in/yaml.v3"

	"postern.dev/postern/wasm/wasmtest"
)

// Tenant extensions through the real binary (issue 5): `postern dev`, the sample tenant applied again
// with `postern apply` and an `extensions:` list whose Wasm files (the example guests of wasm/examples,
// built as an author builds them) lie next to the manifest, and the journeys they change. The node
// compiles a module when it is applied (about a second for a Go guest); a journey that reaches it sooner
// waits for that compilation, within the journey's extension budget.

// extRedirectURI is demo-web's redirect URI in the sample tenant. Nothing listens there: the tests stop
// when the browser or client is sent to it.
const extRedirectURI = "http://127.0.0.1:9000/callback"

// extDev is a `postern dev` with the sample client's secret and the sample user's password.
type extDev struct {
	*devServer
	issuer, secret, password string
}

func startExtDev(t *testing.T) *extDev {
	t.Helper()
	d := startDev(t)
	out := strings.Join(d.printed, "\n")
	sec, pw := secretLine.FindStringSubmatch(out), userLine.FindStringSubmatch(out)
	if sec == nil || pw == nil {
		t.Fatalf("the start-up message lacks the sample client or user:\n%s", out)
	}
	return &extDev{devServer: d, issuer: d.edgeURL + "/demo", secret: sec[1], password: pw[1]}
}

// exampleGuests builds the example extensions of wasm/examples by name, as an author builds them
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared).
func exampleGuests(t *testing.T, names ...string) map[string][]byte {
	t.Helper()
	var pkgs []string
	for _, n := range names {
		pkgs = append(pkgs, "postern.dev/postern/wasm/examples/"+n)
	}
	mods := map[string][]byte{}
	for pkg, wasm := range wasmtest.BuildAll(t, pkgs...) {
		mods[filepath.Base(pkg)] = wasm
	}
	return mods
}

// applyDemoWith applies the sample manifest again (apply replaces what a manifest made, so its app
// demo-web and its route stay) with its top-level keys replaced by those of extra, YAML text. The
// modules are written next to the manifest as NAME.wasm, where extra's `wasm:` entries name them, and
// `postern apply` uploads them.
func applyDemoWith(t *testing.T, d *extDev, extra string, modules map[string][]byte) applyReport {
	t.Helper()
	m := sampleAppLine.FindStringSubmatch(strings.Join(d.printed, "\n") + "\n")
	if m == nil {
		t.Fatalf("the start-up message lacks the sample app:\n%s", strings.Join(d.printed, "\n"))
	}
	edge, _ := url.Parse(d.edgeURL)
	text := strings.NewReplacer("${SAMPLE_UPSTREAM}", m[1], "${EDGE_PORT}", edge.Port()).Replace(string(sampleManifest))
	var doc, add map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("sample-tenant.yaml: %v", err)
	}
	if err := yaml.Unmarshal([]byte(extra), &add); err != nil {
		t.Fatalf("the test's manifest additions: %v\n%s", err, extra)
	}
	for k, v := range add {
		doc[k] = v
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, wasm := range modules {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	code, r, stderr := applyFile(t, d.devServer, file)
	if code != 0 || !r.Changed {
		t.Fatalf("applying the demo manifest with extensions: exit %d, %+v, %s\n%s", code, r, stderr, out)
	}
	t.Logf("applied: %q", r.Changes)
	return r
}

// loyaltyService is the tenant's own web service the loyalty extension asks, through the host's fetch:
// POST {"loyalty_id": "…"} with "Authorization: Bearer <apiKey>", answered {"status": "valid"} for the
// numbers it knows, else "invalid". Without the key it answers 401, so the journey fails unless the
// extension's secret reached it.
type loyaltyService struct {
	url     string
	known   map[string]bool
	mu      sync.Mutex
	asked   []string // the loyalty_id of each request, in order
	refused int      // requests without the right key
}

func newLoyaltyService(t *testing.T, apiKey string, known ...string) *loyaltyService {
	s := &loyaltyService{known: map[string]bool{}}
	for _, k := range known {
		s.known[k] = true
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			s.mu.Lock()
			s.refused++
			s.mu.Unlock()
			http.Error(w, "unknown API key", http.StatusUnauthorized)
			return
		}
		var body struct {
			LoyaltyID string `json:"loyalty_id"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/check" || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "want POST /check with {\"loyalty_id\": …}", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.asked = append(s.asked, body.LoyaltyID)
		s.mu.Unlock()
		status := "invalid"
		if s.known[body.LoyaltyID] {
			status = "valid"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"status": status})
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *loyaltyService) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

func (s *loyaltyService) refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// extBrowser is a browser with cookies that follows redirects until the one to the demo client's
// redirect URI, which it returns (the code and state are in its Location).
func extBrowser(timeout time.Duration) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: timeout, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), extRedirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// pkcePair is a PKCE verifier and its S256 challenge (RFC 7636 section 4.2).
func pkcePair() (verifier, challenge string) {
	verifier = rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// tokenResponse is what the token endpoint answers.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// tokenRequest posts a grant to the tenant's token endpoint as demo-web, with the printed secret.
func tokenRequest(t *testing.T, d *extDev, grant url.Values) tokenResponse {
	t.Helper()
	grant.Set("client_id", "demo-web")
	grant.Set("client_secret", d.secret)
	resp, err := http.PostForm(d.issuer+"/token", grant)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || resp.StatusCode != 200 || tr.AccessToken == "" {
		t.Fatalf("%s grant: %d %s", grant.Get("grant_type"), resp.StatusCode, body)
	}
	return tr
}

// TestExtensionValidationErrorInChromium signs up in real headless Chromium on a tenant whose
// OnAttributeCollectionSubmit runs two Wasm guests: blocklist, then loyalty, which asks the tenant's
// service (a server of this test, reached through the host's fetch) about the number entered. A number
// the service does not know brings the sign-up page back with the extension's message above the form and
// its per-attribute error next to the loyalty number, the values kept; a known number creates the account
// and the browser is sent to the client's redirect URI with a code. A sign-up from a blocked domain ends on
// the block page without the loyalty service being asked.
func TestExtensionValidationErrorInChromium(t *testing.T) {
	needChromium(t)
	const (
		email       = "lena.ortiz@example.com"
		password    = "a-long-unusual-passphrase-73"
		givenName   = "Lena"
		unknownID   = "00000000" // passes the flow's pattern; the service does not know it
		loyaltyID   = "12345678"
		fieldError  = "This loyalty number is not valid." // wasm/examples/loyalty's texts
		formMessage = "Please check your loyalty number."
		blockedText = "Sign-ups from this domain are closed."
	)
	mods := exampleGuests(t, "loyalty", "blocklist")
	// The service's API key reaches the extension as a secret, from the environment of `postern apply`.
	apiKey := "lk_" + rand.Text()
	t.Setenv("LOYALTY_API_KEY", apiKey)
	svc := newLoyaltyService(t, apiKey, loyaltyID)
	d := startExtDev(t)
	svcHost := strings.TrimPrefix(svc.url, "http://")
	applyDemoWith(t, d, `
flows:
  sign_up:
    email_verification: false
    attributes:
      - {name: given_name, required: true}
      - {name: loyalty_id, pattern: "^[0-9]{8}$"}
extensions:
  - id: loyalty
    wasm: loyalty.wasm
    events: [OnAttributeCollectionSubmit]
    allowed_hosts: ["`+svcHost+`"]
    config: {service_url: "`+svc.url+`/check"}
    secrets: {api_key: "${LOYALTY_API_KEY}"}
  - id: blocklist
    wasm: blocklist.wasm
    events: [OnAttributeCollectionSubmit]
    config: {blocked: "@spam.test", message: "`+blockedText+`"}
`, mods)
	// The secret is stored, and shown by name only: through the API and `postern admin`.
	var stored json.RawMessage
	var names struct {
		SecretNames []string `json:"secret_names"`
	}
	if code := d.get(t, "/admin/v1/tenants/demo/extensions/loyalty", &stored); code != 200 || json.Unmarshal(stored, &names) != nil ||
		!slices.Equal(names.SecretNames, []string{"api_key"}) || strings.Contains(string(stored), apiKey) {
		t.Errorf("the loyalty extension through the admin API: %d %s; want secret_names [api_key] and no value", code, stored)
	}
	if code, out, stderr := cli("admin", "extensions", "get", "--tenant", "demo", "loyalty", "--server", d.adminURL, "--data", d.data); code != 0 ||
		!strings.Contains(out, `"api_key"`) || strings.Contains(out+stderr, apiKey) {
		t.Errorf("postern admin extensions get: exit %d\n%s%s\nwant the secret's name and not its value", code, out, stderr)
	}

	// The guest's first call may wait for the node to compile it: a generous deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	tab := startChromium(t, ctx)
	// The redirect URI has no server: the request for it is the journey's end.
	callbacks := make(chan string, 4)
	if err := chromedp.Listen(tab, func(ev any) {
		if r, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(r.Request.URL, extRedirectURI) {
			select {
			case callbacks <- r.Request.URL:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	at := func(step, prefix string) {
		t.Helper()
		if loc, _ := chromedp.Run(tab, chromedp.Location()); !strings.HasPrefix(loc, prefix) {
			body, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Fatalf("%s: the browser is at %s, want %s…; the page says:\n%s", step, loc, prefix, body)
		}
	}
	// click clicks what sel finds and waits for the page the browser loads next.
	click := func(step, sel string) time.Duration {
		t.Helper()
		start := time.Now()
		loaded, stop := context.WithTimeout(tab, 30*time.Second)
		defer stop()
		if _, err := chromedp.Run(loaded, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
			loc, _ := chromedp.Run(tab, chromedp.Location())
			t.Fatalf("%s: no page loaded (%v); the browser is at %s", step, err, loc)
		}
		return time.Since(start)
	}
	byName := func(name string) chromedp.CSS { return chromedp.CSS(`form input[name="` + name + `"]`) }

	verifier, challenge := pkcePair()
	auth := d.issuer + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"demo-web"},
		"redirect_uri": {extRedirectURI}, "scope": {"openid email profile"}, "state": {"st-loyalty"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	if err := chromedp.Do(tab, chromedp.Navigate(auth)); err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	at("authorization request", d.issuer+"/sign-in?j=")
	click("following the sign-up link", `a[href*="/sign-up?j="]`)
	at("sign-up link", d.issuer+"/sign-up?j=")

	// A number the tenant's service does not know.
	if err := chromedp.Do(tab,
		chromedp.SendKeys(byName("email"), email),
		chromedp.SendKeys(byName("password"), password),
		chromedp.SendKeys(byName("given_name"), givenName),
		chromedp.SendKeys(byName("loyalty_id"), unknownID),
	); err != nil {
		t.Fatalf("filling in the sign-up form: %v", err)
	}
	took := click("submitting an unknown loyalty number", `form [type="submit"]`)
	t.Logf("the first submit (the guests' first calls, waiting for the node to finish compiling them) took %v", took.Round(time.Millisecond))
	at("after an unknown loyalty number", d.issuer+"/sign-up?j=")
	form, err := chromedp.Run(tab, chromedp.Evaluate[extSignUpPage](extSignUpJS))
	if err != nil {
		t.Fatalf("reading the sign-up page: %v", err)
	}
	if n := svc.refusals(); n != 0 {
		t.Errorf("the loyalty service refused %d requests without its API key: the secret did not reach the extension", n)
	}
	if got := svc.requests(); !slices.Equal(got, []string{unknownID}) {
		t.Errorf("the loyalty service was asked about %q, want [%s]", got, unknownID)
	}
	if f := form.field("loyalty_id"); f.Error != fieldError || !f.Invalid || !f.Describes || f.Value != unknownID {
		t.Errorf("loyalty_id after the extension refused it: %+v; want the value %q kept, aria-invalid, and the error %q in its field, describing it",
			f, unknownID, fieldError)
	}
	for name, want := range map[string]string{"email": email, "given_name": givenName} {
		if f := form.field(name); f.Value != want || f.Invalid || f.Error != "" {
			t.Errorf("%s after the refusal: %+v, want %q kept without an error", name, f, want)
		}
	}
	if f := form.field("password"); f.Value != "" {
		t.Errorf("the page echoed the password: %+v", f)
	}
	if form.FormError != formMessage {
		t.Errorf("the form's error is %q, want the extension's message %q", form.FormError, formMessage)
	}
	if code := d.get(t, "/admin/v1/tenants/demo/users/"+email, nil); code != http.StatusNotFound {
		t.Errorf("the user after a refused sign-up: admin API %d, want 404", code)
	}

	// A number the service knows: the account, and the client's redirect URI with a code.
	if cleared, err := chromedp.Run(tab, chromedp.Evaluate[string](
		`(() => { const el = document.querySelector('form input[name="loyalty_id"]'); el.value = ''; return el.value })()`)); err != nil || cleared != "" {
		t.Fatalf("clearing the loyalty number: %q %v", cleared, err)
	}
	if err := chromedp.Do(tab,
		chromedp.SendKeys(byName("loyalty_id"), loyaltyID),
		chromedp.SendKeys(byName("password"), password),
		chromedp.Click(chromedp.CSS(`form [type="submit"]`)),
	); err != nil {
		t.Fatalf("submitting a known loyalty number: %v", err)
	}
	var callback string
	select {
	case callback = <-callbacks:
	case <-time.After(15 * time.Second):
		loc, _ := chromedp.Run(tab, chromedp.Location())
		body, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		t.Fatalf("the browser was not sent to %s; it is at %s:\n%s", extRedirectURI, loc, body)
	}
	cb, _ := url.Parse(callback)
	q := cb.Query()
	if q.Get("code") == "" || q.Get("state") != "st-loyalty" || q.Get("iss") != d.issuer {
		t.Fatalf("the authorization response %s: want a code, state st-loyalty and iss %s", callback, d.issuer)
	}
	if got := svc.requests(); !slices.Equal(got, []string{unknownID, loyaltyID}) {
		t.Errorf("the loyalty service was asked about %q, want [%s %s]", got, unknownID, loyaltyID)
	}
	var user struct {
		Profile struct {
			GivenName string `json:"given_name"`
		} `json:"profile"`
		Attributes map[string]any `json:"attributes"`
	}
	if code := d.get(t, "/admin/v1/tenants/demo/users/"+email, &user); code != 200 ||
		user.Profile.GivenName != givenName || user.Attributes["loyalty_id"] != loyaltyID {
		t.Errorf("the new user: admin API %d, %+v; want given_name %q and loyalty_id %q", code, user, givenName, loyaltyID)
	}
	tr := tokenRequest(t, d, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {extRedirectURI}, "code_verifier": {verifier}})
	if c := jwtClaims(t, tr.IDToken); c["email"] != email || c["given_name"] != givenName {
		t.Errorf("the new user's ID token: %v", c)
	}

	// blocklist comes before loyalty (by id): a blocked domain ends on the block page, unasked.
	b := extBrowser(30 * time.Second)
	resp, _ := fetch(t, b, auth, nil)
	signUp := strings.Replace(resp.Request.URL.String(), "/sign-in?", "/sign-up?", 1)
	resp, body := fetch(t, b, signUp, nil)
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no sign-up form at %s: %d\n%s", signUp, resp.StatusCode, body)
	}
	resp, err = b.PostForm(resp.Request.URL.String(), url.Values{"csrf": {string(m[1]) + string(m[2])},
		"email": {"someone@spam.test"}, "password": {password}, "given_name": {"Some"}, "loyalty_id": {loyaltyID}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), blockedText) {
		t.Errorf("a sign-up from a blocked domain: %d, want 403 with %q\n%s", resp.StatusCode, blockedText, body)
	}
	if got := svc.requests(); len(got) != 2 {
		t.Errorf("the loyalty service was asked after blocklist blocked the sign-up: %q", got)
	}
	if code := d.get(t, "/admin/v1/tenants/demo/users/someone@spam.test", nil); code != http.StatusNotFound {
		t.Errorf("the blocked sign-up made a user: admin API %d", code)
	}
}

// extSignUpPage is the sign-up page as the browser shows it.
type extSignUpPage struct {
	Fields    []extSignUpField `json:"fields"`
	FormError string           `json:"formError"`
}

type extSignUpField struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Invalid   bool   `json:"invalid"`   // aria-invalid="true"
	Error     string `json:"error"`     // the text of the .field-error inside the input's .field
	Describes bool   `json:"describes"` // the input's aria-describedby names that error
}

func (p extSignUpPage) field(name string) extSignUpField {
	for _, f := range p.Fields {
		if f.Name == name {
			return f
		}
	}
	return extSignUpField{Name: name + " (missing)"}
}

const extSignUpJS = `(() => ({
	fields: [...document.querySelectorAll('form input:not([type="hidden"])')].map(el => {
		const err = el.closest('.field')?.querySelector('.field-error');
		return {
			name: el.name,
			value: el.value,
			invalid: el.getAttribute('aria-invalid') === 'true',
			error: err ? err.textContent.trim() : '',
			describes: !!err && (el.getAttribute('aria-describedby') ?? '').split(/\s+/).includes(err.id),
		};
	}),
	formError: document.querySelector('#form-error')?.innerText.trim() ?? '',
}))()`

// TestExtensionClaimsInTokens runs demo-web's code flow (PKCE, the printed secret) on a tenant whose
// OnTokenIssuanceStart runs the claims guest: the claim it makes of its configuration is in the ID token
// and in the access token, both signed with the tenant's keys, and tokens from a refresh keep it.
func TestExtensionClaimsInTokens(t *testing.T) {
	mods := exampleGuests(t, "claims")
	d := startExtDev(t)
	applyDemoWith(t, d, `
extensions:
  - id: claims
    wasm: claims.wasm
    events: [OnTokenIssuanceStart]
    config: {claim_name: loyalty_tier, claim_value: gold}
`, mods)

	b := extBrowser(30 * time.Second)
	verifier, challenge := pkcePair()
	auth := d.issuer + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"demo-web"},
		"redirect_uri": {extRedirectURI}, "scope": {"openid email"}, "state": {"st-claims"}, "nonce": {"n-claims"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	start := time.Now()
	resp := postForm(t, b, auth, url.Values{"email": {"demo@example.com"}, "password": {d.password}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st-claims" {
		t.Fatalf("signing in to demo-web: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	t.Logf("sign-in to code (the guest's first call, waiting for the node to finish compiling it): %v", time.Since(start).Round(time.Millisecond))
	tr := tokenRequest(t, d, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {extRedirectURI}, "code_verifier": {verifier}})
	if tr.IDToken == "" || tr.RefreshToken == "" {
		t.Fatalf("the code's tokens: %+v, want an ID token and a refresh token", tr)
	}

	ctx := t.Context()
	provider, err := gooidc.NewProvider(ctx, d.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	// check verifies both tokens with the tenant's published keys and returns their claims.
	check := func(step string, tr tokenResponse, nonce string) (id, access map[string]any) {
		t.Helper()
		idt, err := provider.Verifier(&gooidc.Config{ClientID: "demo-web"}).Verify(ctx, tr.IDToken)
		if err != nil {
			t.Fatalf("%s: the ID token does not verify: %v", step, err)
		}
		if idt.Nonce != nonce {
			t.Errorf("%s: ID token nonce %q, want %q", step, idt.Nonce, nonce)
		}
		if _, err := provider.Verifier(&gooidc.Config{SkipClientIDCheck: true}).Verify(ctx, tr.AccessToken); err != nil {
			t.Fatalf("%s: the access token does not verify with the tenant's keys: %v", step, err)
		}
		id, access = jwtClaims(t, tr.IDToken), jwtClaims(t, tr.AccessToken)
		if id["loyalty_tier"] != "gold" || access["loyalty_tier"] != "gold" {
			t.Errorf("%s: loyalty_tier is %v in the ID token and %v in the access token, want the extension's \"gold\" in both\nID token: %v\naccess token: %v",
				step, id["loyalty_tier"], access["loyalty_tier"], id, access)
		}
		if id["sub"] == "" || id["sub"] != access["sub"] || id["email"] != "demo@example.com" {
			t.Errorf("%s: the extension disturbed the provider's claims: ID token %v, access token %v", step, id, access)
		}
		return id, access
	}
	id, _ := check("code", tr, "n-claims")

	refreshed := tokenRequest(t, d, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}})
	if refreshed.IDToken == "" || refreshed.RefreshToken == "" || refreshed.RefreshToken == tr.RefreshToken {
		t.Fatalf("the refresh's tokens: %+v, want an ID token and a new refresh token", refreshed)
	}
	id2, _ := check("refresh", refreshed, "")
	if id2["sub"] != id["sub"] {
		t.Errorf("the refresh changed the subject: %v, then %v", id["sub"], id2["sub"])
	}
}
