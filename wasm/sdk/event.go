package sdk

import (
	"encoding/json"
	"fmt"
)

// Postern's event names, as the manifest lists them in extensions[].events.
const (
	OnAttributeCollectionStart  = "OnAttributeCollectionStart"
	OnAttributeCollectionSubmit = "OnAttributeCollectionSubmit"
	OnTokenIssuanceStart        = "OnTokenIssuanceStart"
	OnOtpSend                   = "OnOtpSend"
)

// Request is one event as the host sends it: Entra's envelope of type, source and data.
type Request struct {
	// Type is the event's type, e.g. "microsoft.graph.authenticationEvent.tokenIssuanceStart".
	Type string `json:"type"`
	// Source names the tenant and app the event comes from.
	Source string `json:"source"`
	// Data is the event's payload (authenticationContext, userSignUpInfo, otpContext, …). It shares
	// its bytes with Raw.
	Data json.RawMessage `json:"data"`

	raw []byte
}

// Raw is the whole request JSON as the host sent it.
func (r Request) Raw() []byte { return r.raw }

// Decode unmarshals the event's data into v.
func (r Request) Decode(v any) error { return json.Unmarshal(r.Data, v) }

// String returns the string at path inside Data (each element an object key), and whether it was
// there. Numbers and booleans are returned in their JSON text; null, objects and arrays are not found.
// As with encoding/json, a key that appears twice in an object means its last value.
//
//	email, _ := req.String("otpContext", "identifier")
func (r Request) String(path ...string) (string, bool) {
	if len(path) == 0 {
		return jsonText(r.Data)
	}
	v, ok := lookup(r.Data, path)
	if !ok {
		return "", false
	}
	return valueText(v)
}

// Attribute returns a submitted sign-up attribute's value, from
// data.userSignUpInfo.attributes.<name>.value (Entra's shape), or from a bare
// data.userSignUpInfo.attributes.<name> value.
func (r Request) Attribute(name string) (string, bool) {
	if v, ok := r.String("userSignUpInfo", "attributes", name, "value"); ok {
		return v, true
	}
	return r.String("userSignUpInfo", "attributes", name)
}

// Response is what a handler answers: Entra's {"data": {"@odata.type": …, "actions": […]}}.
type Response struct {
	Data ResponseData `json:"data"`
}

// ResponseData carries the response's type and its actions.
type ResponseData struct {
	ODataType string   `json:"@odata.type"`
	Actions   []Action `json:"actions"`
}

// Action is one action of a response: its "@odata.type" and the action's own fields.
type Action map[string]any

// NewAction makes an action of the given "@odata.type" with fields (which may be nil).
func NewAction(odataType string, fields map[string]any) Action {
	a := Action{"@odata.type": odataType}
	for k, v := range fields {
		if k != "@odata.type" {
			a[k] = v
		}
	}
	return a
}

// eventShape is the response data type and the action prefix of each event, after Entra's naming.
var eventShape = map[string]struct{ data, action string }{
	OnAttributeCollectionStart:  {"microsoft.graph.onAttributeCollectionStartResponseData", "microsoft.graph.attributeCollectionStart."},
	OnAttributeCollectionSubmit: {"microsoft.graph.onAttributeCollectionSubmitResponseData", "microsoft.graph.attributeCollectionSubmit."},
	OnTokenIssuanceStart:        {"microsoft.graph.onTokenIssuanceStartResponseData", "microsoft.graph.tokenIssuanceStart."},
	OnOtpSend:                   {"microsoft.graph.OnOtpSendResponseData", "microsoft.graph.OtpSend."},
}

// Respond builds a response to event (one of the On… constants) with actions named without their
// prefix: Respond(OnAttributeCollectionSubmit, "showBlockPage", map[string]any{"message": "…"}).
// It panics on an unknown event name: that is a bug in the extension, caught by its first test.
func Respond(event, action string, fields map[string]any) Response {
	shape := shapeOf(event)
	return Response{Data: ResponseData{
		ODataType: shape.data,
		Actions:   []Action{NewAction(shape.action+action, fields)},
	}}
}

func shapeOf(event string) struct{ data, action string } {
	shape, ok := eventShape[event]
	if !ok {
		panic(fmt.Sprintf("sdk: unknown event %q", event))
	}
	return shape
}

// respond is Respond for the SDK's own actions, whose fields it makes into the action itself rather
// than copying them (a map less per call).
func respond(event, action string, a Action) Response {
	shape := shapeOf(event)
	a["@odata.type"] = shape.action + action
	return Response{Data: ResponseData{ODataType: shape.data, Actions: []Action{a}}}
}

// ContinueWithDefaultBehavior lets the journey go on unchanged (every event but OnTokenIssuanceStart).
func ContinueWithDefaultBehavior(event string) Response {
	return respond(event, "continueWithDefaultBehavior", Action{})
}

// ShowBlockPage stops sign-up with message (OnAttributeCollectionStart or OnAttributeCollectionSubmit).
func ShowBlockPage(event, message string) Response {
	return respond(event, "showBlockPage", Action{"message": message})
}

// ShowValidationError sends the person back to the sign-up form with message above it and, for each
// attribute named in attributeErrors, that attribute's own message (OnAttributeCollectionSubmit).
func ShowValidationError(message string, attributeErrors map[string]string) Response {
	if attributeErrors == nil {
		attributeErrors = map[string]string{}
	}
	return respond(OnAttributeCollectionSubmit, "showValidationError",
		Action{"message": message, "attributeErrors": attributeErrors})
}

// ModifyAttributeValues replaces submitted attribute values (OnAttributeCollectionSubmit).
func ModifyAttributeValues(attributes map[string]any) Response {
	return respond(OnAttributeCollectionSubmit, "modifyAttributeValues", Action{"attributes": attributes})
}

// SetPrefillValues fills the sign-up form before it is shown (OnAttributeCollectionStart).
func SetPrefillValues(inputs map[string]any) Response {
	return respond(OnAttributeCollectionStart, "setPrefillValues", Action{"inputs": inputs})
}

// ProvideClaimsForToken adds claims to the tokens being issued (OnTokenIssuanceStart).
func ProvideClaimsForToken(claims map[string]any) Response {
	return respond(OnTokenIssuanceStart, "provideClaimsForToken", Action{"claims": claims})
}
