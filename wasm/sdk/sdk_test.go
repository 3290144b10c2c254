package sdk

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

const submit = `{"type":"microsoft.graph.authenticationEvent.attributeCollectionSubmit","source":"/tenants/acme/applications/web",
"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitCalloutData",
 "userSignUpInfo":{"attributes":{
   "email":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"ann@acme.test","attributeType":"builtIn"},
   "age":{"value":42,"attributeType":"directorySchemaExtension"},
   "plain":"text"}},
 "otpContext":{"identifier":"ann@acme.test","oneTimeCode":"123456"}}}`

func TestRequest(t *testing.T) {
	var got Request
	Handle(func(req Request) Response {
		got = req
		return ContinueWithDefaultBehavior(OnAttributeCollectionSubmit)
	})
	out := Serve([]byte(submit))
	if got.Type != "microsoft.graph.authenticationEvent.attributeCollectionSubmit" || got.Source != "/tenants/acme/applications/web" {
		t.Errorf("request envelope: %+v", got)
	}
	if string(got.Raw()) != submit {
		t.Error("Raw is not the request")
	}
	for name, want := range map[string]string{"email": "ann@acme.test", "age": "42", "plain": "text"} {
		if v, ok := got.Attribute(name); !ok || v != want {
			t.Errorf("Attribute(%s) = %q, %v; want %q", name, v, ok, want)
		}
	}
	if _, ok := got.Attribute("missing"); ok {
		t.Error("a missing attribute was found")
	}
	if v, _ := got.String("otpContext", "oneTimeCode"); v != "123456" {
		t.Errorf("String(otpContext, oneTimeCode) = %q", v)
	}
	if _, ok := got.String("userSignUpInfo"); ok {
		t.Error("String returned an object")
	}
	var data struct {
		OTP struct{ Identifier string } `json:"otpContext"`
	}
	if err := got.Decode(&data); err != nil || data.OTP.Identifier != "ann@acme.test" {
		t.Errorf("Decode: %+v, %v", data, err)
	}
	want := `{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[{"@odata.type":"microsoft.graph.attributeCollectionSubmit.continueWithDefaultBehavior"}]}}`
	if string(out) != want {
		t.Errorf("answer %s\nwant   %s", out, want)
	}
}

func TestResponses(t *testing.T) {
	for _, tc := range []struct {
		resp Response
		want string
	}{
		{ProvideClaimsForToken(map[string]any{"tier": "gold"}),
			`{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[{"@odata.type":"microsoft.graph.tokenIssuanceStart.provideClaimsForToken","claims":{"tier":"gold"}}]}}`},
		{ShowValidationError("Fix it.", map[string]string{"city": "No digits."}),
			`{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[{"@odata.type":"microsoft.graph.attributeCollectionSubmit.showValidationError","attributeErrors":{"city":"No digits."},"message":"Fix it."}]}}`},
		{ShowBlockPage(OnAttributeCollectionStart, "No."),
			`{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionStartResponseData","actions":[{"@odata.type":"microsoft.graph.attributeCollectionStart.showBlockPage","message":"No."}]}}`},
		{SetPrefillValues(map[string]any{"city": "Oslo"}),
			`{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionStartResponseData","actions":[{"@odata.type":"microsoft.graph.attributeCollectionStart.setPrefillValues","inputs":{"city":"Oslo"}}]}}`},
		{ModifyAttributeValues(map[string]any{"city": "OSLO"}),
			`{"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[{"@odata.type":"microsoft.graph.attributeCollectionSubmit.modifyAttributeValues","attributes":{"city":"OSLO"}}]}}`},
		{ContinueWithDefaultBehavior(OnOtpSend),
			`{"data":{"@odata.type":"microsoft.graph.OnOtpSendResponseData","actions":[{"@odata.type":"microsoft.graph.OtpSend.continueWithDefaultBehavior"}]}}`},
	} {
		got, _ := json.Marshal(tc.resp)
		var g, w any
		_ = json.Unmarshal(got, &g)
		_ = json.Unmarshal([]byte(tc.want), &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Respond accepted an unknown event")
		}
	}()
	Respond("OnNothing", "x", nil)
}

func TestHandleErr(t *testing.T) {
	HandleErr(func(Request) (Response, error) { return Response{}, errors.New("down") })
	if out := Serve([]byte(submit)); len(out) != 0 {
		t.Errorf("a failing handler answered %s, want nothing", out)
	}
	// Outside Postern, the host functions say so.
	if _, err := Fetch(FetchRequest{URL: "https://x.test"}); !errors.Is(err, ErrNoHost) {
		t.Errorf("Fetch outside Postern: %v", err)
	}
	if v, ok := Secret("api_key"); ok || v != "" {
		t.Errorf("Secret outside Postern = %q, %v; want not set", v, ok)
	}
}
