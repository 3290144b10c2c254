package oidc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var journeyRe = regexp.MustCompile(`j=[A-Za-z0-9_-]+`)

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// The checks of the OpenID conformance suite's discovery module: issuer exact, every endpoint present and
// under the issuer, S256 only, RFC 9207 advertised; and a JWKS with public keys only, each with a kid.
func TestDiscoveryAndJWKS(t *testing.T) {
	e := newEnv(t)
	iss := e.issuer("acme")
	for _, u := range []string{iss + "/.well-known/openid-configuration", e.base + "/.well-known/oauth-authorization-server/acme", iss + "/.well-known/oauth-authorization-server"} {
		status, m := getJSON(t, u)
		if status != 200 || m["issuer"] != iss {
			t.Fatalf("%s: %d issuer %v", u, status, m["issuer"])
		}
		for _, ep := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint"} {
			v, _ := m[ep].(string)
			if !strings.HasPrefix(v, iss+"/") {
				t.Errorf("%s: %s = %q", u, ep, v)
			}
		}
		if m["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("%s: RFC 9207 not advertised", u)
		}
		if cc, _ := m["code_challenge_methods_supported"].([]any); len(cc) != 1 || cc[0] != "S256" {
			t.Errorf("%s: code_challenge_methods_supported = %v", u, m["code_challenge_methods_supported"])
		}
	}
	_, m := getJSON(t, iss+"/.well-known/openid-configuration")
	for _, ep := range []string{"userinfo_endpoint", "end_session_endpoint"} {
		if v, _ := m[ep].(string); !strings.HasPrefix(v, iss+"/") {
			t.Errorf("%s = %q", ep, v)
		}
	}
	for _, k := range []string{"subject_types_supported", "id_token_signing_alg_values_supported", "response_types_supported"} {
		if _, ok := m[k]; !ok {
			t.Errorf("discovery lacks %s", k)
		}
	}
	status, jwks := getJSON(t, m["jwks_uri"].(string))
	keys, _ := jwks["keys"].([]any)
	if status != 200 || len(keys) == 0 {
		t.Fatalf("jwks: %d %v", status, jwks)
	}
	for _, k := range keys {
		key := k.(map[string]any)
		if key["kid"] == nil || key["kid"] == "" {
			t.Errorf("a key without kid: %v", key)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := key[private]; ok {
				t.Errorf("JWKS publishes private or symmetric member %q", private)
			}
		}
		if key["kty"] == "oct" {
			t.Error("JWKS publishes a symmetric key")
		}
	}
	// Tenants do not share keys.
	_, other := getJSON(t, e.issuer("beta")+"/jwks")
	for _, k := range other["keys"].([]any) {
		for _, mine := range keys {
			if k.(map[string]any)["kid"] == mine.(map[string]any)["kid"] {
				t.Error("two tenants publish the same kid")
			}
		}
	}
	if status, _ := getJSON(t, e.base+"/nosuchtenant/.well-known/openid-configuration"); status != 404 {
		t.Errorf("unknown tenant: %d", status)
	}
}

func TestAuthorizeErrorsAndPrompts(t *testing.T) {
	e := newEnv(t)
	iss := e.issuer("acme")
	b := e.browser()
	get := func(q url.Values) (*http.Response, string) {
		resp, err := b.Get(iss + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	// Untrusted client or redirect_uri: a branded error page, never a redirect.
	for name, q := range map[string]url.Values{
		"unknown client":       {"response_type": {"code"}, "client_id": {"nope"}, "redirect_uri": {redirectURI}},
		"unregistered uri":     {"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {"https://evil.example/cb"}},
		"uri with a suffix":    {"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI + "/x"}},
		"another tenant's app": {"response_type": {"code"}, "client_id": {"svc"}, "redirect_uri": {redirectURI}},
	} {
		resp, body := get(q)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, "reference") {
			t.Errorf("%s: %d, Location %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// prompt=none without a session: login_required back to the client, with state and iss.
	resp, _ := get(url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}, "prompt": {"none"}, "state": {"s"}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != "s" || loc.Query().Get("iss") != iss {
		t.Fatalf("prompt=none: %d %v", resp.StatusCode, loc)
	}
	// An unsupported response_type goes back to the client.
	resp, _ = get(url.Values{"response_type": {"token"}, "client_id": {"web"}, "redirect_uri": {redirectURI}})
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "unsupported_response_type" {
		t.Errorf("response_type=token: %v", loc)
	}
	// After signing in, prompt=none answers with a code; prompt=login and max_age=0 ask again.
	e.codeFor(b, nil)
	resp, _ = get(url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}, "prompt": {"none"}})
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("code") == "" {
		t.Errorf("prompt=none with a session: %v", loc)
	}
	for _, extra := range []url.Values{{"prompt": {"login"}}, {"max_age": {"0"}}} {
		q := url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}}
		for k, v := range extra {
			q[k] = v
		}
		if _, asked := e.signInThrough(b, iss+"/authorize?"+q.Encode(), "ann@example.com", password); !asked {
			t.Errorf("%v did not ask for the password again", extra)
		}
	}
	// form_post delivers the code in an auto-submitting form to the redirect URI.
	resp, body := get(url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}, "response_mode": {"form_post"}, "state": {"fp"}})
	if resp.StatusCode != 200 || !strings.Contains(body, `action="`+redirectURI+`"`) || !strings.Contains(body, `name="code"`) || !strings.Contains(body, `value="fp"`) {
		t.Errorf("form_post: %d\n%s", resp.StatusCode, body)
	}
}

func TestSignInRefusesUnknownEmailAndWrongPasswordAlike(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	q := url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}}
	var bodies []string
	for _, creds := range [][2]string{{"ann@example.com", "wrong-password-123"}, {"nobody@example.com", "wrong-password-123"}} {
		resp, err := b.Get(e.issuer("acme") + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := csrfRe.FindSubmatch(page)
		resp, err = b.PostForm(resp.Request.URL.String(), url.Values{"csrf": {string(m[1]) + string(m[2])}, "email": {creds[0]}, "password": {creds[1]}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", creds[0], resp.StatusCode)
		}
		// The page differs only by the email echoed back and the CSRF token.
		s := strings.ReplaceAll(string(body), creds[0], "EMAIL")
		s = csrfRe.ReplaceAllString(s, "CSRF")
		s = journeyRe.ReplaceAllString(s, "j=JOURNEY")
		bodies = append(bodies, s)
	}
	if bodies[0] != bodies[1] {
		t.Error("an unknown email and a wrong password get different pages")
	}
	// A form without a valid CSRF token is refused.
	resp, _ := b.Get(e.issuer("acme") + "/authorize?" + q.Encode())
	resp.Body.Close()
	resp, _ = b.PostForm(resp.Request.URL.String(), url.Values{"csrf": {"forged"}, "email": {"ann@example.com"}, "password": {password}})
	resp.Body.Close()
	if resp.StatusCode == 302 {
		t.Error("a sign-in without a valid CSRF token succeeded")
	}
}
