package flows

import (
	"encoding/json"
	"maps"
	"math"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"postern.dev/postern/directory"
)

// Block is a page that ends the journey: the extension's title and message, shown in the tenant's
// branding (HTML-escaped, as any text). Extension is the id of the extension that blocked, for the audit
// and the log.
type Block struct {
	Title     string
	Message   string
	Extension string
}

// AttributeStartDecision is what OnAttributeCollectionStart decided: values to prefill the sign-up form
// with (attribute name → the value as the form carries it), or a block page instead of the form.
type AttributeStartDecision struct {
	Prefill map[string]string
	Block   *Block
}

// SubmitDecision is what OnAttributeCollectionSubmit decided. Modify replaces submitted values (attribute
// name → the value as the form carries it); the caller merges it into the submission and validates the
// result again. FieldErrors (attribute name or "email" → the extension's message, shown as is) and Message
// send the form back; Block ends the sign-up.
type SubmitDecision struct {
	Modify      map[string]string
	FieldErrors map[string]string
	Message     string
	Block       *Block
}

// OK reports whether the sign-up goes on: nothing blocked it and nothing sent the form back.
func (d SubmitDecision) OK() bool {
	return d.Block == nil && len(d.FieldErrors) == 0 && d.Message == ""
}

// TokenDecision is what OnTokenIssuanceStart decided: claims to add to the ID and access tokens. Values
// are string, []string, bool or float64.
type TokenDecision struct {
	Claims map[string]any
}

// OtpDecision is what OnOtpSend decided: whether an extension delivered the code (Extension names it), or
// Postern must mail it itself.
type OtpDecision struct {
	Delivered bool
	Extension string
}

// ProxyDecision is what OnProxyRequest decided: a denial, or headers to add to the upstream request
// (canonical name → value). An extension only narrows Postern's own route rules: it is asked only about
// requests those rules let through, and cannot let through one they refused.
type ProxyDecision struct {
	Deny    *Deny
	Headers map[string]string
}

// Deny is an extension's refusal of a proxied request: the status (400–499) and a message for the page.
type Deny struct {
	Status    int
	Message   string
	Extension string
}

// answer is the envelope of every event's answer.
type answer struct {
	Data *struct {
		ODataType string            `json:"@odata.type"`
		Actions   []json.RawMessage `json:"actions"`
	} `json:"data"`
}

// action checks the envelope of an answer to ev (its size, data's @odata.type, exactly one known action)
// and returns the action's type, in the spelling of the constants, and its JSON.
func action(ev Event, body []byte) (string, json.RawMessage, error) {
	if len(body) > MaxResponseSize {
		return "", nil, malformed(ev, "the answer is %d bytes, more than %d", len(body), MaxResponseSize)
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return "", nil, malformed(ev, "not the JSON of an answer: %v", err)
	}
	if a.Data == nil {
		return "", nil, malformed(ev, `no "data" object`)
	}
	ct := contracts[ev]
	if !strings.EqualFold(a.Data.ODataType, ct.responseData) {
		return "", nil, malformed(ev, "data @odata.type is %q, want %q", shorten(a.Data.ODataType), ct.responseData)
	}
	if len(a.Data.Actions) != 1 {
		return "", nil, malformed(ev, "%d actions, want exactly one", len(a.Data.Actions))
	}
	raw := a.Data.Actions[0]
	var head struct {
		ODataType string `json:"@odata.type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", nil, malformed(ev, "the action is not an object: %v", err)
	}
	for _, name := range ct.actions {
		if strings.EqualFold(head.ODataType, name) {
			return name, raw, nil
		}
	}
	return "", nil, malformed(ev, "unknown action %q; %s accepts %s", shorten(head.ODataType), ev, strings.Join(ct.actions, ", "))
}

// decodeAction decodes an action's members into v, naming the action in the error.
func decodeAction(ev Event, name string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return malformed(ev, "%s: %v", name, err)
	}
	return nil
}

// ParseAttributeCollectionStart reads an OnAttributeCollectionStart answer. flow is the sign-up flow the
// request described: prefilled attributes must be ones it collects, and each value must pass the checks
// the person's own input would (type, pattern, length); an empty value prefills nothing.
func ParseAttributeCollectionStart(body []byte, flow directory.SignUp) (AttributeStartDecision, error) {
	const ev = EventAttributeCollectionStart
	name, raw, err := action(ev, body)
	if err != nil {
		return AttributeStartDecision{}, err
	}
	switch name {
	case ActionStartSetPrefillValues:
		var a struct {
			Inputs map[string]json.RawMessage `json:"inputs"`
		}
		if err := decodeAction(ev, name, raw, &a); err != nil {
			return AttributeStartDecision{}, err
		}
		prefill, err := attributeValues(ev, flow, a.Inputs, true)
		return AttributeStartDecision{Prefill: prefill}, err
	case ActionStartShowBlockPage:
		b, err := blockPage(ev, name, raw)
		return AttributeStartDecision{Block: b}, err
	}
	return AttributeStartDecision{}, nil
}

// ParseAttributeCollectionSubmit reads an OnAttributeCollectionSubmit answer. flow is the sign-up flow the
// request described: modified attributes must be ones it collects, with values that pass the checks the
// person's own input would; validation errors must name its attributes or "email".
func ParseAttributeCollectionSubmit(body []byte, flow directory.SignUp) (SubmitDecision, error) {
	const ev = EventAttributeCollectionSubmit
	name, raw, err := action(ev, body)
	if err != nil {
		return SubmitDecision{}, err
	}
	switch name {
	case ActionSubmitModifyAttributeValues:
		var a struct {
			Attributes map[string]json.RawMessage `json:"attributes"`
		}
		if err := decodeAction(ev, name, raw, &a); err != nil {
			return SubmitDecision{}, err
		}
		modify, err := attributeValues(ev, flow, a.Attributes, false)
		return SubmitDecision{Modify: modify}, err
	case ActionSubmitShowValidationError:
		var a struct {
			Message         string            `json:"message"`
			AttributeErrors map[string]string `json:"attributeErrors"`
		}
		if err := decodeAction(ev, name, raw, &a); err != nil {
			return SubmitDecision{}, err
		}
		var d SubmitDecision
		if d.Message, err = pageText(ev, "message", a.Message, maxMessageLength); err != nil {
			return SubmitDecision{}, err
		}
		for _, attr := range slices.Sorted(maps.Keys(a.AttributeErrors)) {
			if attr != "email" && !collects(flow, attr) {
				return SubmitDecision{}, malformed(ev, "a validation error for %q, which the sign-up flow does not collect", shorten(attr))
			}
			msg, err := pageText(ev, "the message for "+attr, a.AttributeErrors[attr], maxMessageLength)
			if err != nil {
				return SubmitDecision{}, err
			}
			if msg == "" {
				return SubmitDecision{}, malformed(ev, "an empty validation message for %q", attr)
			}
			if d.FieldErrors == nil {
				d.FieldErrors = map[string]string{}
			}
			d.FieldErrors[attr] = msg
		}
		if d.OK() {
			return SubmitDecision{}, malformed(ev, "%s with neither a message nor attribute errors", name)
		}
		return d, nil
	case ActionSubmitShowBlockPage:
		b, err := blockPage(ev, name, raw)
		return SubmitDecision{Block: b}, err
	}
	return SubmitDecision{}, nil
}

// protectedClaims are the claims an extension may not provide: those of the JWT itself and of the
// protocols (RFC 7519, OpenID Connect Core, RFC 9068, RFC 8693, RFC 7800), and those by which Postern vouches
// for the person's identity (a verified email). Names are compared lower-cased, so that a consumer that
// folds case cannot be fooled either. Any name starting with "postern" is reserved as well.
var protectedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"nonce": true, "auth_time": true, "acr": true, "amr": true, "azp": true, "sid": true,
	"at_hash": true, "c_hash": true, "s_hash": true,
	"scope": true, "scp": true, "client_id": true, "cnf": true, "act": true, "may_act": true,
	"email": true, "email_verified": true, "phone_number_verified": true,
}

// ParseTokenIssuanceStart reads an OnTokenIssuanceStart answer. Claims are strings and arrays of strings
// (what Entra supports), booleans and finite numbers; objects, nested arrays and null are refused, as is a
// protected claim (see [ProtectedClaim]) and more than [MaxClaimsSize] of claims.
//
// # Notes
//
// A protected claim refuses the whole answer rather than being dropped: an extension that tries to set
// sub or aud is broken or hostile, and its author should hear of it. Under on_error "continue" the effect
// is that none of that extension's claims are added.
func ParseTokenIssuanceStart(body []byte) (TokenDecision, error) {
	const ev = EventTokenIssuanceStart
	name, raw, err := action(ev, body)
	if err != nil {
		return TokenDecision{}, err
	}
	var a struct {
		Claims map[string]json.RawMessage `json:"claims"`
	}
	if err := decodeAction(ev, name, raw, &a); err != nil {
		return TokenDecision{}, err
	}
	if a.Claims == nil {
		return TokenDecision{}, malformed(ev, `%s without "claims"`, name)
	}
	d := TokenDecision{Claims: make(map[string]any, len(a.Claims))}
	for _, k := range slices.Sorted(maps.Keys(a.Claims)) {
		if k == "" || len(k) > maxClaimName || !utf8.ValidString(k) || strings.ContainsFunc(k, control) {
			return TokenDecision{}, malformed(ev, "claim name %q is empty, too long or not printable", shorten(k))
		}
		if ProtectedClaim(k) {
			return TokenDecision{}, malformed(ev, "claim %q is set by Postern and cannot be provided", shorten(k))
		}
		v, err := claimValue(a.Claims[k])
		if err != nil {
			return TokenDecision{}, malformed(ev, "claim %q: %v", shorten(k), err)
		}
		d.Claims[k] = v
	}
	if n := ClaimsSize(d.Claims); n > MaxClaimsSize {
		return TokenDecision{}, malformed(ev, "%d bytes of claims, more than %d", n, MaxClaimsSize)
	}
	return d, nil
}

// ProtectedClaim reports whether an extension may not provide the claim name: one Postern sets (iss, sub,
// aud, exp, nonce, email_verified, …) or one under the reserved "postern" prefix, in any case.
func ProtectedClaim(name string) bool {
	l := strings.ToLower(name)
	return protectedClaims[l] || strings.HasPrefix(l, "postern")
}

// ClaimsSize is the size [MaxClaimsSize] bounds: the claim names plus their JSON values, in bytes.
func ClaimsSize(claims map[string]any) int {
	n := 0
	for k, v := range claims {
		b, _ := json.Marshal(v) // claim values are always JSON
		n += len(k) + len(b)
	}
	return n
}

func claimValue(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, errNotClaim
		}
		return x, nil
	case []any:
		s := make([]string, len(x))
		for i, e := range x {
			str, ok := e.(string)
			if !ok {
				return nil, errNotClaim
			}
			s[i] = str
		}
		return s, nil
	}
	return nil, errNotClaim
}

// reason is a plain error text, for the reasons of a [ContractError].
type reason string

func (e reason) Error() string { return string(e) }

const errNotClaim = reason("a claim is a string, an array of strings, a boolean or a number")

// ParseOtpSend reads an OnOtpSend answer: Entra's continueWithDefaultBehavior means the extension
// delivered the code (it is the custom email provider), Postern's useDefaultProvider that Postern must
// mail it.
func ParseOtpSend(body []byte) (OtpDecision, error) {
	name, _, err := action(EventOtpSend, body)
	if err != nil {
		return OtpDecision{}, err
	}
	return OtpDecision{Delivered: name == ActionOtpContinue}, nil
}

// ParseProxyRequest reads an OnProxyRequest answer. A denial's status is 400–499 (403 when left out); an
// added header must be a valid field that is not hop-by-hop, framing, a credential, or one Postern sets
// itself (Host, Cookie, Authorization, Forwarded, X-Forwarded-*, X-Real-Ip, X-Postern-*).
func ParseProxyRequest(body []byte) (ProxyDecision, error) {
	const ev = EventProxyRequest
	name, raw, err := action(ev, body)
	if err != nil {
		return ProxyDecision{}, err
	}
	switch name {
	case ActionProxyDeny:
		var a struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		}
		if err := decodeAction(ev, name, raw, &a); err != nil {
			return ProxyDecision{}, err
		}
		if a.Status == 0 {
			a.Status = 403
		}
		if a.Status < 400 || a.Status > 499 {
			return ProxyDecision{}, malformed(ev, "deny status %d is not 400–499", a.Status)
		}
		msg, err := pageText(ev, "message", a.Message, maxMessageLength)
		if err != nil {
			return ProxyDecision{}, err
		}
		return ProxyDecision{Deny: &Deny{Status: a.Status, Message: msg}}, nil
	case ActionProxyAddUpstreamHeaders:
		var a struct {
			Headers map[string]string `json:"headers"`
		}
		if err := decodeAction(ev, name, raw, &a); err != nil {
			return ProxyDecision{}, err
		}
		var d ProxyDecision
		for _, k := range slices.Sorted(maps.Keys(a.Headers)) {
			if err := upstreamHeader(k, a.Headers[k]); err != nil {
				return ProxyDecision{}, malformed(ev, "%v", err)
			}
			if d.Headers == nil {
				d.Headers = map[string]string{}
			}
			d.Headers[textproto.CanonicalMIMEHeaderKey(k)] = a.Headers[k]
		}
		if err := upstreamHeadersSize(d.Headers); err != nil {
			return ProxyDecision{}, malformed(ev, "%v", err)
		}
		return d, nil
	}
	return ProxyDecision{}, nil
}

// reservedUpstreamHeaders may not be added by an extension (canonical names); nor may any name under the
// prefixes X-Forwarded- and X-Postern-.
var reservedUpstreamHeaders = map[string]bool{
	// hop-by-hop (RFC 9110 section 7.6.1) and framing
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true, "Content-Type": true,
	"Content-Encoding": true, "Expect": true,
	// credentials and what Postern states about the client
	"Authorization": true, "Proxy-Authorization": true, "Proxy-Authenticate": true, "Cookie": true,
	"Forwarded": true, "X-Real-Ip": true,
}

func upstreamHeader(name, value string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return !tokenChar(r) }) {
		return reason("header name " + strconv.Quote(shorten(name)) + " is not a valid field name")
	}
	// Underscores are read as dashes: servers and frameworks behind the proxy may fold one into the other.
	c := textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(name, "_", "-"))
	if reservedUpstreamHeaders[c] || strings.HasPrefix(c, "X-Forwarded-") || strings.HasPrefix(c, "X-Postern-") {
		return reason("header " + strconv.Quote(c) + " is set by Postern or the transport and cannot be added")
	}
	if strings.ContainsFunc(value, func(r rune) bool { return r != '\t' && control(r) }) || !utf8.ValidString(value) {
		return reason("the value of header " + strconv.Quote(c) + " has control characters")
	}
	return nil
}

func upstreamHeadersSize(h map[string]string) error {
	if len(h) > maxUpstreamHeaders {
		return reason(strconv.Itoa(len(h)) + " headers, more than " + strconv.Itoa(maxUpstreamHeaders))
	}
	n := 0
	for k, v := range h {
		n += len(k) + len(v)
	}
	if n > maxUpstreamHeaderBytes {
		return reason(strconv.Itoa(n) + " bytes of headers, more than " + strconv.Itoa(maxUpstreamHeaderBytes))
	}
	return nil
}

// tokenChar reports whether r may appear in a field name (RFC 9110 section 5.6.2, tchar).
func tokenChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

func control(r rune) bool { return r < 0x20 || r == 0x7f }

// blockPage reads a showBlockPage action: an optional title and a message.
func blockPage(ev Event, name string, raw json.RawMessage) (*Block, error) {
	var a struct {
		Title   string `json:"title"`
		Message string `json:"message"`
	}
	if err := decodeAction(ev, name, raw, &a); err != nil {
		return nil, err
	}
	title, err := pageText(ev, "title", a.Title, maxTitleLength)
	if err != nil {
		return nil, err
	}
	msg, err := pageText(ev, "message", a.Message, maxMessageLength)
	if err != nil {
		return nil, err
	}
	return &Block{Title: title, Message: msg}, nil
}

// pageText checks a text an extension wants shown on a page: bounded, and no control characters but
// line feeds.
func pageText(ev Event, what, s string, limit int) (string, error) {
	if n := utf8.RuneCountInString(s); n > limit {
		return "", malformed(ev, "the %s is %d characters, more than %d", what, n, limit)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && control(r) }) {
		return "", malformed(ev, "the %s has control characters", what)
	}
	return strings.TrimSpace(s), nil
}

func collects(flow directory.SignUp, name string) bool {
	_, ok := attributeDef(flow, name)
	return ok
}

func attributeDef(flow directory.SignUp, name string) (directory.AttributeDef, bool) {
	for _, d := range flow.Attributes {
		if d.Name == name {
			return d, true
		}
	}
	return directory.AttributeDef{}, false
}

// attributeValues reads prefilled or modified values: each names an attribute the flow collects, and is
// a string, or a boolean or number for an attribute of that type (Entra answers in the request's types).
// Each value passes the checks of [ValidateSignUp]; a boolean becomes "true" or "false". For a prefill an
// empty value is dropped; for a modification it clears an optional attribute.
func attributeValues(ev Event, flow directory.SignUp, in map[string]json.RawMessage, prefill bool) (map[string]string, error) {
	var out map[string]string
	for _, name := range slices.Sorted(maps.Keys(in)) {
		if name == "email" {
			return nil, malformed(ev, "the email is the address being verified: an extension cannot set it")
		}
		def, ok := attributeDef(flow, name)
		if !ok {
			return nil, malformed(ev, "attribute %q is not collected by the sign-up flow", shorten(name))
		}
		v, err := attributeText(def, in[name])
		if err != nil {
			return nil, malformed(ev, "attribute %q: %v", name, err)
		}
		if v == "" && prefill {
			continue
		}
		r := ValidateSignUp(directory.SignUp{Attributes: []directory.AttributeDef{def}},
			SignUpInput{Email: "extension@example.com", Attributes: map[string]string{name: v}})
		if e := r.Errors[name]; e != "" {
			return nil, malformed(ev, "attribute %q: the value fails the flow's checks (%s)", name, e)
		}
		if def.Type == "boolean" {
			v = strconv.FormatBool(v == "true" || v == "on" || v == "1")
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out, nil
}

func attributeText(def directory.AttributeDef, raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x), nil
	case bool:
		if def.Type == "boolean" {
			return strconv.FormatBool(x), nil
		}
	case float64:
		if def.Type == "number" {
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
	}
	switch def.Type {
	case "boolean":
		return "", reason("the value of a boolean attribute is a JSON boolean or string")
	case "number":
		return "", reason("the value of a number attribute is a JSON number or string")
	}
	return "", reason("the value is a JSON string")
}
