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
