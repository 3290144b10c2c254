package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/cluster"
	"postern.dev/postern/cluster/clustertest"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge"
	"postern.dev/postern/edge/oidc"
	"postern.dev/postern/edge/proxy"
	"postern.dev/postern/edge/tokens"
)

// flowEnv is one edge serving the provider and the proxy together, as the binary does, with tenant acme
// (app web, user ann with a password) and a route app.acme.test → a real upstream. Every host name
// dials the edge, so the client behaves as a browser would with DNS pointing there.
type flowEnv struct {
	t      *testing.T
	base   string
	node   *cluster.Node
	store  *directory.Store
	issuer string
}

const (
	flowPassword = "correct horse battery staple 42"
	flowHost     = "app.acme.test"
)

func newFlowEnv(t *testing.T) *flowEnv {
	t.Helper()
	node, store := clustertest.Single(t)
	kek := clustertest.KEK(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &flowEnv{t: t, base: "http://" + ln.Addr().String(), node: node, store: store}
	e.issuer = e.base + "/acme"
	keys := tokens.NewKeyRing(store, kek)
	prov := oidc.New(oidc.Config{Store: store, Write: node, Keys: keys, KEK: kek, PublicURL: e.base})
	px := proxy.New(proxy.Config{Store: store, Keys: keys, KEK: kek, Write: node, Exchange: prov.ExchangeCode, PublicURL: e.base})
	node.Listen(func(a cluster.Applied) {
		for _, c := range a.Changes {
			prov.Invalidate(c.Tenant, c.Kind)
			px.Invalidate(c.Tenant, c.Kind, c.ID)
		}
	})
	srv := edge.NewServer(node, nil, px, prov)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })

	key, err := directory.NewSigningKey(kek, "acme", "ES256", directory.KeyActive)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := directory.HashPassword(flowPassword)
	now := time.Now()
	e.propose(
		directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: "acme", DisplayName: "Acme"}),
		directory.MakeOp(directory.OpKeyPut, key),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "web", Tenant: "acme", Name: "web", ClientID: "web-client", Type: directory.AppWeb,
			Secrets:      []directory.SecretHash{{Hash: directory.HashClientSecret(directory.NewClientSecret()), CreatedAt: now}},
			RedirectURIs: []string{"http://127.0.0.1:9/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"}}),
		directory.MakeOp(directory.OpUserCreate, directory.User{ID: "ann", Tenant: "acme", Email: "ann@example.com", EmailVerified: true, PasswordHash: hash}),
		directory.MakeOp(directory.OpRoutePut, directory.Route{Host: flowHost, Tenant: "acme", Upstream: newUpstream(t, nil), App: "web",
			Allow: directory.Allow{Authenticated: true}}),
	)
	return e
}

func (e *flowEnv) propose(ops ...directory.Op) {
	e.t.Helper()
	if _, err := e.node.Propose(context.Background(), directory.NewCommand(time.Now(), "test", ops...)); err != nil {
		e.t.Fatal(err)
	}
}

// browser dials the edge for every host and keeps cookies; it follows no redirects itself.
func (e *flowEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	addr := strings.TrimPrefix(e.base, "http://")
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, b *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

var (
	formAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
	csrfValue  = regexp.MustCompile(`name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"`)
)

// signIn follows the proxy's redirects from u, signs in on the tenant's page, and returns the response
// that ends the journey (the upstream's, or the first that is not a redirect) and the callback URL seen.
func (e *flowEnv) signIn(b *http.Client, u string) (*http.Response, string, string) {
	e.t.Helper()
	var callback string
	for range 12 {
		resp, body := get(e.t, b, u)
		if strings.Contains(u, oidc.CallbackPath) {
			callback = u
		}
		switch {
		case resp.StatusCode == http.StatusFound:
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				e.t.Fatal(err)
			}
			u = next.String()
		case resp.StatusCode == http.StatusOK && strings.Contains(body, `name="password"`):
			action := formAction.FindStringSubmatch(body)
			csrf := csrfValue.FindStringSubmatch(body)
			if action == nil || csrf == nil {
				e.t.Fatalf("sign-in page without form or csrf:\n%s", body)
			}
			to, _ := resp.Request.URL.Parse(strings.ReplaceAll(action[1], "&amp;", "&"))
			post, err := b.PostForm(to.String(), url.Values{"csrf": {csrf[1] + csrf[2]}, "email": {"ann@example.com"}, "password": {flowPassword}})
			if err != nil {
				e.t.Fatal(err)
			}
			post.Body.Close()
			if post.StatusCode != http.StatusFound {
				e.t.Fatalf("sign-in POST: %d", post.StatusCode)
			}
			next, _ := post.Request.URL.Parse(post.Header.Get("Location"))
			u = next.String()
		default:
			return resp, body, callback
		}
	}
	e.t.Fatalf("too many redirects, at %s", u)
	return nil, "", ""
}

func TestCookieSignInLandsOnTheOriginalURL(t *testing.T) {
	e := newFlowEnv(t)
	b := e.browser()
	resp, body, callback := e.signIn(b, "http://"+flowHost+"/orders/7?view=full&x=%2F")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("journey ended with %d: %s", resp.StatusCode, body)
	}
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("not the upstream's answer: %s", body)
	}
	if s.URI != "/orders/7?view=full&x=%2F" {
		t.Errorf("landed on %q, want the original URL", s.URI)
	}
	if got := s.headerValues("X-Forwarded-User"); len(got) != 1 || got[0] != "ann" {
		t.Errorf("X-Forwarded-User = %q", got)
	}
	if got := s.headerValues("Cookie"); len(got) > 0 && strings.Contains(got[0], "postern_proxy") {
		t.Errorf("the upstream received Postern's cookie: %q", got)
	}
	if !strings.HasPrefix(callback, "http://"+flowHost+oidc.CallbackPath+"?code=") {
		t.Errorf("callback %q is not the route host's /.postern/callback", callback)
	}
	cb, _ := url.Parse(callback)
	if cb.Query().Get("iss") != e.issuer {
		t.Errorf("callback iss = %q, want %q", cb.Query().Get("iss"), e.issuer)
	}

	// Replaying the callback (code and state) fails: the state cookie is gone and the code is used.
	if resp, _ := get(t, b, callback); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d, want 400", resp.StatusCode)
	}
	// Signed in: straight through, and /.postern/sign_in sends the browser back without a journey.
	if resp, _ := get(t, b, "http://"+flowHost+"/again"); resp.StatusCode != http.StatusOK {
		t.Errorf("second request: %d", resp.StatusCode)
	}
	if resp, _ := get(t, b, "http://"+flowHost+"/.postern/sign_in?rd=%2Fback"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/back" {
		t.Errorf("sign_in while signed in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The cookie is this host's: sent for another routed host of the tenant it is refused.
	hostURL, _ := url.Parse("http://" + flowHost + "/")
	var cookie *http.Cookie
	for _, c := range b.Jar.Cookies(hostURL) {
		if c.Name == "postern_proxy" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no postern_proxy cookie on the route host")
	}
	e.propose(directory.MakeOp(directory.OpRoutePut, directory.Route{Host: "other.acme.test", Tenant: "acme", Upstream: newUpstream(t, nil), App: "web",
		Allow: directory.Allow{Authenticated: true}}))
	req, _ := http.NewRequest("GET", "http://other.acme.test/", nil)
	req.AddCookie(cookie)
	if resp, err := e.browser().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie of %s on other.acme.test: %v %v, want 401", flowHost, err, resp.StatusCode)
	}

	// Sign-out ends the tenant session: the old cookie, replayed, no longer works.
	if resp, _ := get(t, b, "http://"+flowHost+"/.postern/sign_out?rd=%2Fbye"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/bye" {
		t.Errorf("sign_out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ = http.NewRequest("GET", "http://"+flowHost+"/", nil)
	req.AddCookie(cookie)
	if resp, err := e.browser().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie after sign-out: %v %v, want 401", err, resp.StatusCode)
	}
}

// A session revoked anywhere (here: by the tenant's session record, as the provider's sign-out or an
// administrator does) is refused on the next request.
func TestRevokedSessionRefusedWithinOneSecond(t *testing.T) {
	e := newFlowEnv(t)
	b := e.browser()
	if resp, body, _ := e.signIn(b, "http://"+flowHost+"/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	sessions, err := e.store.Sessions("acme")
	if err != nil || len(sessions) != 1 || sessions[0].UserID != "ann" {
		t.Fatalf("sessions of ann: %v %v", sessions, err)
	}
	e.propose(directory.MakeOp(directory.OpSessionRevoke, directory.Ref{Tenant: "acme", ID: sessions[0].ID}))
	revoked := time.Now()
	for {
		resp, _ := get(t, b, "http://"+flowHost+"/")
		if resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), "/.postern/sign_in") {
			t.Logf("refused %v after the revocation was applied", time.Since(revoked))
			return
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("still %d one second after the revocation", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCallbackRefusals(t *testing.T) {
	e := newFlowEnv(t)
	b := e.browser()
	// Start a journey to get a state cookie, then come back with another state.
	resp, _ := get(t, b, "http://"+flowHost+"/.postern/sign_in?rd=%2F")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign_in: %d", resp.StatusCode)
	}
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	q := authURL.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("redirect_uri") != "http://"+flowHost+oidc.CallbackPath || q.Get("client_id") != "web-client" {
		t.Fatalf("authorize request lacks PKCE, nonce, state or the implicit redirect URI: %s", authURL)
	}
	cases := []struct{ name, query string }{
		{"other state", "code=x&state=forged&iss=" + url.QueryEscape(e.issuer)},
		{"other issuer", "code=x&state=" + q.Get("state") + "&iss=" + url.QueryEscape(e.base+"/beta")},
	}
	for _, c := range cases {
		resp, _ := get(t, b, "http://"+flowHost+oidc.CallbackPath+"?"+c.query)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Set-Cookie") == "" {
			t.Errorf("%s: %d, want 400 and the state cookie cleared", c.name, resp.StatusCode)
		}
	}
	// No state cookie at all.
	if resp, _ := get(t, e.browser(), "http://"+flowHost+oidc.CallbackPath+"?code=x&state=y"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without a journey: %d", resp.StatusCode)
	}
}

// Return URLs that a browser would read as another host are refused, in every encoding.
func TestReturnURLRefusals(t *testing.T) {
	e := newFlowEnv(t)
	bad := []string{"//evil", `/\evil`, "/\t/evil", "https:evil", "https://evil.example/", "evil", "javascript:alert(1)",
		"%2F%2Fevil", `%2F%5Cevil`, "/%09/evil", "/%2509/evil", "https%3Aevil", "/%2F/evil", "/%5Cevil", "%252F%252Fevil",
		"/%0d%0aSet-Cookie:x", " /evil", "/ev il"}
	for _, rd := range bad {
		for _, path := range []string{"/.postern/sign_in", "/.postern/sign_out"} {
			resp, _ := get(t, e.browser(), "http://"+flowHost+path+"?rd="+url.QueryEscape(rd))
			if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && !strings.HasPrefix(loc, e.base) {
				t.Errorf("%s rd=%q: redirected to %q", path, rd, loc)
			}
			if path == "/.postern/sign_in" && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("sign_in rd=%q: %d, want 400", rd, resp.StatusCode)
			}
		}
	}
	for _, rd := range []string{"/", "/a/b?x=1&y=%2F", "/caf%C3%A9"} {
		resp, _ := get(t, e.browser(), "http://"+flowHost+"/.postern/sign_in?rd="+url.QueryEscape(rd))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.base+"/acme/authorize?") {
			t.Errorf("rd=%q: %d %q, want the journey to start", rd, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// On a routed host every path but /.postern/ is the app's, /healthz included; the edge's own health
// stays on its own address.
func TestHealthzOfRoutedHostIsTheApps(t *testing.T) {
	e := newFlowEnv(t)
	b := e.browser()
	resp, err := b.Get("http://" + flowHost + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("routed host /healthz: %d, want the proxy's 401", resp.StatusCode)
	}
	resp, err = b.Get(e.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("edge /healthz: %d %q", resp.StatusCode, body)
	}
}
