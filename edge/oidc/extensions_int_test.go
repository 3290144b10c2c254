package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/oidc"
	"postern.dev/postern/flows"
)

// fakeExtensions answers extension calls by event type, as a tenant's web service would (the runner's
// HTTP slot): the journeys are tested here; the Wasm runtime behind the same interface in package wasm.
type fakeExtensions struct {
	mu      sync.Mutex
	answers map[string]func(req map[string]any) (string, error) // by request "type"
	calls   []string
}

func (f *fakeExtensions) Invoke(_ context.Context, ext directory.Extension, input []byte) ([]byte, error) {
	var req map[string]any
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, err
	}
	typ, _ := req["type"].(string)
	f.mu.Lock()
	f.calls = append(f.calls, ext.ID+" "+typ)
	answer := f.answers[typ]
	f.mu.Unlock()
	if answer == nil {
		return nil, errors.New("no answer for " + typ)
	}
	out, err := answer(req)
	return []byte(out), err
}

func withExtensions(f *fakeExtensions) func(*oidc.Config) {
	return func(c *oidc.Config) { c.Extensions = &flows.Runner{HTTP: f} }
}

func (e *env) extension(id, onError string, events ...string) {
	e.t.Helper()
	e.propose(directory.MakeOp(directory.OpExtensionPut, directory.ExtensionPut{Extension: directory.Extension{
		ID: id, Tenant: "acme", Events: events, URL: "https://hooks.acme.test/" + id, OnError: onError}}))
}

const claimsAnswer = `{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[
	{"@odata.type":"microsoft.graph.tokenIssuanceStart.provideClaimsForToken","claims":{"loyalty_tier":"gold","roles":["buyer","reviewer"]}}]}}`

func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// codeFlow signs ann in for app web and redeems the code; it returns the authorization response and, when
// there was a code, the token response.
func (e *env) codeFlow(t *testing.T) (url.Values, map[string]any, *http.Response) {
	t.Helper()
	verifier, challenge := pkce()
	auth := e.issuer("acme") + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI},
		"scope": {"openid email"}, "state": {"x"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	b := e.browser()
	resp, err := b.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, body := e.postPage(b, resp.Request.URL.String(), url.Values{"email": {"ann@example.com"}, "password": {password}})
	if resp.StatusCode != http.StatusFound {
		return nil, nil, &http.Response{StatusCode: resp.StatusCode, Body: io.NopCloser(strings.NewReader(body))}
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	req, _ := http.NewRequest("POST", e.issuer("acme")+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", e.secret)
	tr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Body.Close()
	var tok map[string]any
	json.NewDecoder(tr.Body).Decode(&tok)
	return q, tok, nil
}

// OnTokenIssuanceStart's claims appear in the ID token, the access token, and the tokens a refresh gives.
func TestTokenIssuanceStartClaimsInTokens(t *testing.T) {
	f := &fakeExtensions{answers: map[string]func(map[string]any) (string, error){
		"microsoft.graph.authenticationEvent.tokenIssuanceStart": func(req map[string]any) (string, error) {
			user, _ := req["data"].(map[string]any)["authenticationContext"].(map[string]any)["user"].(map[string]any)
			if user["id"] != "u1" {
				return "", errors.New("the request does not name the user")
			}
			return claimsAnswer, nil
		}}}
	e := newEnv(t, withExtensions(f))
	e.extension("enrich", "fail", "OnTokenIssuanceStart")
	_, tok, failed := e.codeFlow(t)
	if failed != nil {
		t.Fatalf("sign-in: %d", failed.StatusCode)
	}
	for _, name := range []string{"id_token", "access_token"} {
		raw, _ := tok[name].(string)
		c := jwtClaims(t, raw)
		if c["loyalty_tier"] != "gold" || len(c["roles"].([]any)) != 2 || c["sub"] != "u1" {
			t.Errorf("%s claims: %v", name, c)
		}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}
	req, _ := http.NewRequest("POST", e.issuer("acme")+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", e.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var refreshed map[string]any
	json.NewDecoder(resp.Body).Decode(&refreshed)
	resp.Body.Close()
	if c := jwtClaims(t, refreshed["access_token"].(string)); c["loyalty_tier"] != "gold" {
		t.Errorf("refreshed access token lacks the extension's claims: %v", c)
	}
}

// Under on_error fail a failed OnTokenIssuanceStart means no code, hence no token; under continue the
// sign-in goes on without its claims.
func TestTokenIssuanceStartOnError(t *testing.T) {
	for _, policy := range []string{"fail", "continue"} {
		t.Run(policy, func(t *testing.T) {
			f := &fakeExtensions{answers: map[string]func(map[string]any) (string, error){
				"microsoft.graph.authenticationEvent.tokenIssuanceStart": func(map[string]any) (string, error) {
					return `{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[
						{"@odata.type":"microsoft.graph.tokenIssuanceStart.provideClaimsForToken","claims":{"sub":"admin"}}]}}`, nil
				}}}
			e := newEnv(t, withExtensions(f))
			e.extension("evil", policy, "OnTokenIssuanceStart")
			q, tok, failed := e.codeFlow(t)
			if policy == "fail" {
				if failed == nil || failed.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("fail: authorization answered %v (%v), want the error page and no code", failed, q)
				}
				body, _ := io.ReadAll(failed.Body)
				if strings.Contains(string(body), "code=") {
					t.Error("the error page carries a code")
				}
				return
			}
			if failed != nil {
				t.Fatalf("continue: sign-in failed with %d", failed.StatusCode)
			}
			if c := jwtClaims(t, tok["id_token"].(string)); c["sub"] != "u1" {
				t.Errorf("continue: sub = %v, the extension's override must never apply", c["sub"])
			}
		})
	}
}

// OnAttributeCollectionStart prefills the form; Submit's validation error appears on the page, and its
// modification lands in the user; OnOtpSend delivering the code means Postern sends no mail.
func TestSignUpExtensions(t *testing.T) {
	var delivered string
	f := &fakeExtensions{answers: map[string]func(map[string]any) (string, error){
		"microsoft.graph.authenticationEvent.attributeCollectionStart": func(map[string]any) (string, error) {
			return `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionStartResponseData","actions":[
				{"@odata.type":"microsoft.graph.attributeCollectionStart.setPrefillValues","inputs":{"given_name":"Prefilled"}}]}}`, nil
		},
		"microsoft.graph.authenticationEvent.attributeCollectionSubmit": func(req map[string]any) (string, error) {
			attrs := req["data"].(map[string]any)["userSignUpInfo"].(map[string]any)["attributes"].(map[string]any)
			loyalty, _ := attrs["loyalty_id"].(map[string]any)["value"].(string)
			if loyalty == "00000000" {
				return `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[
					{"@odata.type":"microsoft.graph.attributeCollectionSubmit.showValidationError","message":"Please fix the loyalty number.",
					 "attributeErrors":{"loyalty_id":"Loyalty number 00000000 is not one of ours."}}]}}`, nil
			}
			return `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[
				{"@odata.type":"microsoft.graph.attributeCollectionSubmit.modifyAttributeValues","attributes":{"given_name":"Checked"}}]}}`, nil
		},
		"microsoft.graph.authenticationEvent.emailOtpSend": func(req map[string]any) (string, error) {
			otp := req["data"].(map[string]any)["otpContext"].(map[string]any)
			delivered, _ = otp["oneTimeCode"].(string)
			return `{"data":{"@odata.type":"microsoft.graph.OnOtpSendResponseData","actions":[
				{"@odata.type":"microsoft.graph.OtpSend.continueWithDefaultBehavior"}]}}`, nil
		},
	}}
	e := newEnv(t, withExtensions(f))
	settings := directory.Settings{SignInMethods: []string{"password"}, SignUp: directory.SignUp{EmailVerification: true,
		Attributes: []directory.AttributeDef{{Name: "given_name", Required: true}, {Name: "loyalty_id", Pattern: "[0-9]{8}"}}}}
	e.propose(directory.MakeOp(directory.OpTenantUpdate, directory.TenantPatch{ID: "acme", Settings: &settings}))
	e.extension("a-signup", "fail", "OnAttributeCollectionStart", "OnAttributeCollectionSubmit", "OnOtpSend")
	b := e.browser()
	auth := e.issuer("acme") + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI},
		"scope": {"openid email profile"}, "state": {"su"}}.Encode()
	resp, err := b.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	signUp := strings.Replace(resp.Request.URL.String(), "/sign-in?", "/sign-up?", 1)
	resp, err = b.Get(signUp)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `value="Prefilled"`) {
		t.Fatalf("the start event's prefill is not on the form:\n%s", page)
	}
	resp, body := e.postPage(b, signUp, url.Values{"email": {"cy@example.com"}, "password": {"a-long-unusual-passphrase-42"},
		"given_name": {"Cy"}, "loyalty_id": {"00000000"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Loyalty number 00000000 is not one of ours.") ||
		!strings.Contains(body, "Please fix the loyalty number.") {
		t.Fatalf("the submit event's validation error is not on the page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = e.postPage(b, signUp, url.Values{"email": {"cy@example.com"}, "password": {"a-long-unusual-passphrase-42"},
		"given_name": {"Cy"}, "loyalty_id": {"12345678"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `autocomplete="one-time-code"`) {
		t.Fatalf("after sign-up: %d\n%s", resp.StatusCode, body)
	}
	select {
	case m := <-e.mail:
		t.Fatalf("Postern mailed the code although the extension delivered it: %+v", m)
	case <-time.After(100 * time.Millisecond):
	}
	if len(delivered) < 6 {
		t.Fatalf("the OTP extension was not given the code: %q", delivered)
	}
	resp, _ = e.postPage(b, resp.Request.URL.String(), url.Values{"code": {delivered}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the delivered code does not verify: %d", resp.StatusCode)
	}
	u, err := e.store.UserByEmail("acme", "cy@example.com")
	if err != nil || u.Profile.GivenName != "Checked" {
		t.Errorf("the submit event's modification did not land: %+v %v", u.Profile, err)
	}
}

// A block page from OnAttributeCollectionStart stops the sign-up before the form.
func TestSignUpBlocked(t *testing.T) {
	f := &fakeExtensions{answers: map[string]func(map[string]any) (string, error){
		"microsoft.graph.authenticationEvent.attributeCollectionStart": func(map[string]any) (string, error) {
			return `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionStartResponseData","actions":[
				{"@odata.type":"microsoft.graph.attributeCollectionStart.showBlockPage","message":"Sign-ups are closed this week."}]}}`, nil
		}}}
	e := newEnv(t, withExtensions(f))
	e.extension("closed", "fail", "OnAttributeCollectionStart")
	b := e.browser()
	auth := e.issuer("acme") + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {redirectURI},
		"scope": {"openid"}, "state": {"b"}}.Encode()
	resp, err := b.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = b.Get(strings.Replace(resp.Request.URL.String(), "/sign-in?", "/sign-up?", 1))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Sign-ups are closed this week.") || strings.Contains(string(body), `name="password"`) {
		t.Fatalf("block page: %d\n%s", resp.StatusCode, body)
	}
}
