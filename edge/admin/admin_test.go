package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
)

// These tests run the admin API in process: a single-node raft cluster on an in-memory directory, the
// fasthttp server on an in-memory listener, and a net/http client that dials it. Each top-level test has
// its own cluster (a second or so to elect itself), so they run in parallel.

const (
	testToken     = "test-admin-token-0123456789"
	testPublicURL = "https://id.example.test"
)

// testEnv is one node with the admin API in front of it.
type testEnv struct {
	srv   *Server
	node  *cluster.Node
	store *directory.Store
	kek   *directory.KEK
	log   *lockedBuffer
	http  *http.Client
}

// lockedBuffer collects the server's log lines; the server writes from its own goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	store, err := directory.OpenMemory(directory.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	return serveTestEnv(t, store)
}

// serveTestEnv starts a single-voter node on store and the admin API on it.
func serveTestEnv(t *testing.T, store *directory.Store) *testEnv {
	t.Helper()
	node, err := cluster.Start(cluster.Config{ID: "n1", DataDir: t.TempDir(), Voter: true, Bootstrap: true, Store: store})
	if err != nil {
		store.Close()
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() {
		node.Close()
		store.Close()
	})
	waitFor(t, "a leader", func() bool { _, addr := node.Leader(); return addr != "" })
	// The node records itself in the directory once it leads; wait for that write so that no write but
	// the test's own moves the applied index later.
	waitFor(t, "the node's own record", func() bool { ns, err := store.Nodes(); return err == nil && len(ns) == 1 })

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	kek, err := directory.NewKEK(key)
	if err != nil {
		t.Fatalf("making KEK: %v", err)
	}
	logs := &lockedBuffer{}
	srv := New(Config{Cluster: node, Token: testToken, KEK: kek, PublicURL: testPublicURL,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ln := fasthttputil.NewInmemoryListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.Dial() },
		},
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutting down: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serving: %v", err)
		}
	})
	return &testEnv{srv: srv, node: node, store: store, kek: kek, log: logs, http: client}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// response is an answer of the API, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the admin token. body is nil (none), a string or []byte (sent as is, as JSON
// unless a Content-Type is given), or any other value (marshalled to JSON). header is name, value pairs;
// an Authorization pair replaces the token, and an empty value sends none.
func (e *testEnv) do(t *testing.T, method, path string, body any, header ...string) response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshalling request body: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, "http://admin.test"+path, r)
	if err != nil {
		t.Fatalf("making request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request, fails the test unless the status is want, and decodes a JSON answer into out
// (unless out is nil).
func (e *testEnv) must(t *testing.T, want int, method, path string, body any, out any, header ...string) response {
	t.Helper()
	r := e.do(t, method, path, body, header...)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// apiErrorBody is the error answer of the API.
type apiErrorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details []json.RawMessage `json:"details"`
	} `json:"error"`
}

// mustFail sends a request, fails the test unless the status is want and the body is an error with
// code, and returns the error.
func (e *testEnv) mustFail(t *testing.T, want int, code, method, path string, body any, header ...string) apiErrorBody {
	t.Helper()
	r := e.do(t, method, path, body, header...)
	var eb apiErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("%s %s: status %d, body is not an error body: %s", method, path, r.status, r.body)
	}
	if r.status != want || eb.Error.Code != code {
		t.Fatalf("%s %s: status %d code %q, want %d %q; body: %s", method, path, r.status, eb.Error.Code, want, code, r.body)
	}
	if eb.Error.Message == "" {
		t.Errorf("%s %s: error without a message: %s", method, path, r.body)
	}
	return eb
}

// index is the X-Postern-Index of a write's answer.
func (r response) index(t *testing.T) uint64 {
	t.Helper()
	h := r.header.Get("X-Postern-Index")
	n, err := strconv.ParseUint(h, 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("X-Postern-Index = %q, want a raft index", h)
	}
	return n
}

func (e *testEnv) createTenant(t *testing.T, id string) {
	t.Helper()
	e.must(t, http.StatusCreated, "POST", "/admin/v1/tenants", map[string]any{"id": id}, nil)
}

// Views of the answers, as a client decodes them.
type (
	tenantOut struct {
		directory.Tenant
		Issuer string `json:"issuer"`
	}
	appOut struct {
		directory.App
		ClientSecret string `json:"client_secret"`
	}
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tests := []struct {
		name   string
		path   string
		auth   string // the Authorization header; "" sends none
		status int
	}{
		// Public endpoints answer without a token, in this order (metrics then counts /healthz).
		{"healthz", "/healthz", "", 200},
		{"readyz", "/readyz", "", 200},
		{"metrics", "/metrics", "", 200},
		{"openapi", "/admin/v1/openapi.json", "", 200},
		{"public with a wrong token too", "/healthz", "Bearer wrong", 200},

		{"no token", "/admin/v1/tenants", "", 401},
		{"wrong token", "/admin/v1/tenants", "Bearer wrong", 401},
		{"prefix of the token", "/admin/v1/tenants", "Bearer " + testToken[:len(testToken)-1], 401},
		{"token with more", "/admin/v1/tenants", "Bearer " + testToken + "x", 401},
		{"basic scheme", "/admin/v1/tenants", "Basic " + testToken, 401},
		{"scheme only", "/admin/v1/tenants", "Bearer ", 401},
		{"right token", "/admin/v1/tenants", "Bearer " + testToken, 200},
		{"scheme in another case", "/admin/v1/tenants", "bearer " + testToken, 200},
		{"cluster needs a token", "/admin/v1/cluster", "", 401},
		{"backup needs a token", "/admin/v1/backup", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "GET", tc.path, nil, "Authorization", tc.auth)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body: %s", r.status, tc.status, r.body)
			}
			if tc.status != 401 {
				return
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
			}
			var eb apiErrorBody
			if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error.Code != "unauthorized" {
				t.Errorf("body = %s, want an error with code unauthorized", r.body)
			}
		})
	}
	t.Run("metrics count requests", func(t *testing.T) {
		r := e.must(t, 200, "GET", "/metrics", nil, nil, "Authorization", "")
		if want := `postern_admin_requests_total{code="200",route="GET /healthz"}`; !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s:\n%s", want, r.body)
		}
		if want := `postern_admin_requests_total{code="401",route="GET /admin/v1/tenants"}`; !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	})
}

func TestTenants(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)

	var created tenantOut
	r := e.must(t, 201, "POST", "/admin/v1/tenants", map[string]any{"id": "acme", "display_name": "Acme Shop", "default_locale": "en"}, &created)
	idx := r.index(t)
	if created.ID != "acme" || created.DisplayName != "Acme Shop" || created.Issuer != testPublicURL+"/acme" {
		t.Errorf("created = %+v, want acme with issuer %s/acme", created, testPublicURL)
	}
	if created.CreatedAt.IsZero() {
		t.Errorf("created_at is zero")
	}
	if idx != e.store.AppliedIndex() {
		t.Errorf("X-Postern-Index = %d, store applied %d", idx, e.store.AppliedIndex())
	}
	keys, err := e.store.SigningKeys("acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Alg != "ES256" || keys[0].State != directory.KeyActive {
		t.Fatalf("signing keys = %+v, want one active ES256 key", keys)
	}
	if _, err := directory.OpenSigningKey(e.kek, keys[0]); err != nil {
		t.Errorf("the signing key does not open with the KEK: %v", err)
	}

	t.Run("refused ids", func(t *testing.T) {
		for _, id := range []string{"", "ab", "Acme", "-acme", "acme-", "ac_me", "ac.me", strings.Repeat("a", 64), "admin", "oauth2", "healthz"} {
			eb := e.mustFail(t, 400, "invalid", "POST", "/admin/v1/tenants", map[string]any{"id": id})
			if id == "admin" && !strings.Contains(eb.Error.Message, "reserved") {
				t.Errorf("id admin: message %q does not say it is reserved", eb.Error.Message)
			}
		}
	})
	e.mustFail(t, 409, "conflict", "POST", "/admin/v1/tenants", map[string]any{"id": "acme"})

	var list []tenantOut
	e.must(t, 200, "GET", "/admin/v1/tenants", nil, &list)
	if len(list) != 1 || list[0].ID != "acme" || list[0].Issuer != testPublicURL+"/acme" {
		t.Errorf("list = %+v", list)
	}
	var got tenantOut
	e.must(t, 200, "GET", "/admin/v1/tenants/acme", nil, &got)
	if got.DisplayName != "Acme Shop" || got.DefaultLocale != "en" {
		t.Errorf("get = %+v", got)
	}
	eb := e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/nope", nil)
	if eb.Error.Message != `tenant "nope" does not exist` {
		t.Errorf("404 message = %q", eb.Error.Message)
	}

	t.Run("update", func(t *testing.T) {
		var up tenantOut
		r := e.must(t, 200, "PATCH", "/admin/v1/tenants/acme", map[string]any{"display_name": "Acme Inc",
			"settings": map[string]any{"sign_in_methods": []string{"password", "email_otp"}}}, &up)
		if r.index(t) <= idx {
			t.Errorf("update index %d not after create %d", r.index(t), idx)
		}
		if up.DisplayName != "Acme Inc" || up.DefaultLocale != "en" || !slices.Equal(up.Settings.SignInMethods, []string{"password", "email_otp"}) {
			t.Errorf("updated = %+v", up)
		}
		stored, _ := e.store.Tenant("acme")
		if stored.DisplayName != "Acme Inc" {
			t.Errorf("stored display name %q", stored.DisplayName)
		}
		e.must(t, 200, "PATCH", "/admin/v1/tenants/acme", map[string]any{"id": "acme"}, nil)
		e.mustFail(t, 400, "invalid", "PATCH", "/admin/v1/tenants/acme", map[string]any{"id": "other"})
		e.mustFail(t, 404, "not_found", "PATCH", "/admin/v1/tenants/nope", map[string]any{"display_name": "x"})
	})

	t.Run("delete", func(t *testing.T) {
		r := e.must(t, 204, "DELETE", "/admin/v1/tenants/acme", nil, nil)
		r.index(t)
		if len(r.body) != 0 {
			t.Errorf("204 with a body: %s", r.body)
		}
		e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/acme", nil)
		e.mustFail(t, 404, "not_found", "DELETE", "/admin/v1/tenants/acme", nil)
		if keys, _ := e.store.SigningKeys("acme"); len(keys) != 0 {
			t.Errorf("the deleted tenant's keys remain: %+v", keys)
		}
		var list []tenantOut
		e.must(t, 200, "GET", "/admin/v1/tenants", nil, &list)
		if len(list) != 0 {
			t.Errorf("list after delete = %+v", list)
		}
		// The id is free again.
		e.createTenant(t, "acme")
	})
}

func TestApps(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	const base = "/admin/v1/tenants/acme/apps"

	var web appOut
	r := e.must(t, 201, "POST", base, map[string]any{"name": "shop-web", "type": "web", "client_id": "shop-web",
		"redirect_uris": []string{"https://shop.example/callback"}, "access_token_ttl": "15m"}, &web)
	r.index(t)
	if len(web.ClientSecret) < 32 {
		t.Fatalf("a web app created without a secret got client_secret %q, want a generated one", web.ClientSecret)
	}
	if bytes.Contains(r.body, []byte(`"hash"`)) {
		t.Errorf("the answer shows a secret hash: %s", r.body)
	}
	if web.ClientID != "shop-web" || web.Tenant != "acme" || time.Duration(web.AccessTokenTTL) != 15*time.Minute || len(web.Secrets) != 1 {
		t.Errorf("created = %+v", web)
	}
	stored, err := e.store.AppByClientID("acme", "shop-web")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Secrets) != 1 || strings.Contains(stored.Secrets[0].Hash, web.ClientSecret) || !strings.HasPrefix(stored.Secrets[0].Hash, "sha256$") {
		t.Fatalf("stored secrets = %+v, want one hash", stored.Secrets)
	}
	if !directory.AppSecretMatches(stored, web.ClientSecret) {
		t.Fatalf("the shown secret does not match the stored hash")
	}

	t.Run("shown once", func(t *testing.T) {
		for _, path := range []string{base, base + "/shop-web"} {
			r := e.must(t, 200, "GET", path, nil, nil)
			if bytes.Contains(r.body, []byte("client_secret")) || bytes.Contains(r.body, []byte(`"hash"`)) {
				t.Errorf("GET %s shows a secret: %s", path, r.body)
			}
		}
	})

	t.Run("given secret", func(t *testing.T) {
		secret := strings.Repeat("s3cr3t-", 6)
		var svc appOut
		e.must(t, 201, "POST", base, map[string]any{"name": "batch", "type": "service", "client_secret": secret}, &svc)
		if svc.ClientSecret != "" {
			t.Errorf("a given secret was echoed back")
		}
		if svc.ClientID == "" {
			t.Errorf("no client_id was generated")
		}
		a, _ := e.store.AppByName("acme", "batch")
		if !directory.AppSecretMatches(a, secret) {
			t.Errorf("the given secret does not match")
		}
	})

	t.Run("public client", func(t *testing.T) {
		var spa appOut
		r := e.must(t, 201, "POST", base, map[string]any{"name": "shop-spa", "type": "spa", "redirect_uris": []string{"http://localhost:3000/cb"}}, &spa)
		if spa.ClientSecret != "" || bytes.Contains(r.body, []byte("secrets")) {
			t.Errorf("a spa got a secret: %s", r.body)
		}
		if a, _ := e.store.AppByName("acme", "shop-spa"); len(a.Secrets) != 0 {
			t.Errorf("a spa has stored secrets")
		}
	})

	t.Run("refused", func(t *testing.T) {
		long := strings.Repeat("x", 40)
		tests := []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"spa with a secret", map[string]any{"name": "a1", "type": "spa", "client_secret": long, "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid"},
			{"javascript redirect", map[string]any{"name": "a2", "type": "web", "redirect_uris": []string{"javascript:alert(1)"}}, 400, "invalid"},
			{"http redirect off loopback", map[string]any{"name": "a3", "type": "web", "redirect_uris": []string{"http://evil.example/cb"}}, 400, "invalid"},
			{"fragment in redirect", map[string]any{"name": "a4", "type": "web", "redirect_uris": []string{"https://a.example/cb#x"}}, 400, "invalid"},
			{"web without redirect", map[string]any{"name": "a5", "type": "web"}, 400, "invalid"},
			{"no name", map[string]any{"type": "web", "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid"},
			{"no type", map[string]any{"name": "a6", "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid"},
			{"unknown type", map[string]any{"name": "a7", "type": "desktop", "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid"},
			{"short secret", map[string]any{"name": "a8", "type": "web", "client_secret": "short", "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid"},
			{"ttl too long", map[string]any{"name": "a9", "type": "web", "access_token_ttl": "48h", "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid"},
			{"duplicate client_id", map[string]any{"name": "other", "type": "web", "client_id": "shop-web", "redirect_uris": []string{"https://a.example/cb"}}, 409, "conflict"},
			{"duplicate name", map[string]any{"name": "shop-web", "type": "web", "redirect_uris": []string{"https://a.example/cb"}}, 409, "conflict"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e.mustFail(t, tc.status, tc.code, "POST", base, tc.body)
			})
		}
		e.mustFail(t, 404, "not_found", "POST", "/admin/v1/tenants/nope/apps", map[string]any{"name": "x", "type": "service"})
		e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/nope/apps", nil)
	})

	t.Run("get by id, client_id and name", func(t *testing.T) {
		for _, ref := range []string{web.ID, "shop-web"} {
			var got directory.App
			e.must(t, 200, "GET", base+"/"+ref, nil, &got)
			if got.ID != web.ID {
				t.Errorf("GET %s = %s, want %s", ref, got.ID, web.ID)
			}
		}
		var svc directory.App
		e.must(t, 200, "GET", base+"/batch", nil, &svc)
		var byClientID directory.App
		e.must(t, 200, "GET", base+"/"+svc.ClientID, nil, &byClientID)
		if byClientID.ID != svc.ID {
			t.Errorf("by client_id: %s, want %s", byClientID.ID, svc.ID)
		}
		e.mustFail(t, 404, "not_found", "GET", base+"/nope", nil)
		var list []directory.App
		e.must(t, 200, "GET", base, nil, &list)
		if len(list) != 3 {
			t.Errorf("list has %d apps, want 3", len(list))
		}
	})

	t.Run("update and rotate", func(t *testing.T) {
		var up appOut
		r := e.must(t, 200, "PATCH", base+"/shop-web", map[string]any{"rotate_secret": true,
			"redirect_uris": []string{"https://shop.example/callback", "https://shop.example/cb2"}}, &up)
		r.index(t)
		if len(up.ClientSecret) < 32 || up.ClientSecret == web.ClientSecret {
			t.Fatalf("rotation gave client_secret %q, want a new generated one", up.ClientSecret)
		}
		if len(up.RedirectURIs) != 2 || len(up.Secrets) != 2 {
			t.Errorf("updated = %+v", up)
		}
		a, _ := e.store.AppByClientID("acme", "shop-web")
		if !directory.AppSecretMatches(a, web.ClientSecret) || !directory.AppSecretMatches(a, up.ClientSecret) {
			t.Errorf("after rotation the old and the new secret must both be valid")
		}
		if time.Duration(a.AccessTokenTTL) != 15*time.Minute {
			t.Errorf("a field left out changed: access_token_ttl %v", time.Duration(a.AccessTokenTTL))
		}

		// A given secret without rotate_secret replaces them all.
		secret := strings.Repeat("n", 40)
		var rep appOut
		e.must(t, 200, "PATCH", base+"/shop-web", map[string]any{"client_secret": secret}, &rep)
		if rep.ClientSecret != "" {
			t.Errorf("a given secret was echoed back")
		}
		a, _ = e.store.AppByClientID("acme", "shop-web")
		if len(a.Secrets) != 1 || !directory.AppSecretMatches(a, secret) || directory.AppSecretMatches(a, web.ClientSecret) {
			t.Errorf("replacing the secret: %d secrets", len(a.Secrets))
		}

		e.mustFail(t, 400, "invalid", "PATCH", base+"/shop-web", map[string]any{"type": "spa"})
		e.mustFail(t, 400, "invalid", "PATCH", base+"/shop-web", map[string]any{"client_id": "other"})
		e.mustFail(t, 400, "invalid", "PATCH", base+"/shop-web", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}})
		e.mustFail(t, 400, "invalid", "PATCH", base+"/shop-web", map[string]any{"access_token_ttl": "48h"})
		e.mustFail(t, 400, "invalid", "PATCH", base+"/shop-spa", map[string]any{"rotate_secret": true})
		e.mustFail(t, 409, "conflict", "PATCH", base+"/shop-web", map[string]any{"name": "batch"})
		e.mustFail(t, 404, "not_found", "PATCH", base+"/nope", map[string]any{"name": "x"})
		e.must(t, 200, "PATCH", base+"/shop-web", map[string]any{"type": "web", "client_id": "shop-web"}, nil)
	})

	t.Run("delete", func(t *testing.T) {
		e.must(t, 204, "DELETE", base+"/shop-web", nil, nil).index(t)
		e.mustFail(t, 404, "not_found", "GET", base+"/shop-web", nil)
		e.mustFail(t, 404, "not_found", "DELETE", base+"/shop-web", nil)
		if _, err := e.store.AppByClientID("acme", "shop-web"); err == nil {
			t.Errorf("the client_id index still finds the deleted app")
		}
		// Its client_id and name are free again.
		e.must(t, 201, "POST", base, map[string]any{"name": "shop-web", "type": "web", "client_id": "shop-web",
			"redirect_uris": []string{"https://shop.example/callback"}}, nil)
	})
}

func TestUsers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	e.createTenant(t, "other")
	const base = "/admin/v1/tenants/acme/users"

	var alice directory.User
	r := e.must(t, 201, "POST", base, map[string]any{"email": "Alice@Example.com", "password": "correct horse battery",
		"profile": map[string]any{"given_name": "Alice"}, "attributes": map[string]any{"loyalty_id": "12345678"}}, &alice)
	r.index(t)
	if bytes.Contains(r.body, []byte("password")) {
		t.Errorf("the answer shows the password or its hash: %s", r.body)
	}
	if alice.Email != "alice@example.com" || alice.Profile.GivenName != "Alice" || alice.Attributes["loyalty_id"] != "12345678" {
		t.Errorf("created = %+v", alice)
	}
	stored, err := e.store.User("acme", alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("stored password hash %q, want argon2id", stored.PasswordHash)
	}
	if ok, err := directory.VerifyPassword(stored.PasswordHash, "correct horse battery"); !ok || err != nil {
		t.Errorf("the stored hash does not verify the password: %v", err)
	}

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"short password", map[string]any{"email": "b@example.com", "password": "short"}, 400, "invalid"},
			{"long password", map[string]any{"email": "b@example.com", "password": strings.Repeat("p", 257)}, 400, "invalid"},
			{"no email or username", map[string]any{"profile": map[string]any{"name": "B"}}, 400, "invalid"},
			{"not an email", map[string]any{"email": "not-an-email"}, 400, "invalid"},
			{"duplicate email in another case", map[string]any{"email": "ALICE@example.COM"}, 409, "conflict"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e.mustFail(t, tc.status, tc.code, "POST", base, tc.body)
			})
		}
		e.mustFail(t, 404, "not_found", "POST", "/admin/v1/tenants/nope/users", map[string]any{"email": "x@example.com"})
	})

	t.Run("same email in another tenant", func(t *testing.T) {
		var u directory.User
		e.must(t, 201, "POST", "/admin/v1/tenants/other/users", map[string]any{"email": "alice@example.com"}, &u)
		if u.Tenant != "other" || u.ID == alice.ID {
			t.Errorf("created = %+v", u)
		}
	})

	t.Run("get by id, email and username", func(t *testing.T) {
		var bob directory.User
		e.must(t, 201, "POST", base, map[string]any{"username": "bob"}, &bob)
		for ref, want := range map[string]string{alice.ID: alice.ID, "alice@example.com": alice.ID, "ALICE@EXAMPLE.COM": alice.ID, "bob": bob.ID} {
			var got directory.User
			r := e.must(t, 200, "GET", base+"/"+ref, nil, &got)
			if got.ID != want {
				t.Errorf("GET %s = %s, want %s", ref, got.ID, want)
			}
			if bytes.Contains(r.body, []byte("password")) {
				t.Errorf("GET %s shows the password hash", ref)
			}
		}
		e.mustFail(t, 404, "not_found", "GET", base+"/nobody@example.com", nil)
		e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/nope/users/"+alice.ID, nil)
	})

	t.Run("list pages", func(t *testing.T) {
		for i := range 5 {
			e.must(t, 201, "POST", base, map[string]any{"email": fmt.Sprintf("user%d@example.com", i)}, nil)
		}
		all, err := e.store.Users("acme", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, u := range all {
			want = append(want, u.ID)
		}
		var got []string
		after, pages := "", 0
		for {
			var page []directory.User
			r := e.must(t, 200, "GET", base+"?limit=3&after="+after, nil, &page)
			pages++
			if len(page) > 3 {
				t.Fatalf("page of %d users with limit=3", len(page))
			}
			for _, u := range page {
				got = append(got, u.ID)
			}
			if bytes.Contains(r.body, []byte("password")) {
				t.Errorf("the list shows password hashes")
			}
			next := r.header.Get("X-Next-After")
			if next == "" {
				break
			}
			if next != page[len(page)-1].ID {
				t.Errorf("X-Next-After = %s, want the last id of the page %s", next, page[len(page)-1].ID)
			}
			after = next
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		if !slices.Equal(got, want) || len(want) != 7 {
			t.Errorf("paged ids = %v, want %v (7 users)", got, want)
		}
		if pages != 3 {
			t.Errorf("%d pages, want 3", pages)
		}
		var first []directory.User
		r := e.must(t, 200, "GET", base, nil, &first)
		if len(first) != 7 || r.header.Get("X-Next-After") != "" {
			t.Errorf("default page: %d users, X-Next-After %q", len(first), r.header.Get("X-Next-After"))
		}
		e.mustFail(t, 400, "invalid", "GET", base+"?limit=-1", nil)
		e.mustFail(t, 400, "invalid", "GET", base+"?limit=many", nil)
	})

	t.Run("find by email", func(t *testing.T) {
		var found []directory.User
		e.must(t, 200, "GET", base+"?email=ALICE%40example.com", nil, &found)
		if len(found) != 1 || found[0].ID != alice.ID {
			t.Errorf("?email= found %+v", found)
		}
		r := e.must(t, 200, "GET", base+"?email=nobody%40example.com", nil, &found)
		if len(found) != 0 || strings.TrimSpace(string(r.body)) != "[]" {
			t.Errorf("?email= of nobody = %s, want []", r.body)
		}
	})

	t.Run("update", func(t *testing.T) {
		var up directory.User
		r := e.must(t, 200, "PATCH", base+"/"+alice.ID, map[string]any{"email": "alice@new.example", "email_verified": true,
			"attributes": map[string]any{"loyalty_id": nil, "tier": "gold"}}, &up)
		r.index(t)
		if up.Email != "alice@new.example" || !up.EmailVerified || up.Profile.GivenName != "Alice" || up.Attributes["tier"] != "gold" {
			t.Errorf("updated = %+v", up)
		}
		if _, ok := up.Attributes["loyalty_id"]; ok {
			t.Errorf("an attribute set to null was kept")
		}
		if bytes.Contains(r.body, []byte("password")) {
			t.Errorf("the answer shows the password hash")
		}
		e.mustFail(t, 404, "not_found", "GET", base+"/alice@example.com", nil)
		e.must(t, 200, "GET", base+"/alice@new.example", nil, nil)
		if u, _ := e.store.User("acme", alice.ID); u.PasswordHash != stored.PasswordHash {
			t.Errorf("the password hash changed without a password")
		}
		e.mustFail(t, 409, "conflict", "PATCH", base+"/"+alice.ID, map[string]any{"email": "user0@example.com"})
		e.mustFail(t, 400, "invalid", "PATCH", base+"/"+alice.ID, map[string]any{"email": "nope"})
		e.mustFail(t, 400, "invalid", "PATCH", base+"/"+alice.ID, map[string]any{"password": "short"})
		e.mustFail(t, 404, "not_found", "PATCH", base+"/nobody", map[string]any{"blocked": true})
		// The old address is free again.
		e.must(t, 201, "POST", base, map[string]any{"email": "alice@example.com"}, nil)
	})

	t.Run("delete", func(t *testing.T) {
		e.must(t, 204, "DELETE", base+"/alice@new.example", nil, nil).index(t)
		e.mustFail(t, 404, "not_found", "GET", base+"/"+alice.ID, nil)
		e.mustFail(t, 404, "not_found", "DELETE", base+"/"+alice.ID, nil)
		e.must(t, 201, "POST", base, map[string]any{"email": "alice@new.example"}, nil)
	})
}

func TestGroups(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	const base = "/admin/v1/tenants/acme/groups"

	var g directory.Group
	e.must(t, 201, "POST", base, map[string]any{"name": "customers", "description": "Paying"}, &g).index(t)
	if g.Name != "customers" || g.Tenant != "acme" || g.ID == "" {
		t.Errorf("created = %+v", g)
	}
	e.mustFail(t, 409, "conflict", "POST", base, map[string]any{"name": "customers"})
	e.mustFail(t, 400, "invalid", "POST", base, map[string]any{"description": "no name"})
	e.mustFail(t, 404, "not_found", "POST", "/admin/v1/tenants/nope/groups", map[string]any{"name": "x"})
	for _, ref := range []string{g.ID, "customers"} {
		var got directory.Group
		e.must(t, 200, "GET", base+"/"+ref, nil, &got)
		if got.ID != g.ID {
			t.Errorf("GET %s = %s", ref, got.ID)
		}
	}
	e.mustFail(t, 404, "not_found", "GET", base+"/nope", nil)

	var up directory.Group
	e.must(t, 200, "PATCH", base+"/customers", map[string]any{"description": "Paying customers"}, &up).index(t)
	if up.Description != "Paying customers" || up.Name != "customers" {
		t.Errorf("updated = %+v", up)
	}
	e.must(t, 201, "POST", base, map[string]any{"name": "staff"}, nil)
	e.mustFail(t, 409, "conflict", "PATCH", base+"/staff", map[string]any{"name": "customers"})
	var list []directory.Group
	e.must(t, 200, "GET", base, nil, &list)
	if len(list) != 2 {
		t.Errorf("list = %+v", list)
	}

	var u directory.User
	e.must(t, 201, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": "m@example.com", "password": "a good long password"}, &u)
	members := base + "/customers/members"
	e.must(t, 204, "PUT", members+"/m@example.com", nil, nil).index(t)
	e.must(t, 204, "PUT", members+"/"+u.ID, nil, nil) // again: no-op
	var ms []directory.User
	r := e.must(t, 200, "GET", members, nil, &ms)
	if len(ms) != 1 || ms[0].ID != u.ID {
		t.Errorf("members = %+v", ms)
	}
	if bytes.Contains(r.body, []byte("password")) {
		t.Errorf("the members list shows password hashes")
	}
	if gs, _ := e.store.UserGroups("acme", u.ID); !slices.Equal(gs, []string{g.ID}) {
		t.Errorf("user's groups = %v", gs)
	}
	e.mustFail(t, 404, "not_found", "PUT", members+"/nobody", nil)
	e.mustFail(t, 404, "not_found", "PUT", base+"/nope/members/"+u.ID, nil)
	e.must(t, 204, "DELETE", members+"/"+u.ID, nil, nil).index(t)
	e.mustFail(t, 404, "not_found", "DELETE", members+"/"+u.ID, nil)
	e.must(t, 200, "GET", members, nil, &ms)
	if len(ms) != 0 {
		t.Errorf("members after removal = %+v", ms)
	}

	e.must(t, 204, "PUT", members+"/"+u.ID, nil, nil)
	e.must(t, 204, "DELETE", base+"/customers", nil, nil).index(t)
	e.mustFail(t, 404, "not_found", "GET", base+"/customers", nil)
	e.mustFail(t, 404, "not_found", "GET", members, nil)
	if gs, _ := e.store.UserGroups("acme", u.ID); len(gs) != 0 {
		t.Errorf("a deleted group is still among the user's groups: %v", gs)
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	e.must(t, 201, "POST", "/admin/v1/tenants/acme/groups", map[string]any{"name": "g"}, nil)
	var evs []directory.AuditEvent
	e.must(t, 200, "GET", "/admin/v1/tenants/acme/audit", nil, &evs)
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
		if ev.Actor != "admin" || ev.Index == 0 || ev.Tenant != "acme" {
			t.Errorf("event = %+v", ev)
		}
	}
	if !slices.Contains(actions, directory.OpTenantCreate) || !slices.Contains(actions, directory.OpGroupCreate) {
		t.Errorf("audit actions = %v", actions)
	}
	e.must(t, 200, "GET", "/admin/v1/tenants/acme/audit?limit=1", nil, &evs)
	if len(evs) != 1 {
		t.Errorf("limit=1 gave %d events", len(evs))
	}
	e.mustFail(t, 400, "invalid", "GET", "/admin/v1/tenants/acme/audit?limit=-1", nil)
	e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/nope/audit", nil)
}

// TestStrictBodies: a body is one JSON value of the expected shape; an unknown field is named.
func TestStrictBodies(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	e.must(t, 201, "POST", "/admin/v1/tenants/acme/groups", map[string]any{"name": "g"}, nil)
	tests := []struct {
		method, path string
		body         string
		want         string // in the message
	}{
		{"POST", "/admin/v1/tenants", `{"id":"beta","colour":"red"}`, `"colour"`},
		{"PATCH", "/admin/v1/tenants/acme", `{"display_nmae":"x"}`, `"display_nmae"`},
		{"PATCH", "/admin/v1/tenants/acme", `{"settings":{"mfa":{"mode":"off","level":2}}}`, `"level"`},
		{"POST", "/admin/v1/tenants/acme/apps", `{"name":"a","type":"web","redirect_uri":"https://a.example/cb"}`, `"redirect_uri"`},
		{"POST", "/admin/v1/tenants/acme/users", `{"email":"a@example.com","pasword":"secret123"}`, `"pasword"`},
		{"POST", "/admin/v1/tenants/acme/groups", `{"name":"h","members":[]}`, `"members"`},
		{"PATCH", "/admin/v1/tenants/acme/groups/g", `{"title":"x"}`, `"title"`},
		{"POST", "/admin/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1","secret":"x"}`, `"secret"`},
		{"POST", "/admin/v1/tenants", ``, `JSON body is required`},
		{"POST", "/admin/v1/tenants", `{"id":`, `malformed`},
		{"POST", "/admin/v1/tenants", `{"id":"beta"} {"id":"gamma"}`, `more than one value`},
		{"POST", "/admin/v1/tenants", `["beta"]`, `malformed`},
		{"POST", "/admin/v1/tenants", `{"id":7}`, `malformed`},
		{"POST", "/admin/v1/cluster/join", `{"id":"n2"}`, `raft_addr`},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			before := e.store.AppliedIndex()
			eb := e.mustFail(t, 400, "invalid", tc.method, tc.path, tc.body)
			if !strings.Contains(eb.Error.Message, tc.want) {
				t.Errorf("message %q does not mention %s", eb.Error.Message, tc.want)
			}
			if e.store.AppliedIndex() != before {
				t.Errorf("a refused body was written")
			}
		})
	}
}

// TestConsistency: writes report their raft index; reads wait for an index, or confirm with the leader.
func TestConsistency(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	r := e.must(t, 201, "POST", "/admin/v1/tenants", map[string]any{"id": "acme"}, nil)
	idx := r.index(t)
	reads := []string{"/admin/v1/tenants", "/admin/v1/tenants/acme", "/admin/v1/tenants/acme/apps",
		"/admin/v1/tenants/acme/users", "/admin/v1/tenants/acme/groups", "/admin/v1/tenants/acme/audit"}
	for _, path := range reads {
		e.must(t, 200, "GET", path, nil, nil, "X-Postern-Min-Index", strconv.FormatUint(idx, 10))
		e.must(t, 200, "GET", path+"?consistency=linearizable", nil, nil)
		e.must(t, 200, "GET", path+"?consistency=local", nil, nil)
		e.must(t, 200, "GET", path+"?consistency=linearizable", nil, nil, "X-Postern-Min-Index", strconv.FormatUint(idx, 10))
		e.mustFail(t, 400, "invalid", "GET", path+"?consistency=strong", nil)
		e.mustFail(t, 400, "invalid", "GET", path, nil, "X-Postern-Min-Index", "latest")
	}
	// An index this replica does not reach in time: retryable.
	r = e.do(t, "GET", "/admin/v1/tenants/acme", nil, "X-Postern-Min-Index", strconv.FormatUint(idx+1000, 10))
	var eb apiErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || r.status != 503 || eb.Error.Code != "unavailable" {
		t.Fatalf("a far index: status %d body %s, want 503 unavailable", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	tests := []struct {
		method, path string
		status       int
		code         string
		allow        string
	}{
		{"GET", "/nope", 404, "not_found", ""},
		{"GET", "/admin/v1", 404, "not_found", ""},
		{"GET", "/admin/v2/tenants", 404, "not_found", ""},
		{"GET", "/admin/v1/tenants/acme/apps/x/y", 404, "not_found", ""},
		{"GET", "/admin/v1/tenants/acme/widgets", 404, "not_found", ""},
		{"PUT", "/admin/v1/tenants", 405, "method_not_allowed", "GET, POST"},
		{"POST", "/admin/v1/tenants/acme", 405, "method_not_allowed", "DELETE, GET, PATCH"},
		{"GET", "/admin/v1/tenants/acme/manifest", 405, "method_not_allowed", "PUT"},
		{"DELETE", "/healthz", 405, "method_not_allowed", "GET"},
		{"POST", "/admin/v1/backup", 405, "method_not_allowed", "GET"},
		{"GET", "/admin/v1/restore", 405, "method_not_allowed", "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, nil)
			var eb apiErrorBody
			if err := json.Unmarshal(r.body, &eb); err != nil || r.status != tc.status || eb.Error.Code != tc.code {
				t.Fatalf("status %d body %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

// TestInternalErrorHidden: a failure that is not a refusal shows only a correlation id; the log has the
// rest.
func TestInternalErrorHidden(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/v1/tenants/acme", "/admin/v1/tenants", "/admin/v1/tenants/acme/users/x"} {
		eb := e.mustFail(t, 500, "internal", "GET", path, nil)
		m := regexp.MustCompile(`^internal error; correlation id ([0-9A-Za-z_-]{12})$`).FindStringSubmatch(eb.Error.Message)
		if m == nil {
			t.Fatalf("GET %s: message %q, want only a correlation id", path, eb.Error.Message)
		}
		logs := e.log.String()
		if !strings.Contains(logs, m[1]) || !strings.Contains(logs, "directory store is closed") {
			t.Errorf("the log does not tie correlation id %s to the error:\n%s", m[1], logs)
		}
	}
}
