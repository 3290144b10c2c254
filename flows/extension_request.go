package flows

import (
	"encoding/json"
	"fmt"
	"math"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"postern.dev/postern/directory"
)

// EventContext is what every event's request says about the journey it comes from: Entra's
// authenticationContext, filled from Postern's own records.
type EventContext struct {
	// Tenant is the tenant's id: the request's tenantId and the source's /tenants/<id>.
	Tenant string
	// App is the client application of the journey: clientServicePrincipal and resourceServicePrincipal
	// (Postern has no separate resource apps), appId = its client_id.
	App directory.App
	// CorrelationID links the extension's logs, Postern's log line and the error page.
	CorrelationID string
	// ClientIP and Locale describe the person's browser (client.ip, client.locale and client.market).
	ClientIP string
	Locale   string
}

// AttributeCollectionStartInput is what OnAttributeCollectionStart is told: the sign-up flow and whatever is
// known before the form is shown (the email, values from a federated identity).
type AttributeCollectionStartInput struct {
	EventContext
	Flow   directory.SignUp
	SignUp SignUpInput
}

// AttributeCollectionSubmitInput is what OnAttributeCollectionSubmit is told: the sign-up flow and the
// submitted form, as the form carries it (strings), after [ValidateSignUp] accepted it.
type AttributeCollectionSubmitInput struct {
	EventContext
	Flow   directory.SignUp
	SignUp SignUpInput
}

// TokenIssuanceStartInput is what OnTokenIssuanceStart is told: the user tokens are about to be issued
// for, at EventContext.App.
type TokenIssuanceStartInput struct {
	EventContext
	User directory.User
}

// OTP request types (authenticationContext.requestType of OnOtpSend): why the code is sent.
const (
	OtpSignUp        = "signUp"
	OtpSignIn        = "signIn"
	OtpPasswordReset = "passwordReset"
)

// OtpSendInput is what OnOtpSend is told: the address, the code, and why it is sent.
type OtpSendInput struct {
	EventContext
	// RequestType is one of the Otp… constants.
	RequestType string
	Email       string
	Code        string
}

// ProxyRequestInput is what OnProxyRequest is told: the request Postern's own route rules let through,
// and who sent it. EventContext.App is the route's app.
type ProxyRequestInput struct {
	EventContext
	Host   string
	Method string
	// Path is the request's path; a query string is cut off (it may carry secrets).
	Path string
	// Headers are the request headers the caller chose to show. Credentials (Authorization, Cookie,
	// Proxy-Authorization) and Postern's identity headers are never sent, whatever the caller chose.
	Headers map[string]string
	// User is the signed-in person; nil on a public path.
	User *ProxyUser
}

// ProxyUser is the signed-in person of a proxied request, as the session or token tells it (the proxy
// reads no user record).
type ProxyUser struct {
	ID     string
	Email  string
	Groups []string
}

// The wire form of a request, after Entra's. One struct serves every event; a member an event does not
// use is left out of its JSON.
type request struct {
	event  Event
	Type   string      `json:"type"`
	Source string      `json:"source"`
	Data   requestData `json:"data"`
}

type requestData struct {
	ODataType                       string                `json:"@odata.type"`
	TenantID                        string                `json:"tenantId"`
	AuthenticationEventListenerID   string                `json:"authenticationEventListenerId"`
	CustomAuthenticationExtensionID string                `json:"customAuthenticationExtensionId"`
	AuthenticationContext           authenticationContext `json:"authenticationContext"`
	UserSignUpInfo                  *userSignUpInfo       `json:"userSignUpInfo,omitempty"`
	OtpContext                      *otpContext           `json:"otpContext,omitempty"`
	// OnProxyRequest only.
	Host    string            `json:"host,omitempty"`
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	User    *proxyUser        `json:"user,omitempty"`
}

type authenticationContext struct {
	CorrelationID            string           `json:"correlationId"`
	Client                   clientInfo       `json:"client"`
	Protocol                 string           `json:"protocol"`
	RequestType              string           `json:"requestType,omitempty"`
	ClientServicePrincipal   servicePrincipal `json:"clientServicePrincipal"`
	ResourceServicePrincipal servicePrincipal `json:"resourceServicePrincipal"`
	User                     *userInfo        `json:"user,omitempty"`
}

type clientInfo struct {
	IP     string `json:"ip"`
	Locale string `json:"locale"`
	Market string `json:"market"`
}

type servicePrincipal struct {
	ID             string `json:"id"`
	AppID          string `json:"appId"`
	AppDisplayName string `json:"appDisplayName"`
	DisplayName    string `json:"displayName"`
}

type userInfo struct {
	ID                string `json:"id"`
	Mail              string `json:"mail,omitempty"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName,omitempty"`
	GivenName         string `json:"givenName,omitempty"`
	Surname           string `json:"surname,omitempty"`
	PreferredLanguage string `json:"preferredLanguage,omitempty"`
	CreatedDateTime   string `json:"createdDateTime,omitempty"`
	UserType          string `json:"userType"`
}

type userSignUpInfo struct {
	Attributes map[string]attributeValue `json:"attributes"`
	Identities []identity                `json:"identities"`
}

type attributeValue struct {
	ODataType     string `json:"@odata.type"`
	Value         any    `json:"value"`
	AttributeType string `json:"attributeType"`
}

type identity struct {
	SignInType       string `json:"signInType"`
	Issuer           string `json:"issuer"`
	IssuerAssignedID string `json:"issuerAssignedId"`
}

type otpContext struct {
	Identifier  string `json:"identifier"`
	OneTimeCode string `json:"oneTimeCode"`
}

type proxyUser struct {
	ID     string   `json:"id"`
	Email  string   `json:"email,omitempty"`
	Groups []string `json:"groups"`
}

// Attribute value types (@odata.type of userSignUpInfo.attributes members). Entra's three, and Postern's
// for a number attribute whose value is not a whole number (Entra has no such type).
const (
	stringAttribute  = "microsoft.graph.stringDirectoryAttributeValue"
	int64Attribute   = "microsoft.graph.int64DirectoryAttributeValue"
	booleanAttribute = "microsoft.graph.booleanDirectoryAttributeValue"
	doubleAttribute  = "postern.doubleDirectoryAttributeValue"
)

// Request returns the JSON OnAttributeCollectionStart sends to ext.
func (in AttributeCollectionStartInput) Request(ext directory.Extension) ([]byte, error) {
	r, err := in.build()
	if err != nil {
		return nil, err
	}
	return r.encode(ext)
}

func (in AttributeCollectionStartInput) build() (request, error) {
	return signUpRequest(EventAttributeCollectionStart, in.EventContext, in.Flow, in.SignUp, false)
}

// Request returns the JSON OnAttributeCollectionSubmit sends to ext.
func (in AttributeCollectionSubmitInput) Request(ext directory.Extension) ([]byte, error) {
	r, err := in.build()
	if err != nil {
		return nil, err
	}
	return r.encode(ext)
}

func (in AttributeCollectionSubmitInput) build() (request, error) {
	return signUpRequest(EventAttributeCollectionSubmit, in.EventContext, in.Flow, in.SignUp, true)
}

// Request returns the JSON OnTokenIssuanceStart sends to ext.
func (in TokenIssuanceStartInput) Request(ext directory.Extension) ([]byte, error) {
	r, err := in.build()
	if err != nil {
		return nil, err
	}
	return r.encode(ext)
}

func (in TokenIssuanceStartInput) build() (request, error) {
	r := newRequest(EventTokenIssuanceStart, in.EventContext, "OAUTH2.0")
	u := in.User
	upn := u.Username
	if upn == "" {
		upn = u.Email
	}
	info := &userInfo{
		ID: u.ID, Mail: u.Email, UserPrincipalName: upn, DisplayName: u.Profile.Name,
		GivenName: u.Profile.GivenName, Surname: u.Profile.FamilyName, PreferredLanguage: u.Profile.Locale,
		UserType: "Member",
	}
	if !u.CreatedAt.IsZero() {
		info.CreatedDateTime = u.CreatedAt.UTC().Format(time.RFC3339)
	}
	r.Data.AuthenticationContext.User = info
	return r, nil
}

// Request returns the JSON OnOtpSend sends to ext.
func (in OtpSendInput) Request(ext directory.Extension) ([]byte, error) {
	r, err := in.build()
	if err != nil {
		return nil, err
	}
	return r.encode(ext)
}

func (in OtpSendInput) build() (request, error) {
	if in.Email == "" || in.Code == "" {
		return request{}, fmt.Errorf("building the %s request: an address and a code are required", EventOtpSend)
	}
	r := newRequest(EventOtpSend, in.EventContext, "OAUTH2.0")
	r.Data.AuthenticationContext.RequestType = in.RequestType
	r.Data.OtpContext = &otpContext{Identifier: in.Email, OneTimeCode: in.Code}
	return r, nil
}

// Request returns the JSON OnProxyRequest sends to ext.
func (in ProxyRequestInput) Request(ext directory.Extension) ([]byte, error) {
	r, err := in.build()
	if err != nil {
		return nil, err
	}
	return r.encode(ext)
}

func (in ProxyRequestInput) build() (request, error) {
	r := newRequest(EventProxyRequest, in.EventContext, "HTTP")
	r.Data.Host = in.Host
	r.Data.Method = in.Method
	r.Data.Path, _, _ = strings.Cut(in.Path, "?")
	for k, v := range in.Headers {
		k = textproto.CanonicalMIMEHeaderKey(k)
		if hiddenFromExtensions(k) {
			continue
		}
		if r.Data.Headers == nil {
			r.Data.Headers = map[string]string{}
		}
		r.Data.Headers[k] = v
	}
	if u := in.User; u != nil {
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		r.Data.User = &proxyUser{ID: u.ID, Email: u.Email, Groups: groups}
	}
	return r, nil
}

// hiddenFromExtensions reports whether a request header (canonical name) is kept from OnProxyRequest:
// credentials an extension has no business seeing, and Postern's identity headers.
func hiddenFromExtensions(name string) bool {
	switch name {
	case "Authorization", "Proxy-Authorization", "Cookie", "X-Postern-Assertion":
		return true
	}
	return false
}

func newRequest(ev Event, c EventContext, protocol string) request {
	ct := contracts[ev]
	sp := servicePrincipal{ID: c.App.ID, AppID: c.App.ClientID, AppDisplayName: c.App.Name, DisplayName: c.App.Name}
	return request{
		event:  ev,
		Type:   ct.requestType,
		Source: "/tenants/" + c.Tenant + "/applications/" + c.App.ClientID,
		Data: requestData{
			ODataType: ct.calloutData,
			TenantID:  c.Tenant,
			AuthenticationContext: authenticationContext{
				CorrelationID:            c.CorrelationID,
				Client:                   clientInfo{IP: c.ClientIP, Locale: c.Locale, Market: c.Locale},
				Protocol:                 protocol,
				ClientServicePrincipal:   sp,
				ResourceServicePrincipal: sp,
			},
		},
	}
}

// encode stamps the extension's ids and writes the JSON. Postern has no event listener objects: the
// listener is the extension's subscription to the event, named "<extension id>/<event>".
func (r request) encode(ext directory.Extension) ([]byte, error) {
	ev := r.event
	r.Data.CustomAuthenticationExtensionID = ext.ID
	r.Data.AuthenticationEventListenerID = ext.ID + "/" + string(ev)
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s request: %w", ev, err)
	}
	return b, nil
}

// builtInAttribute reports whether a sign-up attribute name is one of Postern's built-in profile fields
// (attributeType "builtIn"); any other is the tenant's own ("directorySchemaExtension").
func builtInAttribute(name string) bool {
	_, ok := builtIn[name]
	return ok || name == "email"
}

// signUpRequest builds the attribute collection events' request: every attribute of the flow, typed by
// its declaration, plus the email. Postern's attribute names are sent as the flow names them (given_name,
// loyalty_id), not renamed to Graph's (givenName, extension_<app>_loyaltyId). Before the form is shown
// (submitted false) an attribute without a value is null; after it, an unticked boolean is false.
func signUpRequest(ev Event, c EventContext, flow directory.SignUp, in SignUpInput, submitted bool) (request, error) {
	r := newRequest(ev, c, "OAUTH2.0")
	info := &userSignUpInfo{Attributes: map[string]attributeValue{}, Identities: []identity{}}
	email := directory.NormalizeEmail(in.Email)
	if email != "" {
		info.Attributes["email"] = attributeValue{ODataType: stringAttribute, Value: email, AttributeType: "builtIn"}
		info.Identities = append(info.Identities, identity{SignInType: "email", Issuer: c.Tenant, IssuerAssignedID: email})
	}
	for _, def := range flow.Attributes {
		v, err := typedAttribute(def, strings.TrimSpace(in.Attributes[def.Name]), submitted)
		if err != nil {
			return request{}, fmt.Errorf("building the %s request: %w", ev, err)
		}
		if builtInAttribute(def.Name) {
			v.AttributeType = "builtIn"
		} else {
			v.AttributeType = "directorySchemaExtension"
		}
		info.Attributes[def.Name] = v
	}
	r.Data.UserSignUpInfo = info
	return r, nil
}

// typedAttribute gives a form value the JSON type of its declaration. A number is int64 (Entra's type)
// when it is whole and exactly representable, else Postern's double.
func typedAttribute(def directory.AttributeDef, v string, submitted bool) (attributeValue, error) {
	switch def.Type {
	case "boolean":
		a := attributeValue{ODataType: booleanAttribute}
		switch {
		case v == "" && !submitted:
		case v == "true" || v == "on" || v == "1":
			a.Value = true
		case v == "" || v == "false":
			a.Value = false
		default:
			return a, fmt.Errorf("attribute %q: %q is not a boolean", def.Name, v)
		}
		return a, nil
	case "number":
		a := attributeValue{ODataType: int64Attribute}
		if v == "" {
			return a, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return a, fmt.Errorf("attribute %q: %q is not a number", def.Name, v)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			a.Value = int64(f)
		} else {
			a.ODataType, a.Value = doubleAttribute, f
		}
		return a, nil
	default: // string, date
		a := attributeValue{ODataType: stringAttribute}
		if v != "" {
			a.Value = v
		}
		return a, nil
	}
}
