package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"postern.dev/postern/directory"
)

// Native apps (RFC 8252): a private-use scheme redirect is delivered verbatim, and a loopback redirect
// may use any port.
func TestNativeAppRedirects(t *testing.T) {
	e := newEnv(t)
	e.propose(directory.MakeOp(directory.OpAppCreate, directory.App{ID: "cli", Tenant: "acme", Name: "cli", ClientID: "cli",
		Type: directory.AppNative, RedirectURIs: []string{"com.example.app:/cb", "http://127.0.0.1/native"},
		GrantTypes: []string{"authorization_code"}}))
	_, challenge := pkce()
	for _, uri := range []string{"com.example.app:/cb", "http://127.0.0.1:53111/native"} {
		b := e.browser()
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme == "com.example.app" || strings.HasPrefix(req.URL.Path, "/native") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		auth := e.issuer("acme") + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"cli"}, "redirect_uri": {uri},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"n"}}.Encode()
		resp, _ := e.postPage(b, auth, url.Values{"email": {"ann@example.com"}, "password": {password}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 302 || !strings.HasPrefix(loc, uri+"?") || !strings.Contains(loc, "code=") {
			t.Errorf("%s: %d %q", uri, resp.StatusCode, loc)
		}
	}
}

// A browser app may call the token and userinfo endpoints from its own origin, and only from there.
func TestCORSForBrowserApps(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{"http://127.0.0.1:9", true}, {"https://evil.example", false}} {
		req, _ := http.NewRequest("OPTIONS", e.issuer("acme")+"/token", nil)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if tc.ok != (got == tc.origin) || (!tc.ok && got != "") {
			t.Errorf("origin %s: Access-Control-Allow-Origin %q", tc.origin, got)
		}
	}
}

// userinfo answers GET and POST, with the token in the header or in a form body (RFC 6750 2.1, 2.2).
func TestUserinfoPOST(t *testing.T) {
	e := newEnv(t)
	code := e.codeFor(e.browser(), url.Values{"scope": {"openid email"}})
	_, tok := e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"web"}, "client_secret": {e.secret}, "redirect_uri": {redirectURI}})
	access := tok["access_token"].(string)
	resp, err := http.PostForm(e.issuer("acme")+"/userinfo", url.Values{"access_token": {access}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("userinfo POST with a form token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", e.issuer("acme")+"/userinfo", strings.NewReader("access_token="+access))
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("a token sent twice: %d, want 400", resp.StatusCode)
	}
}
