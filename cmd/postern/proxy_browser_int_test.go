package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// The auth proxy through the real binary: `postern dev`'s demo route (demo.localhost:<edge port>) in
// front of the sample upstream, signed in to by headless Chromium with the hosted pages, and by plain
// HTTP clients with and without a bearer token.

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// revocationBound is how soon a revoked session's host cookie must stop working: the proxy promises
// "well within one second" (edge/proxy/state.go).
const revocationBound = time.Second

// proxyDev is a `postern dev` with what the proxy tests need from its start-up message.
type proxyDev struct {
	*devServer
	port     string // the edge's port, shared by the issuer and the demo route's host
	host     string // the demo route's host: demo.localhost:<port>
	issuer   string
	sample   string // the sample upstream's URL
	password string // the sample user's
	secret   string // demo-web's client secret
}

var sampleLine = regexp.MustCompile(`Sample app:\s+(http://\S+)`)

func startProxyDev(t *testing.T) *proxyDev {
	t.Helper()
	d := startDev(t)
	out := strings.Join(d.printed, "\n")
	pw, sec, sample := userLine.FindStringSubmatch(out), secretLine.FindStringSubmatch(out), sampleLine.FindStringSubmatch(out)
	if pw == nil || sec == nil || sample == nil {
		t.Fatalf("the start-up message lacks the sample user, client or app:\n%s", out)
	}
	u, err := url.Parse(d.edgeURL)
	if err != nil {
		t.Fatal(err)
	}
	return &proxyDev{devServer: d, port: u.Port(), host: "demo.localhost:" + u.Port(), issuer: d.edgeURL + "/demo",
		sample: sample[1], password: pw[1], secret: sec[1]}
}

// client is an HTTP client that reaches every host through the edge's listener (so
// demo.localhost:<port> needs no resolver) and follows no redirects.
func (d *proxyDev) client() *http.Client {
	edge := strings.TrimPrefix(d.edgeURL, "http://")
	return &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", edge)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       5 * time.Second,
	}
}

// get sends a GET with the given headers and returns the status, headers and body.
func get(t *testing.T, c *http.Client, rawURL string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestProxyBrowserSignIn signs in to the demo route in real Chromium: the unauthenticated request goes
// to the tenant's hosted sign-in page, and after the password the browser lands on the page it asked for,
// served by the sample upstream with the user's identity. The host cookie is HttpOnly and never reaches
// an upstream: a second route of the tenant, in front of a recording upstream, shows the Cookie header
// the app gets (single sign-on, no second password).
func TestProxyBrowserSignIn(t *testing.T) {
	needChromium(t)
	d := startProxyDev(t)
	rec := newRecordingUpstream(t)
	echoHost := "echo.localhost:" + d.port
	applyExtraRoute(t, d, echoHost, rec.url)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	tab := startChromium(t, ctx)
	docs := recordDocuments(t, tab)

	want := "http://" + d.host + "/some/path?q=1"
	signInWithPassword(t, tab, want, d.issuer, "demo@example.com", d.password)
	if shown := docs.urls(); len(shown) != 2 || !strings.HasPrefix(shown[0], d.issuer+"/sign-in?") {
		t.Errorf("the browser showed %q, want the tenant's sign-in page and then %s", shown, want)
	}

	p := readSamplePage(t, tab)
	if p.Path != "/some/path" {
		t.Errorf("the upstream served path %q, want /some/path", p.Path)
	}
	user, email, raw := p.Headers["X-Forwarded-User"], p.Headers["X-Forwarded-Email"], p.Headers["X-Postern-Assertion"]
	if user == "" || email != "demo@example.com" || raw == "" {
		t.Fatalf("identity headers at the upstream: %v", p.Headers)
	}
	for name := range p.Headers {
		if strings.Contains(strings.ToLower(name), "cookie") {
			t.Errorf("the upstream received a header %s: %q", name, p.Headers[name])
		}
	}
	claims := checkAssertion(t, ctx, raw, d.issuer, d.host)
	if claims["sub"] != user || claims["email"] != "demo@example.com" {
		t.Errorf("assertion sub %v, email %v; X-Forwarded-User %q", claims["sub"], claims["email"], user)
	}

	c := hostCookie(t, tab, "http://"+d.host+"/")
	if c == nil {
		t.Fatal("no postern_proxy cookie for the demo host after signing in")
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Domain != "demo.localhost" {
		t.Errorf("postern_proxy cookie: HttpOnly %v, SameSite %q, Path %q, Domain %q; want HttpOnly, Lax, /, host-only demo.localhost",
			c.HTTPOnly, c.SameSite, c.Path, c.Domain)
	}
	if js, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(js, "postern") {
		t.Errorf("page script reads the proxy's cookie: %q %v", js, err)
	}

	// A second route of the tenant: single sign-on, and the app's own cookie passes while the proxy's
	// do not.
	if _, err := chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: "app_pref", Value: "blue", URL: "http://" + echoHost + "/"}); err != nil {
		t.Fatalf("setting the app's cookie: %v", err)
	}
	seen := len(docs.urls())
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+echoHost+"/echo?x=1")); err != nil {
		t.Fatalf("navigating to the second route: %v", err)
	}
	if shown := docs.urls()[seen:]; len(shown) != 1 || shown[0] != "http://"+echoHost+"/echo?x=1" {
		t.Errorf("single sign-on to the second route showed %q, want only its page", shown)
	}
	got := rec.requests()
	if len(got) == 0 {
		t.Fatal("the second route's upstream got no request")
	}
	for _, r := range got {
		if cookie := r.Header.Get("Cookie"); strings.Contains(cookie, "postern_") || (r.URL.Path == "/echo" && !strings.Contains(cookie, "app_pref=blue")) {
			t.Errorf("the upstream got Cookie %q for %s; want the app's app_pref=blue and no postern_ cookie", cookie, r.URL)
		}
	}
	r := got[0]
	if r.URL.Path != "/echo" || r.Header.Get("X-Forwarded-User") != user || r.Header.Get("X-Forwarded-Host") != echoHost {
		t.Errorf("the second route's upstream got %s with user %q, host %q; want /echo, %q, %s",
			r.URL, r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Host"), user, echoHost)
	}
	// The assertion is per route: its audience is the host it was made for.
	checkAssertion(t, ctx, r.Header.Get("X-Postern-Assertion"), d.issuer, echoHost)
}

// TestProxyBrowserRevocation signs in in Chromium, hands the host cookie to a Go client, and ends the
// session twice over: once with the host's /.postern/sign_out, once (after a fresh sign-in) with the
// tenant's own end-session endpoint on the issuer's host, which the host cookie never sees. Either way
// the proxy must refuse the saved cookie within a second of the sign-out response.
func TestProxyBrowserRevocation(t *testing.T) {
	needChromium(t)
	d := startProxyDev(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	tab := startChromium(t, ctx)
	docs := recordDocuments(t, tab)
	c := d.client()
	target := "http://" + d.host + "/some/path?q=1"

	endSession := d.issuer + "/end_session"
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if resp, body := get(t, http.DefaultClient, d.issuer+"/.well-known/openid-configuration", nil); resp.StatusCode != 200 || json.Unmarshal([]byte(body), &meta) != nil {
		t.Fatalf("discovery: %d %s", resp.StatusCode, body)
	}
	if meta.EndSession != "" {
		endSession = meta.EndSession
	} else {
		t.Logf("discovery has no end_session_endpoint (CONTRACT.md lists it); using %s", endSession)
	}

	for _, step := range []struct {
		name, signOut string
	}{
		{"host sign_out", "http://" + d.host + "/.postern/sign_out"},
		{"tenant end_session", endSession},
	} {
		signInWithPassword(t, tab, target, d.issuer, "demo@example.com", d.password)
		hc := hostCookie(t, tab, "http://"+d.host+"/")
		if hc == nil {
			t.Fatalf("%s: no postern_proxy cookie after signing in", step.name)
		}
		cookie := sessionCookie + "=" + hc.Value
		if resp, body := get(t, c, target, map[string]string{"Cookie": cookie}); resp.StatusCode != 200 || !strings.Contains(body, "X-Forwarded-User") {
			t.Fatalf("%s: the saved cookie from Go before signing out: %d\n%s", step.name, resp.StatusCode, body)
		}

		probes := startProbing(c, target, cookie)
		started := time.Now()
		if err := chromedp.Do(tab, chromedp.Navigate(step.signOut)); err != nil {
			probes.stop()
			t.Fatalf("%s: navigating to %s: %v", step.name, step.signOut, err)
		}
		answered, status, ok := docs.response(step.signOut, started)
		if !ok || status != 200 {
			probes.stop()
			t.Fatalf("%s: the browser got no sign-out page from %s (status %d; documents %q)", step.name, step.signOut, status, docs.urls())
		}
		refused, ok := probes.firstRefusal(answered.Add(revocationBound + 500*time.Millisecond))
		all := probes.stop()
		if !ok {
			t.Fatalf("%s: the proxy still served the revoked session's cookie %v after the sign-out response; probes: %v",
				step.name, time.Since(answered).Round(time.Millisecond), all)
		}
		delay := refused.at.Sub(answered)
		t.Logf("%s: the saved cookie was refused %v after the sign-out response (probes every %v; %d probes)",
			step.name, delay.Round(time.Millisecond), probeInterval, len(all))
		if delay > revocationBound {
			t.Errorf("%s: refused %v after the sign-out response, want within %v", step.name, delay, revocationBound)
		}
		served := 0
		for _, p := range all {
			if p.at.Before(refused.at) && p.status == 200 {
				served++
			}
			if p.at.Before(started) && p.status != 200 {
				t.Errorf("%s: refused before the sign-out started: %+v", step.name, p)
			}
			if !p.at.Before(refused.at) && p.status == 200 {
				t.Errorf("%s: served again after the refusal: %+v", step.name, p)
			}
		}
		if served == 0 {
			t.Errorf("%s: no probe was served before the refusal, so it proves nothing: %v", step.name, all)
		}
		if refused.status != http.StatusFound || !strings.HasPrefix(refused.location, "/.postern/sign_in?rd=") {
			t.Errorf("%s: a browser request with the revoked cookie got %d Location %q, want 302 to /.postern/sign_in", step.name, refused.status, refused.location)
		}
		resp, _ := get(t, c, target, map[string]string{"Cookie": cookie, "Accept": "application/json"})
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: an API request with the revoked cookie got %d %q, want 401 Bearer", step.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if strings.HasPrefix(step.signOut, "http://"+d.host+"/") && hostCookie(t, tab, "http://"+d.host+"/") != nil {
			t.Errorf("%s: the browser still holds postern_proxy after the host's sign-out", step.name)
		}
	}
}

// TestProxyBrowserRedirectBearerAndPublicPath asks the demo route without a browser: without
// credentials a browser is sent to sign in and anything else gets 401 Bearer; a bearer access token of
// the tenant is accepted; a public path is forwarded without identity, even a forged one.
func TestProxyBrowserRedirectBearerAndPublicPath(t *testing.T) {
	d := startProxyDev(t)
	c := d.client()
	base := "http://" + d.host

	resp, _ := get(t, c, base+"/some/path?q=1", map[string]string{"Accept": "text/html,application/xhtml+xml"})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.postern/sign_in?rd="+url.QueryEscape("/some/path?q=1") {
		t.Errorf("browser without a session: %d Location %q, want 302 to /.postern/sign_in?rd=", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get(t, c, base+"/some/path", map[string]string{"Accept": "application/json"})
	if want := `Bearer realm="` + d.host + `"`; resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Errorf("API client without credentials: %d WWW-Authenticate %q, want 401 %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	if strings.Contains(body, "Sample app") {
		t.Errorf("the refusal carries the upstream's page:\n%s", body)
	}
	resp, _ = get(t, c, base+"/some/path", map[string]string{"Authorization": "Bearer not-a-token"})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad bearer token: %d WWW-Authenticate %q, want 401 with error=\"invalid_token\"", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	resp, body = get(t, c, base+"/public/x", map[string]string{"Accept": "application/json", "X-Forwarded-User": "mallory",
		"X-Forwarded-Email": "mallory@example.com", "X-Postern-Assertion": "forged"})
	p := parseSamplePage(body)
	if resp.StatusCode != 200 || p.Path != "/public/x" {
		t.Fatalf("public path: %d\n%s", resp.StatusCode, body)
	}
	for _, h := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Postern-Assertion"} {
		if v, ok := p.Headers[h]; ok {
			t.Errorf("public path: the upstream got %s: %q, want none", h, v)
		}
	}

	// A bearer access token from the demo client's own code flow.
	token := demoAccessToken(t, d)
	resp, body = get(t, c, base+"/api/thing", map[string]string{"Authorization": "Bearer " + token})
	p = parseSamplePage(body)
	if resp.StatusCode != 200 || p.Path != "/api/thing" || p.Headers["X-Forwarded-User"] == "" || p.Headers["X-Forwarded-Email"] != "demo@example.com" {
		t.Fatalf("bearer access token: %d %+v\n%s", resp.StatusCode, p, body)
	}
	claims := checkAssertion(t, t.Context(), p.Headers["X-Postern-Assertion"], d.issuer, d.host)
	if claims["sub"] != p.Headers["X-Forwarded-User"] {
		t.Errorf("assertion sub %v, X-Forwarded-User %q", claims["sub"], p.Headers["X-Forwarded-User"])
	}
}

// demoAccessToken signs the sample user in to demo-web with a plain HTTP client and redeems the code.
func demoAccessToken(t *testing.T, d *proxyDev) string {
	t.Helper()
	const redirectURI = "http://127.0.0.1:9000/callback"
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), redirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	auth := d.issuer + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"demo-web"},
		"redirect_uri": {redirectURI}, "scope": {"openid email"}, "state": {"st"}}.Encode()
	resp := postForm(t, b, auth, url.Values{"email": {"demo@example.com"}, "password": {d.password}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("signing in to demo-web: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tr, err := http.PostForm(d.issuer+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirectURI}, "client_id": {"demo-web"}, "client_secret": {d.secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(tr.Body).Decode(&tok); err != nil || tr.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("redeeming the code: %d %v", tr.StatusCode, err)
	}
	return tok.AccessToken
}

// checkAssertion verifies X-Postern-Assertion as an upstream would, with the tenant's published keys,
// and returns its claims.
func checkAssertion(t *testing.T, ctx context.Context, raw, issuer, host string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("X-Postern-Assertion is not a JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(b, &claims) != nil {
		t.Fatalf("X-Postern-Assertion payload: %q %v", parts[1], err)
	}
	if claims["iss"] != issuer || claims["aud"] != host || claims["sub"] == "" {
		t.Errorf("assertion iss %v, aud %v, sub %v; want %s, %s and a subject", claims["iss"], claims["aud"], claims["sub"], issuer, host)
	}
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if _, err := provider.Verifier(&gooidc.Config{ClientID: host}).Verify(ctx, raw); err != nil {
		t.Errorf("the assertion does not verify with the tenant's keys for audience %s: %v", host, err)
	}
	return claims
}

// applyExtraRoute applies the sample manifest again with a second route of demo-web, host → upstream.
func applyExtraRoute(t *testing.T, d *proxyDev, host, upstream string) {
	t.Helper()
	raw, err := os.ReadFile("sample-tenant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("${SAMPLE_UPSTREAM}", d.sample, "${EDGE_PORT}", d.port).Replace(string(raw))
	text = strings.TrimRight(text, "\n") + fmt.Sprintf("\n  - {host: %q, upstream: %q, app: demo-web, allow: {authenticated: true}}\n", host, upstream)
	file := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, r, stderr := applyFile(t, d.devServer, file)
	if code != 0 || !r.Changed {
		t.Fatalf("applying the demo manifest with a second route: exit %d, %+v, %s", code, r, stderr)
	}
	t.Logf("second route %s → %s: %v", host, upstream, r.Changes)
}

// recordingUpstream is an app behind the proxy that keeps every request it got.
type recordingUpstream struct {
	url  string
	mu   sync.Mutex
	reqs []*http.Request
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(context.Background()))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Recorder</title></head><body><p>Recorded.</p></body></html>`)
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

func (u *recordingUpstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

// samplePage is what the sample upstream shows: the path it was asked for and the X- headers it got.
type samplePage struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

var (
	samplePath = regexp.MustCompile(`<p>Path: ([^<]*)</p>`)
	sampleRow  = regexp.MustCompile(`<tr><th>([^<]*)</th><td>([^<]*)</td></tr>`)
)

func parseSamplePage(body string) samplePage {
	p := samplePage{Headers: map[string]string{}}
	if m := samplePath.FindStringSubmatch(body); m != nil {
		p.Path = html.UnescapeString(m[1])
	}
	for _, m := range sampleRow.FindAllStringSubmatch(body, -1) {
		p.Headers[html.UnescapeString(m[1])] = html.UnescapeString(m[2])
	}
	return p
}

// readSamplePage reads the sample upstream's page the way the browser rendered it.
func readSamplePage(t *testing.T, tab context.Context) samplePage {
	t.Helper()
	p, err := chromedp.Run(tab, chromedp.Evaluate[samplePage](`(() => ({
		path: (document.querySelector('p')?.textContent ?? '').replace(/^Path: /, ''),
		headers: Object.fromEntries([...document.querySelectorAll('tr')].map(r => [r.querySelector('th').textContent, r.querySelector('td').textContent])),
	}))()`))
	if err != nil {
		t.Fatalf("reading the sample app's page: %v", err)
	}
	return p
}

// signInWithPassword opens start in the tab, expects the tenant's sign-in page, signs in and expects to
// come back to start.
func signInWithPassword(t *testing.T, tab context.Context, start, issuer, email, password string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(start)); err != nil {
		t.Fatalf("navigating to %s: %v", start, err)
	}
	if loc, _ := chromedp.Run(tab, chromedp.Location()); !strings.HasPrefix(loc, issuer+"/sign-in?") {
		t.Fatalf("%s led to %s, want the tenant's sign-in page", start, loc)
	}
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS(`input[autocomplete="username"]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[autocomplete="current-password"]`), password),
	); err != nil {
		t.Fatalf("filling in the sign-in form: %v", err)
	}
	submitted, stop := context.WithTimeout(tab, 10*time.Second)
	_, err := chromedp.Run(submitted, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`form [type="submit"]`))))
	stop()
	loc, _ := chromedp.Run(tab, chromedp.Location())
	if err != nil || loc != start {
		text, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body?.innerText ?? ''`))
		t.Fatalf("after signing in the browser is at %s (%v), want %s; the page says:\n%s", loc, err, start, text)
	}
}

// hostCookie returns the browser's postern_proxy cookie for a URL, or nil.
func hostCookie(t *testing.T, tab context.Context, forURL string) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{forURL}})
	if err != nil {
		t.Fatalf("reading the browser's cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

const sessionCookie = "postern_proxy"

// probeInterval is how often the revocation probes ask.
const probeInterval = 50 * time.Millisecond

type probeResult struct {
	at       time.Time // when the answer came
	status   int
	location string
}

func (p probeResult) String() string {
	return fmt.Sprintf("%s %d %s", p.at.Format("15:04:05.000"), p.status, p.location)
}

// probes asks the proxy with a saved cookie, as a browser would, every probeInterval until stopped.
type probes struct {
	mu      sync.Mutex
	results []probeResult
	refused chan probeResult // the first refusal
	done    chan struct{}
	stopped chan struct{}
}

func startProbing(c *http.Client, pageURL, cookie string) *probes {
	p := &probes{refused: make(chan probeResult, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		tick := time.NewTicker(probeInterval)
		defer tick.Stop()
		seenRefusal := false
		for {
			req, _ := http.NewRequest(http.MethodGet, pageURL, nil)
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "text/html")
			r := probeResult{status: -1}
			if resp, err := c.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				r.status, r.location = resp.StatusCode, resp.Header.Get("Location")
			} else {
				r.location = err.Error()
			}
			r.at = time.Now()
			p.mu.Lock()
			p.results = append(p.results, r)
			p.mu.Unlock()
			if r.status != 200 && !seenRefusal {
				seenRefusal = true
				p.refused <- r
			}
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// firstRefusal waits until the first answer that is not 200, or the deadline.
func (p *probes) firstRefusal(deadline time.Time) (probeResult, bool) {
	select {
	case r := <-p.refused:
		// A few more answers, to see the refusal stays.
		time.Sleep(3 * probeInterval)
		return r, true
	case <-time.After(time.Until(deadline)):
		return probeResult{}, false
	}
}

func (p *probes) stop() []probeResult {
	close(p.done)
	<-p.stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.results
}

// documentLog is the documents a tab received, with when their response arrived: redirects are not
// documents, so a page the browser showed is here and a 302 it followed is not.
type documentLog struct {
	mu   sync.Mutex
	docs []document
}

type document struct {
	url    string
	status int64
	at     time.Time
}

func recordDocuments(t *testing.T, tab context.Context) *documentLog {
	t.Helper()
	d := &documentLog{}
	err := chromedp.Listen(tab, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && r.Type == network.ResourceTypeDocument {
			d.mu.Lock()
			d.docs = append(d.docs, document{r.Response.URL, r.Response.Status, time.Now()})
			d.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *documentLog) urls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, x := range d.docs {
		out = append(out, x.url)
	}
	return out
}

// response returns when the document at u (query ignored) arrived after since, and its status.
func (d *documentLog) response(u string, since time.Time) (time.Time, int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.docs {
		if x.at.After(since) && strings.SplitN(x.url, "?", 2)[0] == u {
			return x.at, x.status, true
		}
	}
	return time.Time{}, 0, false
}

// needChromium skips without the browser, unless CI is set: there a missing browser is a failure.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("needs Debian's chromium at /usr/bin/chromium; .ci/run installs it")
		}
		t.Fatalf("CI is set and the browser is missing: %v", err)
	}
}

// startChromium starts headless Chromium with the flags that work as root (MACHINE-NOTES.md), as
// edge/oidc's browser tests do, and returns the context of its first tab. The browser ends with ctx or
// when the test ends, whichever is first.
func startChromium(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(800, 640),
		chromedp.UserDataDir(t.TempDir()),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return tab
}
