package wasm

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// jsonEqual fails t unless got and want are the same JSON value.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("answer\n%s\nwant\n%s", got, want)
	}
}

// signUp is an OnAttributeCollectionSubmit request in Entra's shape.
func signUp(attrs map[string]string) string {
	a := map[string]any{}
	for k, v := range attrs {
		a[k] = map[string]any{
			"@odata.type":   "microsoft.graph.stringDirectoryAttributeValue",
			"value":         v,
			"attributeType": "builtIn",
		}
	}
	data, _ := json.Marshal(map[string]any{
		"@odata.type":    "microsoft.graph.onAttributeCollectionSubmitCalloutData",
		"userSignUpInfo": map[string]any{"attributes": a},
	})
	return event("microsoft.graph.authenticationEvent.attributeCollectionSubmit", string(data))
}

func TestEchoExample(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("acme", "echo", guest(t, "examples/echo"))
	for _, in := range []string{`{}`, `{"a":[1,2,3]}`, `"` + strings.Repeat("é", 5000) + `"`} {
		if got := h.mustInvoke(t, ext, in); got != in {
			t.Errorf("echo answered %.80q, want %.80q", got, in)
		}
	}
	// Sequential calls reuse one instance: never one per call.
	if live, idle := h.current(ext).stats(); live != 1 || idle != 1 {
		t.Errorf("after sequential calls: %d instances, %d idle; want 1 and 1", live, idle)
	}
}

func TestClaimsExample(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("acme", "claims", guest(t, "examples/claims"))
	ext.Config = map[string]string{"claim_name": "loyalty_tier", "claim_value": "gold"}
	got := h.mustInvoke(t, ext, event("microsoft.graph.authenticationEvent.tokenIssuanceStart",
		`{"@odata.type":"microsoft.graph.onTokenIssuanceStartCalloutData","authenticationContext":{"user":{"id":"u1"}}}`))
	jsonEqual(t, got, `{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[
		{"@odata.type":"microsoft.graph.tokenIssuanceStart.provideClaimsForToken","claims":{"loyalty_tier":"gold"}}]}}`)

	// The configuration is the call's: a new record's config applies at once, on the same module.
	ext.Config = map[string]string{"claim_name": "loyalty_tier", "claim_value": "silver"}
	got = h.mustInvoke(t, ext, event("microsoft.graph.authenticationEvent.tokenIssuanceStart", `{}`))
	wantContains(t, got, `"loyalty_tier":"silver"`)
}

func TestBlocklistExample(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("acme", "blocklist", guest(t, "examples/blocklist"))
	ext.Events = []string{"OnAttributeCollectionSubmit"}
	ext.Config = map[string]string{"blocked": "@spam.test, bad@acme.test", "message": "Not here."}

	got := h.mustInvoke(t, ext, signUp(map[string]string{"email": "Someone@SPAM.test"}))
	jsonEqual(t, got, `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[
		{"@odata.type":"microsoft.graph.attributeCollectionSubmit.showBlockPage","message":"Not here."}]}}`)
	got = h.mustInvoke(t, ext, signUp(map[string]string{"email": "bad@acme.test"}))
	wantContains(t, got, "showBlockPage")
	got = h.mustInvoke(t, ext, signUp(map[string]string{"email": "good@acme.test"}))
	jsonEqual(t, got, `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[
		{"@odata.type":"microsoft.graph.attributeCollectionSubmit.continueWithDefaultBehavior"}]}}`)

	// The extension's log line reaches the node's log, with its tenant and extension.
	logs := h.log.String()
	wantContains(t, logs, `"msg":"blocked a sign-up from @spam.test","tenant":"acme","extension":"blocklist","source":"log"`)
}

// loyaltyService is the tenant's own loyalty-number service.
func loyaltyService(t *testing.T) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID string `json:"loyalty_id"`
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen = append(seen, body.ID)
		mu.Unlock()
		status := "invalid"
		if strings.HasPrefix(body.ID, "LOY-") {
			status = "valid"
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"`+status+`"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestLoyaltyExample(t *testing.T) {
	srv, seen := loyaltyService(t)
	h := newHarness(t, nil)
	ext := h.ext("acme", "loyalty", guest(t, "examples/loyalty"))
	ext.Events = []string{"OnAttributeCollectionSubmit"}
	ext.AllowedHosts = []string{"127.0.0.1"}
	ext.Config = map[string]string{"service_url": srv.URL + "/check"}

	got := h.mustInvoke(t, ext, signUp(map[string]string{"email": "a@acme.test", "loyalty_id": "LOY-1234"}))
	wantContains(t, got, "attributeCollectionSubmit.continueWithDefaultBehavior")

	got = h.mustInvoke(t, ext, signUp(map[string]string{"email": "a@acme.test", "loyalty_id": "12"}))
	jsonEqual(t, got, `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[
		{"@odata.type":"microsoft.graph.attributeCollectionSubmit.showValidationError",
		 "message":"Please check your loyalty number.",
		 "attributeErrors":{"loyalty_id":"This loyalty number is not valid."}}]}}`)
	if want := []string{"LOY-1234", "12"}; !reflect.DeepEqual(*seen, want) {
		t.Errorf("service saw %q, want %q", *seen, want)
	}

	// A host the extension does not list is refused: the guest's error fails the call (ErrFailed),
	// and the instance stays in the pool.
	ext.AllowedHosts = []string{"loyalty.acme.test"}
	_, err := h.invoke(t, ext, signUp(map[string]string{"loyalty_id": "LOY-9"}))
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("fetch to a host not allowed: %v, want ErrFailed", err)
	}
	wantContains(t, h.log.String(), `is not in the extension's allowed_hosts`)
	if live, idle := h.current(ext).stats(); live != 1 || idle != 1 {
		t.Errorf("after a reported failure: %d instances, %d idle; want the instance kept", live, idle)
	}
	if len(*seen) != 2 {
		t.Errorf("the service was called by a refused fetch")
	}
}

func TestOtpExample(t *testing.T) {
	type delivery struct{ To, Code, Auth string }
	var mu sync.Mutex
	var got []delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d delivery
		_ = json.NewDecoder(r.Body).Decode(&d)
		d.Auth = r.Header.Get("Authorization")
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)

	kek := secretsKEK(t)
	h := newHarness(t, func(c *Config) { c.Secret = kek.ExtensionSecret })
	ext := h.ext("acme", "otp", guest(t, "examples/otp"))
	ext.Events = []string{"OnOtpSend"}
	ext.AllowedHosts = []string{srv.Listener.Addr().String()}
	ext.Config = map[string]string{"delivery_url": srv.URL + "/send"}
	ext.Secrets = sealSecrets(t, kek, ext, map[string]string{"api_key": "k-123"})

	out := h.mustInvoke(t, ext, event("microsoft.graph.authenticationEvent.emailOtpSend",
		`{"@odata.type":"microsoft.graph.onOtpSendCalloutData","otpContext":{"identifier":"ann@acme.test","oneTimeCode":"123456"}}`))
	jsonEqual(t, out, `{"data":{"@odata.type":"microsoft.graph.OnOtpSendResponseData","actions":[
		{"@odata.type":"microsoft.graph.OtpSend.continueWithDefaultBehavior"}]}}`)
	if want := []delivery{{"ann@acme.test", "123456", "Bearer k-123"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %+v, want %+v", got, want)
	}

	// No delivery without the code: the extension fails the call.
	if _, err := h.invoke(t, ext, event("x", `{"otpContext":{"identifier":"ann@acme.test"}}`)); !errors.Is(err, ErrFailed) {
		t.Errorf("event without a code: %v, want ErrFailed", err)
	}
}
