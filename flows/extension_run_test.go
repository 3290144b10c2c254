package flows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"postern.dev/postern/directory"
)

// fakeInvoker answers for extensions by id and records the calls, in order.
type fakeInvoker struct {
	answers map[string]func(input []byte) ([]byte, error)

	mu     sync.Mutex
	calls  []string
	inputs map[string][]byte
}

func (f *fakeInvoker) Invoke(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, ext.ID)
	if f.inputs == nil {
		f.inputs = map[string][]byte{}
	}
	f.inputs[ext.ID] = bytes.Clone(input)
	f.mu.Unlock()
	answer, ok := f.answers[ext.ID]
	if !ok {
		return nil, fmt.Errorf("fake: no answer for %q", ext.ID)
	}
	return answer(input)
}

// extSpec is one extension of a run: its policy, and what it answers (JSON) or the invoker's error.
type extSpec struct {
	id      string
	onError string
	answer  string
	err     error
}

func (s extSpec) ext(ev Event) directory.Extension {
	e := testExt(s.id, ev)
	e.OnError = s.onError
	return e
}

var errTrap = errors.New("wasm: trap: unreachable")

// runEvent runs ev with the fixed test input over the specs, all as WebAssembly extensions.
func runEvent(t *testing.T, ev Event, specs []extSpec) (*fakeInvoker, any, error) {
	t.Helper()
	f := &fakeInvoker{answers: map[string]func([]byte) ([]byte, error){}}
	var exts []directory.Extension
	for _, s := range specs {
		exts = append(exts, s.ext(ev))
		f.answers[s.id] = func([]byte) ([]byte, error) {
			if s.err != nil {
				return nil, s.err
			}
			return []byte(s.answer), nil
		}
	}
	r := &Runner{Wasm: f}
	ctx := context.Background()
	signUp := SignUpInput{Email: "ann@example.com", Attributes: map[string]string{"given_name": "Ann", "terms": "on"}}
	var d any
	var err error
	switch ev {
	case EventAttributeCollectionStart:
		d, err = r.AttributeCollectionStart(ctx, exts, AttributeCollectionStartInput{EventContext: testCtx, Flow: testFlow, SignUp: signUp})
	case EventAttributeCollectionSubmit:
		d, err = r.AttributeCollectionSubmit(ctx, exts, AttributeCollectionSubmitInput{EventContext: testCtx, Flow: testFlow, SignUp: signUp})
	case EventTokenIssuanceStart:
		d, err = r.TokenIssuanceStart(ctx, exts, TokenIssuanceStartInput{EventContext: testCtx, User: testUser})
	case EventOtpSend:
		d, err = r.OtpSend(ctx, exts, OtpSendInput{EventContext: testCtx, RequestType: OtpSignIn, Email: "ann@example.com", Code: "123456"})
	case EventProxyRequest:
		d, err = r.ProxyRequest(ctx, exts, ProxyRequestInput{EventContext: testCtx, Host: "shop.example.com", Method: "GET", Path: "/",
			User: &ProxyUser{ID: "usr_01"}})
	}
	return f, d, err
}

// TestRunnerEvents runs every event over fake extensions: decisions merged in order, the first block,
// denial or delivery ending the run, and on_error applied to invoker errors and malformed answers alike.
func TestRunnerEvents(t *testing.T) {
	const (
		start  = EventAttributeCollectionStart
		submit = EventAttributeCollectionSubmit
		token  = EventTokenIssuanceStart
		otp    = EventOtpSend
		proxy  = EventProxyRequest
		cont   = "continue"
		fail   = "fail"
	)
	a := func(ev Event, typ, members string) string {
		if members == "" {
			return ans(ev, fmt.Sprintf(`{"@odata.type": %q}`, typ))
		}
		return ans(ev, fmt.Sprintf(`{"@odata.type": %q, %s}`, typ, members))
	}
	claims := func(members string) string { return a(token, ActionTokenProvideClaims, `"claims": {`+members+`}`) }
	badAnswer := `{"data": {"@odata.type": "microsoft.graph.somethingElse", "actions": []}}`
	tests := []struct {
		name      string
		ev        Event
		exts      []extSpec
		want      any
		failedExt string // the *ExtensionError's extension, "" for no error
		calls     []string
	}{
		{"start: none", start, nil, AttributeStartDecision{}, "", nil},
		{"start: prefills merge, later wins", start, []extSpec{
			{id: "a", answer: a(start, ActionStartSetPrefillValues, `"inputs": {"given_name": "Ann", "age": 40}`)},
			{id: "b", answer: a(start, ActionStartSetPrefillValues, `"inputs": {"age": "41"}`)},
			{id: "c", answer: a(start, ActionStartContinue, "")},
		}, AttributeStartDecision{Prefill: map[string]string{"given_name": "Ann", "age": "41"}}, "", []string{"a", "b", "c"}},
		{"start: first block wins", start, []extSpec{
			{id: "a", answer: a(start, ActionStartSetPrefillValues, `"inputs": {"age": 40}`)},
			{id: "b", answer: a(start, ActionStartShowBlockPage, `"message": "Closed"`)},
			{id: "c", answer: a(start, ActionStartShowBlockPage, `"message": "Other"`)},
		}, AttributeStartDecision{Prefill: map[string]string{"age": "40"}, Block: &Block{Message: "Closed", Extension: "b"}}, "", []string{"a", "b"}},
		{"start: trap, fail", start, []extSpec{{id: "a", err: errTrap}, {id: "b", answer: a(start, ActionStartContinue, "")}}, nil, "a", []string{"a"}},
		{"start: trap, default policy fails", start, []extSpec{{id: "a", onError: "", err: errTrap}}, nil, "a", []string{"a"}},
		{"start: unknown policy fails", start, []extSpec{{id: "a", onError: "ignore", err: errTrap}}, nil, "a", []string{"a"}},
		{"start: trap, continue", start, []extSpec{
			{id: "a", onError: cont, err: errTrap},
			{id: "b", answer: a(start, ActionStartSetPrefillValues, `"inputs": {"age": 40}`)},
		}, AttributeStartDecision{Prefill: map[string]string{"age": "40"}}, "", []string{"a", "b"}},
		{"start: malformed, fail", start, []extSpec{{id: "a", onError: fail, answer: badAnswer}}, nil, "a", []string{"a"}},
		{"start: unknown attribute, continue", start, []extSpec{
			{id: "a", onError: cont, answer: a(start, ActionStartSetPrefillValues, `"inputs": {"age": 40, "role": "admin"}`)},
		}, AttributeStartDecision{}, "", []string{"a"}},

		{"submit: none", submit, nil, SubmitDecision{}, "", nil},
		{"submit: modifications merge", submit, []extSpec{
			{id: "a", answer: a(submit, ActionSubmitModifyAttributeValues, `"attributes": {"given_name": "ANN", "loyalty_id": "00000001"}`)},
			{id: "b", answer: a(submit, ActionSubmitModifyAttributeValues, `"attributes": {"given_name": "Ann"}`)},
		}, SubmitDecision{Modify: map[string]string{"given_name": "Ann", "loyalty_id": "00000001"}}, "", []string{"a", "b"}},
		{"submit: validation error ends the run", submit, []extSpec{
			{id: "a", answer: a(submit, ActionSubmitShowValidationError, `"message": "Check", "attributeErrors": {"loyalty_id": "Unknown number"}`)},
			{id: "b", answer: a(submit, ActionSubmitContinue, "")},
		}, SubmitDecision{Message: "Check", FieldErrors: map[string]string{"loyalty_id": "Unknown number"}}, "", []string{"a"}},
		{"submit: block", submit, []extSpec{
			{id: "a", answer: a(submit, ActionSubmitContinue, "")},
			{id: "b", answer: a(submit, ActionSubmitShowBlockPage, `"message": "No"`)},
		}, SubmitDecision{Block: &Block{Message: "No", Extension: "b"}}, "", []string{"a", "b"}},
		{"submit: malformed, fail", submit, []extSpec{
			{id: "a", answer: a(submit, ActionSubmitModifyAttributeValues, `"attributes": {"email": "eve@example.com"}`)},
		}, nil, "a", []string{"a"}},
		{"submit: malformed, continue", submit, []extSpec{
			{id: "a", onError: cont, answer: a(submit, ActionSubmitModifyAttributeValues, `"attributes": {"email": "eve@example.com"}`)},
			{id: "b", answer: a(submit, ActionSubmitContinue, "")},
		}, SubmitDecision{}, "", []string{"a", "b"}},

		{"token: none", token, nil, TokenDecision{}, "", nil},
		{"token: claims merge, later wins", token, []extSpec{
			{id: "a", answer: claims(`"tier": "silver", "roles": ["reader"]`)},
			{id: "b", answer: claims(`"tier": "gold"`)},
		}, TokenDecision{Claims: map[string]any{"tier": "gold", "roles": []string{"reader"}}}, "", []string{"a", "b"}},
		{"token: protected claim, fail: no token", token, []extSpec{
			{id: "a", answer: claims(`"tier": "gold"`)},
			{id: "b", onError: fail, answer: claims(`"sub": "admin"`)},
			{id: "c", answer: claims(`"x": "y"`)},
		}, nil, "b", []string{"a", "b"}},
		{"token: protected claim, continue: that extension's claims dropped", token, []extSpec{
			{id: "a", answer: claims(`"tier": "gold"`)},
			{id: "b", onError: cont, answer: claims(`"nickname": "boss", "aud": "other"`)},
			{id: "c", answer: claims(`"x": "y"`)},
		}, TokenDecision{Claims: map[string]any{"tier": "gold", "x": "y"}}, "", []string{"a", "b", "c"}},
		{"token: timeout, fail", token, []extSpec{{id: "a", err: context.DeadlineExceeded}}, nil, "a", []string{"a"}},
		{"token: claims over the total, fail", token, []extSpec{
			{id: "a", answer: claims(`"a": "` + strings.Repeat("x", 2000) + `"`)},
			{id: "b", answer: claims(`"b": "` + strings.Repeat("x", 2000) + `"`)},
		}, nil, "b", []string{"a", "b"}},
		{"token: claims over the total, continue", token, []extSpec{
			{id: "a", answer: claims(`"a": "` + strings.Repeat("x", 2000) + `"`)},
			{id: "b", onError: cont, answer: claims(`"b": "` + strings.Repeat("x", 2000) + `"`)},
		}, TokenDecision{Claims: map[string]any{"a": strings.Repeat("x", 2000)}}, "", []string{"a", "b"}},

		{"otp: none: Postern mails", otp, nil, OtpDecision{}, "", nil},
		{"otp: first delivery wins", otp, []extSpec{
			{id: "a", answer: a(otp, ActionOtpUseDefaultProvider, "")},
			{id: "b", answer: a(otp, ActionOtpContinue, "")},
			{id: "c", answer: a(otp, ActionOtpContinue, "")},
		}, OtpDecision{Delivered: true, Extension: "b"}, "", []string{"a", "b"}},
		{"otp: failure, continue: Postern mails", otp, []extSpec{{id: "a", onError: cont, err: errTrap}}, OtpDecision{}, "", []string{"a"}},
		{"otp: failure, fail: no code sent", otp, []extSpec{{id: "a", err: errTrap}}, nil, "a", []string{"a"}},
		{"otp: malformed, fail", otp, []extSpec{{id: "a", answer: `{}`}}, nil, "a", []string{"a"}},

		{"proxy: none", proxy, nil, ProxyDecision{}, "", nil},
		{"proxy: headers merge", proxy, []extSpec{
			{id: "a", answer: a(proxy, ActionProxyAddUpstreamHeaders, `"headers": {"X-Tier": "silver", "X-A": "1"}`)},
			{id: "b", answer: a(proxy, ActionProxyAllow, "")},
			{id: "c", answer: a(proxy, ActionProxyAddUpstreamHeaders, `"headers": {"x-tier": "gold"}`)},
		}, ProxyDecision{Headers: map[string]string{"X-Tier": "gold", "X-A": "1"}}, "", []string{"a", "b", "c"}},
		{"proxy: first denial wins", proxy, []extSpec{
			{id: "a", answer: a(proxy, ActionProxyAddUpstreamHeaders, `"headers": {"X-Tier": "silver"}`)},
			{id: "b", answer: a(proxy, ActionProxyDeny, `"status": 401`)},
			{id: "c", answer: a(proxy, ActionProxyAllow, "")},
		}, ProxyDecision{Deny: &Deny{Status: 401, Extension: "b"}}, "", []string{"a", "b"}},
		{"proxy: reserved header, fail", proxy, []extSpec{
			{id: "a", answer: a(proxy, ActionProxyAddUpstreamHeaders, `"headers": {"X-Forwarded-User": "admin"}`)},
		}, nil, "a", []string{"a"}},
		{"proxy: reserved header, continue", proxy, []extSpec{
			{id: "a", onError: cont, answer: a(proxy, ActionProxyAddUpstreamHeaders, `"headers": {"X-Forwarded-User": "admin"}`)},
		}, ProxyDecision{}, "", []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, got, err := runEvent(t, tc.ev, tc.exts)
			if !reflect.DeepEqual(f.calls, tc.calls) {
				t.Errorf("calls %v, want %v", f.calls, tc.calls)
			}
			if tc.failedExt != "" {
				var xe *ExtensionError
				if !errors.As(err, &xe) || xe.Extension != tc.failedExt || xe.Event != tc.ev || xe.Tenant != "acme" {
					t.Fatalf("err = %v, want an *ExtensionError of %q", err, tc.failedExt)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestRunnerErrorsUnwrap shows what a caller can tell from a failure: a malformed answer is a
// *ContractError behind the *ExtensionError, an invoker's error is itself.
func TestRunnerErrorsUnwrap(t *testing.T) {
	_, _, err := runEvent(t, EventTokenIssuanceStart, []extSpec{{id: "a", answer: `{"data": {}}`}})
	var ce *ContractError
	if !errors.As(err, &ce) || ce.Event != EventTokenIssuanceStart {
		t.Errorf("malformed: %v", err)
	}
	_, _, err = runEvent(t, EventTokenIssuanceStart, []extSpec{{id: "a", err: context.DeadlineExceeded}})
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ce) {
		t.Errorf("timeout: %v", err)
	}
}

// TestRunnerPipeline shows each extension seeing what the ones before it decided.
func TestRunnerPipeline(t *testing.T) {
	f, _, err := runEvent(t, EventAttributeCollectionSubmit, []extSpec{
		{id: "a", answer: ans(EventAttributeCollectionSubmit, `{"@odata.type": "`+ActionSubmitModifyAttributeValues+`", "attributes": {"loyalty_id": "00000042", "newsletter": true}}`)},
		{id: "b", answer: ans(EventAttributeCollectionSubmit, `{"@odata.type": "`+ActionSubmitContinue+`"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Data struct {
			UserSignUpInfo struct {
				Attributes map[string]struct {
					Value any `json:"value"`
				} `json:"attributes"`
			} `json:"userSignUpInfo"`
		} `json:"data"`
	}
	if err := json.Unmarshal(f.inputs["b"], &req); err != nil {
		t.Fatal(err)
	}
	attrs := req.Data.UserSignUpInfo.Attributes
	if attrs["loyalty_id"].Value != "00000042" || attrs["newsletter"].Value != true || attrs["given_name"].Value != "Ann" {
		t.Errorf("b saw %s", f.inputs["b"])
	}
	if bytes.Contains(f.inputs["a"], []byte("00000042")) {
		t.Error("a saw b's input")
	}

	f, _, err = runEvent(t, EventAttributeCollectionStart, []extSpec{
		{id: "a", answer: ans(EventAttributeCollectionStart, `{"@odata.type": "`+ActionStartSetPrefillValues+`", "inputs": {"birthday": "1990-02-03"}}`)},
		{id: "b", answer: ans(EventAttributeCollectionStart, `{"@odata.type": "`+ActionStartContinue+`"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(f.inputs["b"], []byte(`"1990-02-03"`)) {
		t.Errorf("b did not see a's prefill: %s", f.inputs["b"])
	}
}

// TestRunnerDispatch covers which extensions are called and by which invoker.
func TestRunnerDispatch(t *testing.T) {
	ok := ans(EventTokenIssuanceStart, `{"@odata.type": "`+ActionTokenProvideClaims+`", "claims": {"via": "KIND"}}`)
	invoker := func(kind string) *fakeInvoker {
		return &fakeInvoker{answers: map[string]func([]byte) ([]byte, error){
			"mod": func([]byte) ([]byte, error) { return []byte(strings.Replace(ok, "KIND", kind, 1)), nil },
			"web": func([]byte) ([]byte, error) { return []byte(strings.Replace(ok, "KIND", kind, 1)), nil },
		}}
	}
	mod := testExt("mod", EventTokenIssuanceStart)
	web := testExt("web", EventTokenIssuanceStart)
	web.WasmSHA256, web.URL = "", "https://ext.example.com/claims"
	other := testExt("other", EventOtpSend)
	in := TokenIssuanceStartInput{EventContext: testCtx, User: testUser}
	ctx := context.Background()

	wasm, web2 := invoker("wasm"), invoker("http")
	r := &Runner{Wasm: wasm, HTTP: web2}
	d, err := r.TokenIssuanceStart(ctx, []directory.Extension{other, mod, web}, in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Claims["via"] != "http" || !reflect.DeepEqual(wasm.calls, []string{"mod"}) || !reflect.DeepEqual(web2.calls, []string{"web"}) {
		t.Errorf("claims %v, wasm calls %v, http calls %v", d.Claims, wasm.calls, web2.calls)
	}

	// No invoker of the kind: the extension fails under its policy.
	if _, err := (&Runner{Wasm: wasm}).TokenIssuanceStart(ctx, []directory.Extension{web}, in); !strings.Contains(err.Error(), "no HTTP invoker") {
		t.Errorf("no HTTP invoker: %v", err)
	}
	web.OnError = "continue"
	if d, err := (&Runner{}).TokenIssuanceStart(ctx, []directory.Extension{web}, in); err != nil || d.Claims != nil {
		t.Errorf("no HTTP invoker, continue: %v %v", d, err)
	}
	neither := testExt("neither", EventTokenIssuanceStart)
	neither.WasmSHA256 = ""
	if _, err := r.TokenIssuanceStart(ctx, []directory.Extension{neither}, in); !strings.Contains(err.Error(), "neither a module nor a URL") {
		t.Errorf("neither: %v", err)
	}

	// Another tenant's extension is never called, whatever its policy.
	foreign := testExt("mod", EventTokenIssuanceStart)
	foreign.Tenant, foreign.OnError = "globex", "continue"
	wasm = invoker("wasm")
	_, err = (&Runner{Wasm: wasm}).TokenIssuanceStart(ctx, []directory.Extension{foreign}, in)
	var xe *ExtensionError
	if err == nil || errors.As(err, &xe) || len(wasm.calls) != 0 {
		t.Errorf("foreign extension: %v, calls %v", err, wasm.calls)
	}

	// A caller's input that cannot be encoded stops the run before any call, whatever the policy.
	wasm = invoker("wasm")
	sub := testExt("mod", EventAttributeCollectionSubmit)
	sub.OnError = "continue"
	_, err = (&Runner{Wasm: wasm}).AttributeCollectionSubmit(ctx, []directory.Extension{sub}, AttributeCollectionSubmitInput{
		EventContext: testCtx, Flow: testFlow, SignUp: SignUpInput{Email: "a@example.com", Attributes: map[string]string{"age": "old"}}})
	if err == nil || errors.As(err, &xe) || len(wasm.calls) != 0 {
		t.Errorf("bad input: %v, calls %v", err, wasm.calls)
	}
}

// TestRunnerContinueLogs shows the skipped failure in the log, with the correlation id, and a cancelled
// journey failing whatever the policy.
func TestRunnerContinueLogs(t *testing.T) {
	var logs bytes.Buffer
	f := &fakeInvoker{answers: map[string]func([]byte) ([]byte, error){
		"a": func([]byte) ([]byte, error) { return nil, errTrap },
	}}
	ext := testExt("a", EventOtpSend)
	ext.OnError = "continue"
	r := &Runner{Wasm: f, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	in := OtpSendInput{EventContext: testCtx, Email: "ann@example.com", Code: "123456"}
	d, err := r.OtpSend(context.Background(), []directory.Extension{ext}, in)
	if err != nil || d.Delivered {
		t.Fatalf("%v %v", d, err)
	}
	for _, s := range []string{"level=WARN", "extension=a", "event=OnOtpSend", "correlation_id=" + testCtx.CorrelationID, "unreachable"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("log %q lacks %q", logs.String(), s)
		}
	}
	if strings.Contains(logs.String(), "123456") {
		t.Error("the code is in the log")
	}

	// The last extension's failure too: a cancelled journey must not go on to Postern mailing the code.
	ctx, cancel := context.WithCancel(context.Background())
	f.answers["a"] = func([]byte) ([]byte, error) { cancel(); return nil, context.Canceled }
	if _, err := r.OtpSend(ctx, []directory.Extension{ext}, in); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled journey, continue: %v", err)
	}
	if _, err := r.OtpSend(ctx, []directory.Extension{ext}, in); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before the run: %v", err)
	}
}
