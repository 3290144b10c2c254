package flows

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// ans wraps one action in the answer envelope of ev.
func ans(ev Event, action string) string {
	return fmt.Sprintf(`{"data": {"@odata.type": %q, "actions": [%s]}}`, contracts[ev].responseData, action)
}

func parseAnswer(ev Event, body string) (any, error) {
	switch ev {
	case EventAttributeCollectionStart:
		return ParseAttributeCollectionStart([]byte(body), testFlow)
	case EventAttributeCollectionSubmit:
		return ParseAttributeCollectionSubmit([]byte(body), testFlow)
	case EventTokenIssuanceStart:
		return ParseTokenIssuanceStart([]byte(body))
	case EventOtpSend:
		return ParseOtpSend([]byte(body))
	case EventProxyRequest:
		return ParseProxyRequest([]byte(body))
	}
	panic("unknown event " + ev)
}

// TestParseAnswers reads good and malformed answers for every event. Good shapes follow Entra's reference
// pages (the Entra-documented example is marked so); every refusal must be a *ContractError.
func TestParseAnswers(t *testing.T) {
	const (
		start  = EventAttributeCollectionStart
		submit = EventAttributeCollectionSubmit
		token  = EventTokenIssuanceStart
		otp    = EventOtpSend
		proxy  = EventProxyRequest
	)
	act := func(typ, members string) string {
		if members == "" {
			return fmt.Sprintf(`{"@odata.type": %q}`, typ)
		}
		return fmt.Sprintf(`{"@odata.type": %q, %s}`, typ, members)
	}
	long := strings.Repeat("x", 1025)
	manyHeaders := make([]string, 33)
	for i := range manyHeaders {
		manyHeaders[i] = fmt.Sprintf(`"X-H%d": "v"`, i)
	}
	tests := []struct {
		name    string
		ev      Event
		body    string
		want    any
		wantErr string
	}{
		// The envelope, alike for every event.
		{"not JSON", start, `{"data":`, nil, "not the JSON of an answer"},
		{"trailing data", start, ans(start, act(ActionStartContinue, "")) + "{}", nil, "not the JSON of an answer"},
		{"no data", start, `{"actions": []}`, nil, `no "data" object`},
		{"null", start, `null`, nil, `no "data" object`},
		{"wrong data type", start, ans(submit, act(ActionStartContinue, "")), nil, "data @odata.type"},
		{"no data type", start, `{"data": {"actions": [{"@odata.type": "` + ActionStartContinue + `"}]}}`, nil, "data @odata.type"},
		{"no actions", start, `{"data": {"@odata.type": "microsoft.graph.onAttributeCollectionStartResponseData", "actions": []}}`, nil, "0 actions"},
		{"two actions", start, ans(start, act(ActionStartContinue, "")+","+act(ActionStartContinue, "")), nil, "2 actions, want exactly one"},
		{"another event's action", start, ans(start, act(ActionSubmitContinue, "")), nil, "unknown action"},
		{"action not an object", start, ans(start, `"continue"`), nil, "not an object"},
		{"actions not an array", start, `{"data": {"@odata.type": "microsoft.graph.onAttributeCollectionStartResponseData", "actions": {}}}`, nil, "not the JSON"},
		{"too large", token, ans(token, act(ActionTokenProvideClaims, `"claims": {}`)) + strings.Repeat(" ", MaxResponseSize), nil, "more than 65536"},
		{"types in any case", start, `{"data": {"@odata.Type": "Microsoft.Graph.OnAttributeCollectionStartResponseData", "actions": [{"@ODATA.type": "microsoft.graph.attributeCollectionStart.ContinueWithDefaultBehavior"}]}}`,
			AttributeStartDecision{}, ""},
		{"unknown members ignored", start, `{"apiSchemaVersion": "1.0", "data": {"@odata.type": "microsoft.graph.onAttributeCollectionStartResponseData", "actions": [{"@odata.type": "` + ActionStartContinue + `", "note": 1}]}}`,
			AttributeStartDecision{}, ""},

		// OnAttributeCollectionStart.
		{"start: continue", start, ans(start, act(ActionStartContinue, "")), AttributeStartDecision{}, ""},
		{"start: prefill (Entra's types)", start, ans(start, act(ActionStartSetPrefillValues,
			`"inputs": {"given_name": " Ann ", "newsletter": true, "age": 42, "height": "1.80", "loyalty_id": ""}`)),
			AttributeStartDecision{Prefill: map[string]string{"given_name": "Ann", "newsletter": "true", "age": "42", "height": "1.80"}}, ""},
		{"start: empty prefill", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {}`)), AttributeStartDecision{}, ""},
		{"start: attribute not collected", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"city": "Leeds"}`)), nil, `attribute "city" is not collected`},
		{"start: email", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"email": "x@example.com"}`)), nil, "cannot set it"},
		{"start: pattern", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"loyalty_id": "123"}`)), nil, "fails the flow's checks (pattern_mismatch)"},
		{"start: not a date", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"birthday": "03/02/1990"}`)), nil, "date_invalid"},
		{"start: too long", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"given_name": "`+strings.Repeat("a", 513)+`"}`)), nil, "fails the flow's checks"},
		{"start: boolean for a string", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"given_name": true}`)), nil, "is a JSON string"},
		{"start: number for a boolean", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"newsletter": 1}`)), nil, "JSON boolean or string"},
		{"start: null", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"given_name": null}`)), nil, "is a JSON string"},
		{"start: object", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": {"age": {"v": 1}}`)), nil, "JSON number or string"},
		{"start: inputs not an object", start, ans(start, act(ActionStartSetPrefillValues, `"inputs": ["a"]`)), nil, "setPrefillValues"},
		{"start: block (Entra's example)", start, ans(start, act(ActionStartShowBlockPage,
			`"title": "Hold tight...", "message": "Your access request is already processing."`)),
			AttributeStartDecision{Block: &Block{Title: "Hold tight...", Message: "Your access request is already processing."}}, ""},
		{"start: block message too long", start, ans(start, act(ActionStartShowBlockPage, `"message": "`+long+`"`)), nil, "1025 characters, more than 1024"},
		{"start: block control character", start, ans(start, act(ActionStartShowBlockPage, `"message": "a\u0007b"`)), nil, "control characters"},
		{"start: block message not text", start, ans(start, act(ActionStartShowBlockPage, `"message": 7`)), nil, "showBlockPage"},

		// OnAttributeCollectionSubmit.
		{"submit: continue", submit, ans(submit, act(ActionSubmitContinue, "")), SubmitDecision{}, ""},
		{"submit: modify", submit, ans(submit, act(ActionSubmitModifyAttributeValues, `"attributes": {"given_name": "Anne", "newsletter": false, "loyalty_id": ""}`)),
			SubmitDecision{Modify: map[string]string{"given_name": "Anne", "newsletter": "false", "loyalty_id": ""}}, ""},
		{"submit: modify clears a required attribute", submit, ans(submit, act(ActionSubmitModifyAttributeValues, `"attributes": {"given_name": ""}`)), nil, "(required)"},
		{"submit: modify an attribute not collected", submit, ans(submit, act(ActionSubmitModifyAttributeValues, `"attributes": {"role": "admin"}`)), nil, `"role" is not collected`},
		{"submit: modify the email", submit, ans(submit, act(ActionSubmitModifyAttributeValues, `"attributes": {"email": "eve@example.com"}`)), nil, "cannot set it"},
		{"submit: modify to a non-number", submit, ans(submit, act(ActionSubmitModifyAttributeValues, `"attributes": {"age": "old"}`)), nil, "number_invalid"},
		{"submit: validation error (Entra's example)", submit, ans(submit, act(ActionSubmitShowValidationError,
			`"message": "Please fix the below errors to proceed.", "attributeErrors": {"loyalty_id": "Unknown loyalty number", "email": "Use your work address"}`)),
			SubmitDecision{Message: "Please fix the below errors to proceed.", FieldErrors: map[string]string{"loyalty_id": "Unknown loyalty number", "email": "Use your work address"}}, ""},
		{"submit: validation message only", submit, ans(submit, act("microsoft.graph.attributeCollectionSubmit.ShowValidationError", `"message": "No."`)),
			SubmitDecision{Message: "No."}, ""},
		{"submit: validation error says nothing", submit, ans(submit, act(ActionSubmitShowValidationError, `"message": " "`)), nil, "neither a message nor attribute errors"},
		{"submit: validation error for an attribute not collected", submit, ans(submit, act(ActionSubmitShowValidationError, `"attributeErrors": {"city": "no"}`)), nil, `"city", which the sign-up flow does not collect`},
		{"submit: empty field message", submit, ans(submit, act(ActionSubmitShowValidationError, `"attributeErrors": {"age": ""}`)), nil, "empty validation message"},
		{"submit: attribute errors as a list", submit, ans(submit, act(ActionSubmitShowValidationError, `"attributeErrors": [{"attribute": "age", "message": "no"}]`)), nil, "showValidationError"},
		{"submit: block", submit, ans(submit, act(ActionSubmitShowBlockPage, `"message": "Sign-ups are closed."`)),
			SubmitDecision{Block: &Block{Message: "Sign-ups are closed."}}, ""},

		// OnTokenIssuanceStart.
		{"token: claims (Entra's example)", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"DateOfBirth": "01/01/2000", "CustomRoles": ["Writer", "Editor"]}`)),
			TokenDecision{Claims: map[string]any{"DateOfBirth": "01/01/2000", "CustomRoles": []string{"Writer", "Editor"}}}, ""},
		{"token: booleans and numbers", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"premium": true, "tier": 3, "roles": []}`)),
			TokenDecision{Claims: map[string]any{"premium": true, "tier": 3.0, "roles": []string{}}}, ""},
		{"token: no claims", token, ans(token, act(ActionTokenProvideClaims, `"claims": {}`)), TokenDecision{Claims: map[string]any{}}, ""},
		{"token: claims missing", token, ans(token, act(ActionTokenProvideClaims, "")), nil, `without "claims"`},
		{"token: claims null", token, ans(token, act(ActionTokenProvideClaims, `"claims": null`)), nil, `without "claims"`},
		{"token: sub", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"tier": "gold", "sub": "admin"}`)), nil, `claim "sub" is set by Postern`},
		{"token: SUB", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"SUB": "admin"}`)), nil, `claim "SUB" is set by Postern`},
		{"token: aud", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"aud": ["other-app"]}`)), nil, `claim "aud"`},
		{"token: email_verified", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"email_verified": true}`)), nil, `claim "email_verified"`},
		{"token: reserved prefix", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"Postern_tier": "x"}`)), nil, `claim "Postern_tier"`},
		{"token: empty name", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"": "x"}`)), nil, "empty, too long or not printable"},
		{"token: object", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"address": {"city": "Leeds"}}`)), nil, "a claim is a string"},
		{"token: null", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"x": null}`)), nil, "a claim is a string"},
		{"token: mixed array", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"x": ["a", 1]}`)), nil, "a claim is a string"},
		{"token: over 3 KiB", token, ans(token, act(ActionTokenProvideClaims, `"claims": {"big": "`+strings.Repeat("x", MaxClaimsSize)+`"}`)), nil, "bytes of claims, more than 3072"},

		// OnOtpSend.
		{"otp: delivered (Entra's answer)", otp, `{"data": {"@odata.type": "microsoft.graph.OnOtpSendResponseData", "actions": [{"@odata.type": "microsoft.graph.OtpSend.continueWithDefaultBehavior"}]}}`,
			OtpDecision{Delivered: true}, ""},
		{"otp: delivered, lower case", otp, `{"data": {"@odata.type": "microsoft.graph.onOtpSendResponseData", "actions": [{"@odata.type": "microsoft.graph.otpSend.continueWithDefaultBehavior"}]}}`,
			OtpDecision{Delivered: true}, ""},
		{"otp: Postern delivers", otp, ans(otp, act(ActionOtpUseDefaultProvider, "")), OtpDecision{}, ""},
		{"otp: unknown", otp, ans(otp, act("microsoft.graph.OtpSend.sendLater", "")), nil, "unknown action"},

		// OnProxyRequest.
		{"proxy: allow", proxy, ans(proxy, act(ActionProxyAllow, "")), ProxyDecision{}, ""},
		{"proxy: deny", proxy, ans(proxy, act(ActionProxyDeny, `"status": 451, "message": "Not in your country"`)),
			ProxyDecision{Deny: &Deny{Status: 451, Message: "Not in your country"}}, ""},
		{"proxy: deny by default 403", proxy, ans(proxy, act(ActionProxyDeny, "")), ProxyDecision{Deny: &Deny{Status: 403}}, ""},
		{"proxy: deny with a redirect", proxy, ans(proxy, act(ActionProxyDeny, `"status": 302`)), nil, "not 400–499"},
		{"proxy: deny with 500", proxy, ans(proxy, act(ActionProxyDeny, `"status": 500`)), nil, "not 400–499"},
		{"proxy: deny status as text", proxy, ans(proxy, act(ActionProxyDeny, `"status": "403"`)), nil, "deny"},
		{"proxy: headers", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"x-tenant-tier": "gold", "X-Request-Tag": "a\tb"}`)),
			ProxyDecision{Headers: map[string]string{"X-Tenant-Tier": "gold", "X-Request-Tag": "a\tb"}}, ""},
		{"proxy: no headers", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {}`)), ProxyDecision{}, ""},
		{"proxy: identity header", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"X-Forwarded-User": "admin"}`)), nil, `"X-Forwarded-User" is set by Postern`},
		{"proxy: identity header with underscores", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"x_forwarded_email": "a@b"}`)), nil, `"X-Forwarded-Email" is set by Postern`},
		{"proxy: assertion", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"X-Postern-Assertion": "x"}`)), nil, "is set by Postern"},
		{"proxy: host", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"host": "evil"}`)), nil, `"Host" is set by Postern`},
		{"proxy: cookie", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"Cookie": "a=b"}`)), nil, `"Cookie"`},
		{"proxy: authorization", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"Authorization": "Bearer x"}`)), nil, `"Authorization"`},
		{"proxy: transfer-encoding", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"Transfer-Encoding": "chunked"}`)), nil, `"Transfer-Encoding"`},
		{"proxy: header injection", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"X-A": "a\r\nX-Forwarded-User: admin"}`)), nil, "control characters"},
		{"proxy: bad header name", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"X A": "a"}`)), nil, "not a valid field name"},
		{"proxy: too many headers", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {`+strings.Join(manyHeaders, ",")+`}`)), nil, "33 headers"},
		{"proxy: headers too large", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"X-Big": "`+strings.Repeat("v", 9000)+`"}`)), nil, "bytes of headers"},
		{"proxy: header value not text", proxy, ans(proxy, act(ActionProxyAddUpstreamHeaders, `"headers": {"X-N": 1}`)), nil, "addUpstreamHeaders"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAnswer(tc.ev, tc.body)
			if tc.wantErr != "" {
				var ce *ContractError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ce) || ce.Event != tc.ev {
					t.Fatalf("err = %v, want a %s *ContractError containing %q", err, tc.ev, tc.wantErr)
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

func TestProtectedClaim(t *testing.T) {
	for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "nonce", "auth_time", "at_hash", "azp",
		"scope", "client_id", "cnf", "acr", "amr", "Email", "postern", "posternTier", "POSTERN_X"} {
		if !ProtectedClaim(name) {
			t.Errorf("%q is not protected", name)
		}
	}
	for _, name := range []string{"tier", "roles", "groups", "given_name", "loyalty_id", "DateOfBirth", "post"} {
		if ProtectedClaim(name) {
			t.Errorf("%q is protected", name)
		}
	}
}
