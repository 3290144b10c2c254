package flows

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"postern.dev/postern/directory"
)

// Event names a point in a journey where a tenant's extensions are called. The names, and the JSON each
// event sends and accepts, are those of Microsoft Entra External ID's custom authentication extensions, so
// that logic written for Entra ports over; OnProxyRequest is Postern's own (Entra has no reverse proxy). A
// directory.Extension subscribes to events by these names.
//
// # Notes
//
// Every answer carries exactly one action, as Entra requires (its error 1003010,
// CustomExtensionInvalidNumberOfActions). @odata.type values are compared without regard to case, because
// Entra's own documentation spells some of them in two ways ("microsoft.graph.OtpSend…",
// "…ShowValidationError"); JSON member names are matched without regard to case too (encoding/json does).
// Unknown members are ignored, unknown actions are refused.
//
// See https://learn.microsoft.com/entra/identity-platform/custom-extension-overview.
type Event string

// The events, in journey order. The names match the manifest's (directory/manifest).
const (
	// EventAttributeCollectionStart is called before the sign-up form is shown: the extension may prefill
	// attributes or block the sign-up.
	EventAttributeCollectionStart Event = "OnAttributeCollectionStart"
	// EventAttributeCollectionSubmit is called once the sign-up form passed Postern's own checks: the
	// extension may correct values, reject some with messages, or block the sign-up.
	EventAttributeCollectionSubmit Event = "OnAttributeCollectionSubmit"
	// EventTokenIssuanceStart is called before tokens are issued to an app: the extension may add claims.
	EventTokenIssuanceStart Event = "OnTokenIssuanceStart"
	// EventOtpSend is called when a one-time passcode must reach the person: the extension may deliver it
	// itself (Entra's custom email provider).
	EventOtpSend Event = "OnOtpSend"
	// EventProxyRequest is called for a request to a proxied app that Postern's own rules let through: the
	// extension may deny it or add headers for the upstream. Postern's own; Entra has no such event.
	EventProxyRequest Event = "OnProxyRequest"
)

// Actions an extension's answer may carry, by @odata.type. Entra's own for its four events; under the
// "postern." prefix, Postern's additions in the same style.
const (
	// ActionStartContinue shows the sign-up form as configured.
	ActionStartContinue = "microsoft.graph.attributeCollectionStart.continueWithDefaultBehavior"
	// ActionStartSetPrefillValues prefills attributes of the form ("inputs": name → value).
	ActionStartSetPrefillValues = "microsoft.graph.attributeCollectionStart.setPrefillValues"
	// ActionStartShowBlockPage ends the sign-up with a page ("title", "message").
	ActionStartShowBlockPage = "microsoft.graph.attributeCollectionStart.showBlockPage"

	// ActionSubmitContinue accepts the submitted attributes.
	ActionSubmitContinue = "microsoft.graph.attributeCollectionSubmit.continueWithDefaultBehavior"
	// ActionSubmitModifyAttributeValues replaces submitted values ("attributes": name → value).
	ActionSubmitModifyAttributeValues = "microsoft.graph.attributeCollectionSubmit.modifyAttributeValues"
	// ActionSubmitShowValidationError shows the form again with messages ("message", "attributeErrors":
	// name → message).
	ActionSubmitShowValidationError = "microsoft.graph.attributeCollectionSubmit.showValidationError"
	// ActionSubmitShowBlockPage ends the sign-up with a page ("title", "message").
	ActionSubmitShowBlockPage = "microsoft.graph.attributeCollectionSubmit.showBlockPage"

	// ActionTokenProvideClaims adds claims to the tokens ("claims": name → string, string array, boolean
	// or number).
	ActionTokenProvideClaims = "microsoft.graph.tokenIssuanceStart.provideClaimsForToken"

	// ActionOtpContinue is Entra's answer of a custom email provider: the extension has delivered the code
	// and the journey goes on. Postern reads it as delivered, as Entra does.
	ActionOtpContinue = "microsoft.graph.OtpSend.continueWithDefaultBehavior"
	// ActionOtpUseDefaultProvider is Postern's addition: the extension did not deliver the code and Postern
	// mails it itself (for an extension that handles only some addresses, say).
	ActionOtpUseDefaultProvider = "postern.otpSend.useDefaultProvider"

	// ActionProxyAllow lets the request through as Postern's own rules decided.
	ActionProxyAllow = "postern.proxyRequest.allow"
	// ActionProxyDeny refuses the request ("status": 400–499, default 403; "message").
	ActionProxyDeny = "postern.proxyRequest.deny"
	// ActionProxyAddUpstreamHeaders lets the request through with headers for the upstream ("headers":
	// name → value).
	ActionProxyAddUpstreamHeaders = "postern.proxyRequest.addUpstreamHeaders"
)

// contract is what one event's JSON says about itself: the request's type and data @odata.type, the
// answer's data @odata.type, and the actions the answer may carry.
type contract struct {
	requestType  string
	calloutData  string
	responseData string
	actions      []string
}

// contracts is the registry of events: one entry per event, nothing registered elsewhere.
var contracts = map[Event]contract{
	EventAttributeCollectionStart: {
		requestType:  "microsoft.graph.authenticationEvent.attributeCollectionStart",
		calloutData:  "microsoft.graph.onAttributeCollectionStartCalloutData",
		responseData: "microsoft.graph.onAttributeCollectionStartResponseData",
		actions:      []string{ActionStartContinue, ActionStartSetPrefillValues, ActionStartShowBlockPage},
	},
	EventAttributeCollectionSubmit: {
		requestType:  "microsoft.graph.authenticationEvent.attributeCollectionSubmit",
		calloutData:  "microsoft.graph.onAttributeCollectionSubmitCalloutData",
		responseData: "microsoft.graph.onAttributeCollectionSubmitResponseData",
		actions: []string{ActionSubmitContinue, ActionSubmitModifyAttributeValues, ActionSubmitShowValidationError,
			ActionSubmitShowBlockPage},
	},
	EventTokenIssuanceStart: {
		requestType:  "microsoft.graph.authenticationEvent.tokenIssuanceStart",
		calloutData:  "microsoft.graph.onTokenIssuanceStartCalloutData",
		responseData: "microsoft.graph.onTokenIssuanceStartResponseData",
		actions:      []string{ActionTokenProvideClaims},
	},
	EventOtpSend: {
		requestType:  "microsoft.graph.authenticationEvent.emailOtpSend",
		calloutData:  "microsoft.graph.onOtpSendCalloutData",
		responseData: "microsoft.graph.OnOtpSendResponseData",
		actions:      []string{ActionOtpContinue, ActionOtpUseDefaultProvider},
	},
	EventProxyRequest: {
		requestType:  "postern.proxyRequest",
		calloutData:  "postern.onProxyRequestCalloutData",
		responseData: "postern.onProxyRequestResponseData",
		actions:      []string{ActionProxyAllow, ActionProxyDeny, ActionProxyAddUpstreamHeaders},
	},
}

// Failure policies of an extension (directory.Extension.OnError); the manifest's values.
const (
	onErrorFail     = "fail"
	onErrorContinue = "continue"
)

// Limits on an extension's answer. Entra documents only the claims limit; the others keep what an answer
// can put on a page, in a token or in an upstream request small.
const (
	// MaxResponseSize bounds an answer's JSON. Transports may cap what they read higher (the HTTP invoker
	// reads at most 1 MiB); anything over this is refused here.
	MaxResponseSize = 64 << 10
	// MaxClaimsSize bounds the extension claims of one token: names plus JSON values, summed over every
	// OnTokenIssuanceStart extension of the journey. Entra's limit for a claims provider (3 KB).
	MaxClaimsSize = 3 << 10
	// maxMessageLength bounds a message shown on a page (block page, validation error, denial), in runes.
	maxMessageLength = 1024
	// maxTitleLength bounds a block page's title, in runes.
	maxTitleLength = 256
	// maxClaimName bounds one claim name, in bytes.
	maxClaimName = 256
	// maxUpstreamHeaders bounds the headers extensions add to one proxied request, and maxUpstreamHeaderBytes
	// their names and values summed.
	maxUpstreamHeaders     = 32
	maxUpstreamHeaderBytes = 8 << 10
)

// ContractError is an extension's answer that breaks its event's contract: not JSON, the wrong
// @odata.type, an unknown action, more than one action, a value out of bounds, an attribute the flow does
// not collect, a protected claim. The runner treats it as that extension's failure, under its on_error
// policy, exactly like a trap or a timeout. Reason is for logs and the extension's author, never for the
// person on the page.
type ContractError struct {
	Event  Event
	Reason string
}

// Error says which event's answer broke the contract, and how.
func (e *ContractError) Error() string {
	return fmt.Sprintf("malformed %s answer: %s", e.Event, e.Reason)
}

func malformed(ev Event, format string, args ...any) error {
	return &ContractError{Event: ev, Reason: fmt.Sprintf(format, args...)}
}

// ExtensionError is an extension that failed (its invoker's error, a timeout, or a [*ContractError])
// under the on_error policy "fail": the journey stops, the caller shows the tenant's branded error page
// with the correlation id, and no token is issued. Err is internal text: for the log line, never for the
// page.
type ExtensionError struct {
	Tenant    string
	Event     Event
	Extension string
	Err       error
}

// Error names the extension, its tenant and the event, then the cause: a log line's text.
func (e *ExtensionError) Error() string {
	return fmt.Sprintf("extension %q of tenant %q at %s: %v", e.Extension, e.Tenant, e.Event, e.Err)
}

// Unwrap gives the cause, so errors.As finds a *ContractError or a context error behind it.
func (e *ExtensionError) Unwrap() error { return e.Err }

// subscribed reports whether ext is called at ev.
func subscribed(ext []string, ev Event) bool { return slices.Contains(ext, string(ev)) }

// Subscribed keeps the extensions called at ev, in order: a journey with none skips the event at no
// cost.
func Subscribed(exts []directory.Extension, ev Event) []directory.Extension {
	var out []directory.Extension
	for _, e := range exts {
		if subscribed(e.Events, ev) {
			out = append(out, e)
		}
	}
	return out
}

// shorten keeps an extension-provided string short enough for an error message.
func shorten(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
