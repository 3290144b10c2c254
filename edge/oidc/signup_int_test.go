package oidc_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

var codeRe = regexp.MustCompile(`\b(\d{6,8})\b`)

// postPage fetches a page, then posts its form with the CSRF token and the given fields.
func (e *env) postPage(b *http.Client, pageURL string, fields url.Values) (*http.Response, string) {
	e.t.Helper()
	resp, err := b.Get(pageURL)
	if err != nil {
		e.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindSubmatch(page)
	if m == nil {
		e.t.Fatalf("no CSRF field at %s (%d):\n%s", pageURL, resp.StatusCode, page)
	}
	fields.Set("csrf", string(m[1])+string(m[2]))
	resp, err = b.PostForm(resp.Request.URL.String(), fields)
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestSignUpWithEmailVerification(t *testing.T) {
	e := newEnv(t)
	settings := directory.Settings{SignInMethods: []string{"password"}, SignUp: directory.SignUp{EmailVerification: true,
		Attributes: []directory.AttributeDef{{Name: "given_name", Required: true}, {Name: "loyalty_id", Pattern: "[0-9]{8}"}}}}
	e.propose(directory.MakeOp(directory.OpTenantUpdate, directory.TenantPatch{ID: "acme", Settings: &settings}))
	b := e.browser()
	auth := e.issuer("acme") + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}, "scope": {"openid email profile"}, "state": {"su"}}.Encode()
	resp, err := b.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	signUp := strings.Replace(resp.Request.URL.String(), "/sign-in?", "/sign-up?", 1)

	// Validation errors come back on the page, values kept, nothing sent.
	resp, body := e.postPage(b, signUp, url.Values{"email": {"bea@example.com"}, "password": {"password1"}, "loyalty_id": {"12"}})
	if resp.StatusCode != 200 || !strings.Contains(body, `value="bea@example.com"`) || !strings.Contains(body, `value="12"`) {
		t.Fatalf("sign-up with errors: %d\n%s", resp.StatusCode, body)
	}
	select {
	case m := <-e.mail:
		t.Fatalf("mail sent for an invalid sign-up: %+v", m)
	default:
	}

	resp, body = e.postPage(b, signUp, url.Values{"email": {"Bea@Example.com"}, "password": {"a-long-unusual-passphrase-42"}, "given_name": {"Bea"}, "loyalty_id": {"12345678"}})
	if resp.StatusCode != 200 || !strings.Contains(body, `autocomplete="one-time-code"`) {
		t.Fatalf("after sign-up: %d\n%s", resp.StatusCode, body)
	}
	verifyURL := resp.Request.URL.String()
	var m mailed
	select {
	case m = <-e.mail:
	case <-time.After(5 * time.Second):
		t.Fatal("no code was mailed")
	}
	code := codeRe.FindString(m.text)
	if m.to != "bea@example.com" || code == "" || m.tenant != "acme" {
		t.Fatalf("mail: %+v", m)
	}
	if _, err := e.store.UserByEmail("acme", "bea@example.com"); err == nil {
		t.Fatal("the user exists before the code was entered")
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	resp, body = e.postPage(b, verifyURL, url.Values{"code": {wrong}})
	if resp.StatusCode != 200 || !strings.Contains(body, "one-time-code") {
		t.Fatalf("wrong code: %d\n%s", resp.StatusCode, body)
	}
	resp, body = e.postPage(b, verifyURL, url.Values{"code": {code}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Query().Get("code") == "" || loc.Query().Get("state") != "su" {
		t.Fatalf("right code: %d %v\n%s", resp.StatusCode, loc, body)
	}
	status, tok := e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {"web"}, "client_secret": {e.secret}, "redirect_uri": {redirectURI}})
	if status != 200 || tok["id_token"] == nil {
		t.Fatalf("exchange after sign-up: %d %v", status, tok)
	}
	u, err := e.store.UserByEmail("acme", "bea@example.com")
	if err != nil || !u.EmailVerified || u.Profile.GivenName != "Bea" || u.Attributes["loyalty_id"] != "12345678" {
		t.Fatalf("the new user: %+v %v", u, err)
	}
	// The code is single use: the pending sign-up is gone.
	resp, err = b.Get(verifyURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("reusing the code: %d", resp.StatusCode)
	}
}

func TestSignUpWithoutVerificationAndCommonPassword(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	auth := e.issuer("acme") + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI}}.Encode()
	resp, _ := b.Get(auth)
	resp.Body.Close()
	signUp := strings.Replace(resp.Request.URL.String(), "/sign-in?", "/sign-up?", 1)
	resp, body := e.postPage(b, signUp, url.Values{"email": {"cy@example.com"}, "password": {"password123"}})
	if resp.StatusCode != 200 || strings.Contains(body, `value="password123"`) {
		t.Fatalf("a common password must be refused without echoing it: %d", resp.StatusCode)
	}
	resp, _ = e.postPage(b, signUp, url.Values{"email": {"cy@example.com"}, "password": {"an-uncommon-passphrase-77"}})
	if resp.StatusCode != 302 {
		t.Fatalf("sign-up without verification: %d", resp.StatusCode)
	}
	// The same email again is refused on the page.
	b2 := e.browser()
	resp, _ = b2.Get(auth)
	resp.Body.Close()
	resp, body = e.postPage(b2, strings.Replace(resp.Request.URL.String(), "/sign-in?", "/sign-up?", 1),
		url.Values{"email": {"CY@example.com"}, "password": {"another-uncommon-passphrase-78"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "email") {
		t.Fatalf("second sign-up with one email: %d", resp.StatusCode)
	}
}
