package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"postern.dev/postern/cluster"
	"postern.dev/postern/cluster/clustertest"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge"
	"postern.dev/postern/edge/oidc"
	"postern.dev/postern/edge/tokens"
)

// env is one edge with a single-node directory, serving real HTTP on loopback.
type env struct {
	t      *testing.T
	base   string
	node   *cluster.Node
	store  *directory.Store
	kek    *directory.KEK
	keys   *tokens.KeyRing
	secret string // of the web app
	mail   chan mailed
}

// mailed is one message the provider sent.
type mailed struct{ tenant, to, subject, text string }

const (
	password    = "correct-horse-battery-staple"
	redirectURI = "http://127.0.0.1:9/callback"
)

func newEnv(t *testing.T, opts ...func(*oidc.Config)) *env {
	t.Helper()
	node, store := clustertest.Single(t)
	kek := clustertest.KEK(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, base: "http://" + ln.Addr().String(), node: node, store: store, kek: kek, mail: make(chan mailed, 16)}
	e.keys = tokens.NewKeyRing(store, kek)
	cfg := oidc.Config{Store: store, Write: node, Keys: e.keys, KEK: kek, PublicURL: e.base,
		Mail: func(_ context.Context, tenant, to, subject, text string) error {
			e.mail <- mailed{tenant, to, subject, text}
			return nil
		}}
	for _, o := range opts {
		o(&cfg)
	}
	p := oidc.New(cfg)
	node.Listen(func(a cluster.Applied) {
		for _, c := range a.Changes {
			p.Invalidate(c.Tenant, c.Kind)
		}
	})
	srv := edge.NewServer(node, nil, p)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	e.secret = directory.NewClientSecret()
	for _, tenant := range []string{"acme", "beta"} {
		e.tenant(tenant)
	}
	return e
}

func (e *env) propose(ops ...directory.Op) *directory.Result {
	e.t.Helper()
	res, err := e.node.Propose(context.Background(), directory.NewCommand(time.Now(), "test", ops...))
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) tenant(id string) {
	key, err := directory.NewSigningKey(e.kek, id, "ES256", directory.KeyActive)
	if err != nil {
		e.t.Fatal(err)
	}
	hash, _ := directory.HashPassword(password)
	now := time.Now()
	e.propose(
		directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: id, DisplayName: id}),
		directory.MakeOp(directory.OpKeyPut, key),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "web", Tenant: id, Name: "web", ClientID: "web", Type: directory.AppWeb,
			Secrets: []directory.SecretHash{{Hash: directory.HashClientSecret(e.secret), CreatedAt: now}}, RedirectURIs: []string{redirectURI},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/bye"}, GrantTypes: []string{"authorization_code", "refresh_token"}}),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "spa", Tenant: id, Name: "spa", ClientID: "spa", Type: directory.AppSPA,
			RedirectURIs: []string{"http://127.0.0.1:9/spa"}, GrantTypes: []string{"authorization_code", "refresh_token"}}),
		directory.MakeOp(directory.OpAppCreate, directory.App{ID: "svc", Tenant: id, Name: "svc", ClientID: "svc", Type: directory.AppService,
			Secrets: []directory.SecretHash{{Hash: directory.HashClientSecret(e.secret), CreatedAt: now}}, GrantTypes: []string{"client_credentials"}}),
		directory.MakeOp(directory.OpUserCreate, directory.User{ID: "u1", Tenant: id, Email: "ann@example.com", EmailVerified: true,
			PasswordHash: hash, Profile: directory.Profile{GivenName: "Ann", Name: "Ann Example"}}),
	)
}

func (e *env) issuer(tenant string) string { return e.base + "/" + tenant }

// browser is an HTTP client with cookies that stops at the client's redirect URIs.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "127.0.0.1:9" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

var csrfRe = regexp.MustCompile(`name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"`)

// signInThrough follows an authorization URL, signs in on the page if one is shown, and returns the final
// redirect to the client (its query), and whether a password was asked for.
func (e *env) signInThrough(b *http.Client, authURL, email, pw string) (url.Values, bool) {
	e.t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	asked := false
	if resp.StatusCode == http.StatusOK {
		asked = true
		m := csrfRe.FindSubmatch(body)
		if m == nil {
			e.t.Fatalf("no CSRF field on the sign-in page:\n%s", body)
		}
		token := string(m[1]) + string(m[2])
		form := url.Values{"csrf": {token}, "email": {email}, "password": {pw}}
		resp, err = b.PostForm(resp.Request.URL.String(), form)
		if err != nil {
			e.t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("expected a redirect to the client, got %d:\n%s", resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc.Query(), asked
}

func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestAuthorizationCodeFlowWithGoOIDC(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, e.issuer("acme"))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: "web", ClientSecret: e.secret, Endpoint: provider.Endpoint(), RedirectURL: redirectURI,
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email"}}
	verifier := oauth2.GenerateVerifier()
	b := e.browser()
	q, asked := e.signInThrough(b, conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), gooidc.Nonce("n0nce")), "ANN@example.com", password)
	if !asked || q.Get("state") != "st4te" || q.Get("iss") != e.issuer("acme") || q.Get("code") == "" {
		t.Fatalf("authorization response: %v (password asked: %v)", q, asked)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: "web"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc refuses the ID token: %v", err)
	}
	if idt.Nonce != "n0nce" || idt.Subject != "u1" {
		t.Errorf("ID token nonce %q subject %q", idt.Nonce, idt.Subject)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		SID      string `json:"sid"`
		AuthTime int64  `json:"auth_time"`
		Email    string `json:"email"`
	}
	idt.Claims(&claims)
	if claims.SID == "" || claims.AuthTime == 0 || claims.Email != "ann@example.com" {
		t.Errorf("ID token claims: %+v", claims)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != "u1" || ui.Email != "ann@example.com" {
		t.Fatalf("userinfo: %+v, %v", ui, err)
	}

	// Refresh rotates; the old refresh token is then dead, and its reuse kills the family.
	old := tok.RefreshToken
	if old == "" {
		t.Fatal("no refresh token")
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil || fresh.RefreshToken == "" || fresh.RefreshToken == old {
		t.Fatalf("refresh: %+v, %v", fresh, err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("reused refresh token: %v, want invalid_grant", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); err == nil {
		t.Fatal("after reuse the whole family must be revoked, but its newest token still works")
	}

	// A new grant, then RFC 7009 revocation of its refresh token.
	q, asked = e.signInThrough(b, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)), "", "")
	if asked {
		t.Error("a signed-in browser was asked for a password again")
	}
	tok2, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(e.issuer("acme")+"/revoke", url.Values{"token": {tok2.RefreshToken}, "client_id": {"web"}, "client_secret": {e.secret}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revocation: %v %v", resp, err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err == nil {
		t.Fatal("a revoked refresh token still works")
	}

	// Single sign-on: another app of the tenant gets a code without a password prompt.
	spa := oauth2.Config{ClientID: "spa", Endpoint: provider.Endpoint(), RedirectURL: "http://127.0.0.1:9/spa", Scopes: []string{"openid"}}
	v2 := oauth2.GenerateVerifier()
	q, asked = e.signInThrough(b, spa.AuthCodeURL("s3", oauth2.S256ChallengeOption(v2)), "", "")
	if asked || q.Get("code") == "" {
		t.Fatalf("SSO to the second app: asked %v, %v", asked, q)
	}
	if _, err := spa.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v2)); err != nil {
		t.Fatalf("public client exchange: %v", err)
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	resp, err := http.PostForm(e.issuer("acme")+"/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {e.secret}, "scope": {"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out["token_type"] != "Bearer" || out["scope"] != "orders.read" {
		t.Fatalf("client_credentials: %d %v", resp.StatusCode, out)
	}
	c, err := e.keys.VerifyAccessToken("acme", e.issuer("acme"), out["access_token"].(string), time.Now())
	if err != nil || c["sub"] != "svc" || c["client_id"] != "svc" {
		t.Fatalf("access token: %v %v", c, err)
	}
	if _, err := e.keys.VerifyAccessToken("beta", e.issuer("beta"), out["access_token"].(string), time.Now()); err == nil {
		t.Error("tenant beta accepts tenant acme's access token")
	}
	for name, form := range map[string]url.Values{
		"wrong secret":      {"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"nope"}},
		"public app":        {"grant_type": {"client_credentials"}, "client_id": {"spa"}},
		"grant not allowed": {"grant_type": {"client_credentials"}, "client_id": {"web"}, "client_secret": {e.secret}},
		"unknown grant":     {"grant_type": {"password"}, "client_id": {"svc"}, "client_secret": {e.secret}},
	} {
		resp, _ := http.PostForm(e.issuer("acme")+"/token", form)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
}

// codeFor runs an authorization request for the web app and returns the code.
func (e *env) codeFor(b *http.Client, extra url.Values) string {
	e.t.Helper()
	v := url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}, "scope": {"openid"}, "state": {"x"}}
	for k, x := range extra {
		v[k] = x
	}
	q, _ := e.signInThrough(b, e.issuer("acme")+"/authorize?"+v.Encode(), "ann@example.com", password)
	if q.Get("code") == "" {
		e.t.Fatalf("no code: %v", q)
	}
	return q.Get("code")
}

func (e *env) exchange(form url.Values) (int, map[string]any) {
	e.t.Helper()
	resp, err := http.PostForm(e.issuer("acme")+"/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestTokenEndpointRefusals(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	verifier, challenge := pkce()
	base := url.Values{"grant_type": {"authorization_code"}, "client_id": {"web"}, "client_secret": {e.secret}, "redirect_uri": {redirectURI}}
	with := func(code string, kv ...string) url.Values {
		f := url.Values{}
		for k, v := range base {
			f[k] = v
		}
		f.Set("code", code)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return f
	}
	s256 := url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	tests := []struct {
		name string
		code url.Values // authorize extras
		form func(code string) url.Values
	}{
		{"wrong verifier", s256, func(c string) url.Values { return with(c, "code_verifier", strings.Repeat("a", 43)) }},
		{"missing verifier", s256, func(c string) url.Values { return with(c) }},
		{"verifier without challenge (downgrade)", nil, func(c string) url.Values { return with(c, "code_verifier", verifier) }},
		{"another client", s256, func(c string) url.Values {
			return with(c, "client_id", "spa", "client_secret", "", "code_verifier", verifier)
		}},
		{"another redirect_uri", s256, func(c string) url.Values {
			return with(c, "redirect_uri", redirectURI+"x", "code_verifier", verifier)
		}},
		{"another tenant's code", s256, nil},
	}
	for _, tc := range tests {
		code := e.codeFor(b, tc.code)
		var status int
		var out map[string]any
		if tc.form == nil {
			resp, _ := http.PostForm(e.issuer("beta")+"/token", with(code, "code_verifier", verifier))
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			status = resp.StatusCode
		} else {
			status, out = e.exchange(tc.form(code))
		}
		if status != 400 || out["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want 400 invalid_grant", tc.name, status, out)
		}
	}

	// A code used twice: the second use fails and revokes what the first issued.
	code := e.codeFor(b, s256)
	status, first := e.exchange(with(code, "code_verifier", verifier))
	if status != 200 {
		t.Fatalf("first use: %d %v", status, first)
	}
	if status, out := e.exchange(with(code, "code_verifier", verifier)); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("second use: %d %v", status, out)
	}
	if status, _ := e.exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)},
		"client_id": {"web"}, "client_secret": {e.secret}}); status != 400 {
		t.Errorf("the refresh token of a reused code still works: %d", status)
	}
	if code := userinfoStatus(t, e.issuer("acme"), first["access_token"].(string)); code != 401 {
		t.Errorf("the access token of a reused code still works at userinfo: %d", code)
	}

	// PKCE plain is refused at the authorization endpoint (redirected error).
	q, _ := e.signInThrough(b, e.issuer("acme")+"/authorize?"+url.Values{"response_type": {"code"}, "client_id": {"web"},
		"redirect_uri": {redirectURI}, "code_challenge": {verifier}, "code_challenge_method": {"plain"}, "state": {"p"}}.Encode(), "", "")
	if q.Get("error") != "invalid_request" || q.Get("state") != "p" || q.Get("iss") != e.issuer("acme") {
		t.Errorf("PKCE plain: %v", q)
	}
	// A public client without PKCE.
	q, _ = e.signInThrough(b, e.issuer("acme")+"/authorize?"+url.Values{"response_type": {"code"}, "client_id": {"spa"},
		"redirect_uri": {"http://127.0.0.1:9/spa"}}.Encode(), "", "")
	if q.Get("error") != "invalid_request" {
		t.Errorf("public client without PKCE: %v", q)
	}
}

func userinfoStatus(t *testing.T, issuer, token string) int {
	req, _ := http.NewRequest("GET", issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestUserinfoRefusals(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	code := e.codeFor(b, nil)
	_, tok := e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"web"}, "client_secret": {e.secret}, "redirect_uri": {redirectURI}})
	access, idToken := tok["access_token"].(string), tok["id_token"].(string)
	if userinfoStatus(t, e.issuer("acme"), access) != 200 {
		t.Fatal("a good access token is refused")
	}
	header := base64.RawURLEncoding.EncodeToString
	parts := strings.Split(access, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	for name, tk := range map[string]string{
		"ID token as access token":  idToken,
		"alg none":                  header([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".",
		"HS256 with the public key": hs256WithPublicKey(t, e, parts[1]),
		"tampered payload":          parts[0] + "." + header(append(payload[:len(payload)-1], []byte(`,"x":1}`)...)) + "." + parts[2],
		"garbage":                   "not-a-token",
	} {
		if c := userinfoStatus(t, e.issuer("acme"), tk); c != 401 {
			t.Errorf("%s: userinfo answered %d", name, c)
		}
	}
	// One tenant's token is worthless at another's userinfo.
	if c := userinfoStatus(t, e.issuer("beta"), access); c != 401 {
		t.Errorf("tenant acme's token at tenant beta's userinfo: %d", c)
	}
	_ = fmt.Sprint
}

// hs256WithPublicKey forges the classic key-confusion token: HMAC-SHA256 keyed with the public JWK's bytes.
func hs256WithPublicKey(t *testing.T, e *env, payload string) string {
	jwks, err := e.keys.JWKS("acme")
	if err != nil {
		t.Fatal(err)
	}
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt"}`))
	mac := hmacSHA256(jwks, h+"."+payload)
	return h + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac)
}
