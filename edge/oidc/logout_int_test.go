package oidc_test

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRPInitiatedLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	code := e.codeFor(b, nil)
	_, tok := e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"web"}, "client_secret": {e.secret}, "redirect_uri": {redirectURI}})
	idToken := tok["id_token"].(string)
	end := e.issuer("acme") + "/end_session?"

	// An unregistered post-logout URI is not followed, even with a valid hint.
	resp, err := b.Get(end + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Errorf("unregistered post_logout_redirect_uri: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The session is over: prompt=none now answers login_required.
	q, _ := e.signInThrough(b, e.issuer("acme")+"/authorize?"+url.Values{"response_type": {"code"}, "client_id": {"web"},
		"redirect_uri": {redirectURI}, "prompt": {"none"}}.Encode(), "", "")
	if q.Get("error") != "login_required" {
		t.Errorf("after sign-out: %v", q)
	}
	// Sign in again, then log out with the hint and a registered URI: back to the client with state.
	code = e.codeFor(b, nil)
	_, tok = e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"web"}, "client_secret": {e.secret}, "redirect_uri": {redirectURI}})
	resp, err = b.Get(end + url.Values{"id_token_hint": {tok["id_token"].(string)}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "state": {"z"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:9/bye?state=z" {
		t.Errorf("logout with hint: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// An access token is no hint.
	resp, _ = b.Get(end + url.Values{"id_token_hint": {tok["access_token"].(string)}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}}.Encode())
	resp.Body.Close()
	if resp.Header.Get("Location") != "" {
		t.Error("an access token was taken as id_token_hint")
	}
}
