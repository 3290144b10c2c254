package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"postern.dev/postern/cluster"
	"postern.dev/postern/cluster/clustertest"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge"
	"postern.dev/postern/edge/proxy"
	"postern.dev/postern/edge/tokens"
)

// env is one edge running the proxy in front of a real net/http upstream, with a single-node directory.
type env struct {
	t        testing.TB
	base     string // the edge
	node     *cluster.Node
	store    *directory.Store
	keys     *tokens.KeyRing
	proxy    *proxy.Proxy
	upstream string
	release  chan struct{} // closed at the end: lets the slow handler return
}

// seen is what the upstream reports back about a request.
type seen struct {
	Host    string              `json:"host"`
	URI     string              `json:"uri"`
	Header  map[string][]string `json:"header"`
	BodyLen int64               `json:"body_len"`
	BodySum string              `json:"body_sum"`
}

const (
	acmeHost = "app.acme.test"
	downHost = "down.acme.test"
	bigSize  = 20 << 20
)

func bigBody() []byte {
	b := make([]byte, bigSize)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b
}

func newUpstream(t testing.TB, release chan struct{}) string {
	t.Helper()
	big := bigBody()
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Write(big)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Host: r.Host, URI: r.RequestURI, Header: r.Header, BodyLen: n, BodySum: hex.EncodeToString(h.Sum(nil))})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func newEnv(t testing.TB, opts ...func(*proxy.Config)) *env {
	t.Helper()
	node, store := clustertest.Single(t)
	kek := clustertest.KEK(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, base: "http://" + ln.Addr().String(), node: node, store: store, release: make(chan struct{})}
	t.Cleanup(func() { close(e.release) })
	e.keys = tokens.NewKeyRing(store, kek)
	cfg := proxy.Config{Store: store, Keys: e.keys, PublicURL: "https://id.example", UpstreamTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	e.proxy = proxy.New(cfg)
	node.Listen(func(a cluster.Applied) {
		for _, c := range a.Changes {
			e.proxy.Invalidate(c.Tenant, c.Kind, c.ID)
		}
	})
	srv := edge.NewServer(node, nil, e.proxy) // the real edge server: streamed bodies, health last
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	e.upstream = newUpstream(t, e.release)

	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	for _, id := range []string{"acme", "beta"} {
		key, err := directory.NewSigningKey(kek, id, "ES256", directory.KeyActive)
		if err != nil {
			t.Fatal(err)
		}
		e.propose(
			directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: id, DisplayName: id}),
			directory.MakeOp(directory.OpKeyPut, key),
			directory.MakeOp(directory.OpUserCreate, directory.User{ID: "ann", Tenant: id, Email: "ann@example.com", EmailVerified: true}),
			directory.MakeOp(directory.OpUserCreate, directory.User{ID: "bob", Tenant: id, Email: "bob@example.com", EmailVerified: true}),
			directory.MakeOp(directory.OpGroupCreate, directory.Group{ID: "g-staff", Tenant: id, Name: "staff"}),
			directory.MakeOp(directory.OpGroupCreate, directory.Group{ID: "g-ops", Tenant: id, Name: "ops"}),
			directory.MakeOp(directory.OpMemberAdd, directory.Membership{Tenant: id, GroupID: "g-staff", UserID: "ann"}),
			directory.MakeOp(directory.OpMemberAdd, directory.Membership{Tenant: id, GroupID: "g-ops", UserID: "ann"}),
		)
	}
	allow := directory.Allow{Groups: []string{"staff"}, Paths: []directory.PathRule{
		{Prefix: "/admin", Groups: []string{"admins"}},
		{Prefix: "/ro/", Methods: []string{"GET", "HEAD"}},
	}}
	e.propose(
		directory.MakeOp(directory.OpRoutePut, directory.Route{Host: acmeHost, Tenant: "acme", Upstream: e.upstream, App: "web",
			Allow: allow, PublicPaths: []string{"/static/"}}),
		directory.MakeOp(directory.OpRoutePut, directory.Route{Host: downHost, Tenant: "acme", Upstream: deadURL, App: "web",
			Allow: directory.Allow{Authenticated: true}}),
	)
	return e
}

func (e *env) propose(ops ...directory.Op) {
	e.t.Helper()
	if _, err := e.node.Propose(context.Background(), directory.NewCommand(time.Now(), "test", ops...)); err != nil {
		e.t.Fatal(err)
	}
}

// token signs an access token as the provider does (edge/oidc signAccessToken), returning it and its jti.
func (e *env) token(tenant, sub string) (string, string) {
	e.t.Helper()
	now := time.Now()
	b := make([]byte, 12)
	rand.Read(b)
	jti := hex.EncodeToString(b)
	iss := "https://id.example/" + tenant
	tok, err := e.keys.SignJWT(tenant, "", tokens.TypeAccessToken, tokens.Claims{
		"iss": iss, "sub": sub, "aud": iss, "client_id": "web", "scope": "openid email",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": jti,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok, jti
}

var client = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request to the edge for host with the given headers; set header keys are sent exactly as
// written (no canonicalisation), so look-alike spellings reach the edge.
func (e *env) do(method, host, path string, body io.Reader, header map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readSeen(t *testing.T, resp *http.Response) seen {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// headerValues collects what the upstream saw under every spelling of name ('_' as '-', any case).
func (s seen) headerValues(name string) []string {
	var out []string
	for k, v := range s.Header {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
			out = append(out, v...)
		}
	}
	return out
}

func TestBearerForwardsIdentityAndStripsSpoofs(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.token("acme", "ann")
	var s seen
	// A bodiless GET has the proxy's headers written into its head; any other request has them set
	// through fasthttp's header model: the upstream must see the same either way.
	for _, m := range []struct {
		method string
		body   string
	}{{"GET", ""}, {"POST", "x=1"}, {"DELETE", ""}, {"OPTIONS", ""}} {
		var body io.Reader
		if m.body != "" {
			body = strings.NewReader(m.body)
		}
		s = readSeen(t, e.do(m.method, acmeHost, "/hello?x=1", body, map[string]string{
			"Authorization":       "Bearer " + tok,
			"X-Forwarded-User":    "mallory",
			"x_forwarded_user":    "mallory",
			"X-FORWARDED-EMAIL":   "mallory@evil.test",
			"X_Forwarded_Groups":  "admins",
			"X-Postern-Assertion": "forged",
			"X-Forwarded-For":     "203.0.113.9",
			"X-Forwarded-Host":    "evil.test",
			"X-Forwarded-Proto":   "https",
			"Connection":          "keep-alive, X-Hop",
			"X-Hop":               "secret",
		}))
		want := map[string]string{
			"X-Forwarded-User":   "ann",
			"X-Forwarded-Email":  "ann@example.com",
			"X-Forwarded-Groups": "staff,ops",
			"X-Forwarded-For":    "203.0.113.9, 127.0.0.1",
			"X-Forwarded-Proto":  "http",
			"X-Forwarded-Host":   acmeHost,
		}
		for name, v := range want {
			got := s.headerValues(name)
			if name == "X-Forwarded-Groups" && len(got) == 1 && got[0] == "ops,staff" {
				continue // group order follows ids
			}
			if len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s: upstream saw %q, want exactly %q", m.method, name, got, v)
			}
		}
		if got := s.headerValues("X-Hop"); len(got) != 0 {
			t.Errorf("%s: a header named in Connection was forwarded: %q", m.method, got)
		}
		if s.Host != acmeHost || s.URI != "/hello?x=1" || s.BodyLen != int64(len(m.body)) {
			t.Errorf("%s: upstream saw host %q uri %q body %d bytes", m.method, s.Host, s.URI, s.BodyLen)
		}
		if as := s.headerValues("X-Postern-Assertion"); len(as) != 1 || as[0] == "forged" {
			t.Errorf("%s: assertions %q", m.method, as)
		}
	}
	s = readSeen(t, e.do("GET", acmeHost, "/hello?x=1", nil, map[string]string{"Authorization": "Bearer " + tok}))
	as := s.headerValues("X-Postern-Assertion")
	if len(as) != 1 {
		t.Fatalf("assertions: %q", as)
	}
	// The assertion verifies with the tenant's published keys, for the route's host.
	var set jose.JSONWebKeySet
	raw, err := e.keys.JWKS("acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(as[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var std jwt.Claims
	var extra struct {
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
	}
	if err := parsed.Claims(&set, &std, &extra); err != nil {
		t.Fatalf("assertion does not verify with the tenant's JWKS: %v", err)
	}
	if err := std.Validate(jwt.Expected{Issuer: "https://id.example/acme", Subject: "ann", AnyAudience: jwt.Audience{acmeHost}, Time: time.Now()}); err != nil {
		t.Fatalf("assertion claims: %v", err)
	}
	if extra.Email != "ann@example.com" || len(extra.Groups) != 2 {
		t.Errorf("assertion extra claims: %+v", extra)
	}
	if time.Until(std.Expiry.Time()) > 61*time.Second {
		t.Errorf("assertion lives too long: exp %v", std.Expiry.Time())
	}
	// Nor can tenant beta's key pass for it.
	if rawB, _ := e.keys.JWKS("beta"); rawB != nil {
		var setB jose.JSONWebKeySet
		json.Unmarshal(rawB, &setB)
		if err := parsed.Claims(&setB, &std); err == nil {
			t.Error("the assertion verified with another tenant's keys")
		}
	}
}

func TestPublicPathNeedsNoTokenAndCarriesNoIdentity(t *testing.T) {
	e := newEnv(t)
	s := readSeen(t, e.do("GET", acmeHost, "/static/app.css", nil, map[string]string{"X-Forwarded-User": "mallory", "x_postern_assertion": "x"}))
	for _, h := range []string{"X-Forwarded-User", "X-Postern-Assertion"} {
		if got := s.headerValues(h); len(got) != 0 {
			t.Errorf("%s reached the upstream on a public path: %q", h, got)
		}
	}
	// A dot segment does not turn a public prefix into a way around sign-in.
	if resp := e.do("GET", acmeHost, "/static/../secret", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/static/../secret: %d, want 401", resp.StatusCode)
	}
}

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", acmeHost, "/private", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="app.acme.test"` {
		t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = e.do("GET", acmeHost, "/private", nil, map[string]string{"Authorization": "Bearer not.a.jwt"})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="app.acme.test", error="invalid_token"` {
		t.Errorf("bad token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = e.do("GET", acmeHost, "/private/page?a=b&c=d", nil, map[string]string{"Accept": "text/html,application/xhtml+xml"})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.postern/sign_in?rd=%2Fprivate%2Fpage%3Fa%3Db%26c%3Dd" {
		t.Errorf("browser: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = e.do("GET", acmeHost, "/.postern/anything", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/.postern/: %d, want 404", resp.StatusCode)
	}
	// A host that is no route is not the proxy's.
	if resp := e.do("GET", "other.test", "/", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unrouted host: %d", resp.StatusCode)
	}
}

func TestOtherTenantsTokenRefused(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.token("beta", "ann") // same user id, other tenant
	resp := e.do("GET", acmeHost, "/private", nil, map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tenant beta's token on acme's route: %d, want 401", resp.StatusCode)
	}
}

func TestForbidden(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.token("acme", "ann")
	bob, _ := e.token("acme", "bob")
	cases := []struct {
		tok, method, path string
		want              int
	}{
		{bob, "GET", "/", http.StatusForbidden},              // not in staff
		{ann, "GET", "/admin/x", http.StatusForbidden},       // the /admin rule needs admins
		{ann, "GET", "/ro/x", http.StatusOK},                 // method listed
		{ann, "POST", "/ro/x", http.StatusForbidden},         // method not listed
		{ann, "POST", "/other", http.StatusOK},               // no path rule: the route's groups
		{ann, "GET", "/administrator", http.StatusForbidden}, // prefix rules are string prefixes
	}
	for _, c := range cases {
		resp := e.do(c.method, acmeHost, c.path, nil, map[string]string{"Authorization": "Bearer " + c.tok})
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
	// Joining the group opens the route at once (the user cache follows the change).
	e.propose(directory.MakeOp(directory.OpMemberAdd, directory.Membership{Tenant: "acme", GroupID: "g-staff", UserID: "bob"}))
	if resp := e.do("GET", acmeHost, "/", nil, map[string]string{"Authorization": "Bearer " + bob}); resp.StatusCode != http.StatusOK {
		t.Errorf("after joining staff: %d", resp.StatusCode)
	}
}

func TestRevokedTokenRefusedAtOnce(t *testing.T) {
	e := newEnv(t)
	tok, jti := e.token("acme", "ann")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	if resp := e.do("GET", acmeHost, "/", nil, auth); resp.StatusCode != http.StatusOK {
		t.Fatalf("before revocation: %d", resp.StatusCode) // now in the token cache
	}
	e.propose(directory.MakeOp(directory.OpTokenRevoke, directory.RevokedToken{Tenant: "acme", JTI: jti, ExpiresAt: time.Now().Add(time.Hour)}))
	if resp := e.do("GET", acmeHost, "/", nil, auth); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after revocation: %d, want 401", resp.StatusCode)
	}
	// A blocked user is refused too, cached token or not.
	tok2, _ := e.token("acme", "ann")
	auth2 := map[string]string{"Authorization": "Bearer " + tok2}
	e.do("GET", acmeHost, "/", nil, auth2)
	blocked := true
	e.propose(directory.MakeOp(directory.OpUserUpdate, directory.UserPatch{Tenant: "acme", ID: "ann", Blocked: &blocked}))
	if resp := e.do("GET", acmeHost, "/", nil, auth2); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("blocked user: %d, want 401", resp.StatusCode)
	}
}

func TestUpstreamFailures(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.token("acme", "ann")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	resp := e.do("GET", downHost, "/", nil, auth)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || bytes.Contains(body, []byte("refused")) || bytes.Contains(body, []byte("127.0.0.1")) {
		t.Errorf("upstream down: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	resp = e.do("GET", acmeHost, "/slow", nil, auth)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusGatewayTimeout || bytes.Contains(body, []byte("timeout")) && bytes.Contains(body, []byte("i/o")) {
		t.Errorf("slow upstream: %d %q", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("504 took %v", d)
	}
}

func TestLargeBodiesStreamBothWays(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.token("acme", "ann")
	big := bigBody()
	sum := sha256.Sum256(big)
	// Upload with a length and chunked (no length).
	for _, r := range []io.Reader{bytes.NewReader(big), io.MultiReader(bytes.NewReader(big))} {
		s := readSeen(t, e.do("POST", acmeHost, "/upload", r, map[string]string{"Authorization": "Bearer " + tok}))
		if s.BodyLen != bigSize || s.BodySum != hex.EncodeToString(sum[:]) {
			t.Errorf("upload: upstream got %d bytes, sum %s", s.BodyLen, s.BodySum)
		}
	}
	resp := e.do("GET", acmeHost, "/download", nil, map[string]string{"Authorization": "Bearer " + tok})
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || n != bigSize || !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Errorf("download: %d, %d bytes, err %v", resp.StatusCode, n, err)
	}
	if resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop Keep-Alive came back from the upstream")
	}
}
