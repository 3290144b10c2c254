package manifest

// Manifest is one tenant's declared configuration, as written in the file given to `postern apply -f` or sent
// to the admin API. The zero value of an optional field means "not given": the caller applies defaults.
type Manifest struct {
	// Tenant is the tenant id; see [ValidTenantID].
	Tenant string `yaml:"tenant" json:"tenant"`
	// DisplayName is the tenant's name as people see it.
	DisplayName string `yaml:"display_name" json:"display_name,omitempty"`
	// DefaultLocale is the language used when neither ui_locales nor Accept-Language picks one, e.g. "en".
	DefaultLocale string `yaml:"default_locale" json:"default_locale,omitempty"`
	// SignInMethods lists the ways to sign in: password, email_otp, passkey, and identity provider ids.
	SignInMethods []string `yaml:"sign_in_methods" json:"sign_in_methods,omitempty"`
	// Flows configures the sign-up and MFA journeys.
	Flows Flows `yaml:"flows" json:"flows"`
	// Branding configures the hosted pages' look and text.
	Branding Branding `yaml:"branding" json:"branding"`
	// Apps are the OAuth 2.0 / OpenID Connect clients of the tenant.
	Apps []App `yaml:"apps" json:"apps,omitempty"`
	// Routes are hosts whose requests Postern proxies to an upstream once the caller is signed in.
	Routes []Route `yaml:"routes" json:"routes,omitempty"`
	// IdentityProviders are upstream identity providers people can sign in with.
	IdentityProviders []IdentityProvider `yaml:"identity_providers" json:"identity_providers,omitempty"`
	// Extensions are the tenant's extensions, called at named events of the journeys.
	Extensions []Extension `yaml:"extensions" json:"extensions,omitempty"`
}

// Flows configures the journeys.
type Flows struct {
	SignUp SignUp `yaml:"sign_up" json:"sign_up"`
	MFA    MFA    `yaml:"mfa" json:"mfa"`
}

// SignUp configures the sign-up journey.
type SignUp struct {
	// EmailVerification requires a one-time code sent to the address before the account is created.
	EmailVerification bool `yaml:"email_verification" json:"email_verification,omitempty"`
	// Attributes are collected on sign-up, in this order.
	Attributes []Attribute `yaml:"attributes" json:"attributes,omitempty"`
}

// Attribute is one profile attribute collected on sign-up.
type Attribute struct {
	// Name is the attribute (and claim) name: ^[a-z][a-z0-9_]{0,63}$.
	Name string `yaml:"name" json:"name"`
	// Type is one of string, number, boolean, date; empty means string.
	Type string `yaml:"type" json:"type,omitempty"`
	// Pattern is a Go regular expression the value must match.
	Pattern string `yaml:"pattern" json:"pattern,omitempty"`
	// Required makes the attribute mandatory.
	Required bool `yaml:"required" json:"required,omitempty"`
	// Label is the form label; empty means a label derived from the name or the branding strings.
	Label string `yaml:"label" json:"label,omitempty"`
}

// MFA configures multi-factor authentication.
type MFA struct {
	// Mode is one of off, optional, required, risk_based; empty means off.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Methods are the second factors offered: email_otp, totp, passkey.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
}

// Branding configures the hosted pages.
type Branding struct {
	// CompanyName is shown on the pages and in email.
	CompanyName string `yaml:"company_name" json:"company_name,omitempty"`
	// Colors maps a theme color name (primary, background, ...) to "#rgb" or "#rrggbb".
	Colors map[string]string `yaml:"colors" json:"colors,omitempty"`
	// Logo is a file path next to the manifest (as written by people), an https URL, or a data: URL (after
	// `postern apply` has read the file).
	Logo string `yaml:"logo" json:"logo,omitempty"`
	// Strings overrides page text: locale → message id → text.
	Strings map[string]map[string]string `yaml:"strings" json:"strings,omitempty"`
}

// App is an OAuth 2.0 / OpenID Connect client.
type App struct {
	// Name identifies the app inside the tenant: ^[a-z0-9][a-z0-9_-]{0,62}$.
	Name string `yaml:"name" json:"name"`
	// Type is one of web, spa, native, service.
	Type string `yaml:"type" json:"type"`
	// ClientID is generated when empty.
	ClientID string `yaml:"client_id" json:"client_id,omitempty"`
	// ClientSecret is for confidential clients (web, service) only; generated when empty; stored hashed.
	ClientSecret string `yaml:"client_secret" json:"client_secret,omitempty"`
	// RedirectURIs are matched exactly.
	RedirectURIs []string `yaml:"redirect_uris" json:"redirect_uris,omitempty"`
	// PostLogoutRedirectURIs are matched exactly.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris" json:"post_logout_redirect_uris,omitempty"`
	// GrantTypes are from authorization_code, refresh_token, client_credentials; empty means the default for
	// the app type.
	GrantTypes []string `yaml:"grant_types" json:"grant_types,omitempty"`
	// AccessTokenTTL is at most 24h; zero means the default.
	AccessTokenTTL Duration `yaml:"access_token_ttl" json:"access_token_ttl,omitempty"`
	// IDTokenTTL is at most 24h; zero means the default.
	IDTokenTTL Duration `yaml:"id_token_ttl" json:"id_token_ttl,omitempty"`
	// RefreshTokenTTL is at most 365 days; zero means the default.
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl" json:"refresh_token_ttl,omitempty"`
	// SigningAlg is one of ES256, RS256, EdDSA; empty means ES256.
	SigningAlg string `yaml:"signing_alg" json:"signing_alg,omitempty"`
	// JWKS is the client's public JSON Web Key Set as JSON text, for private_key_jwt client
	// authentication (RFC 7523); confidential apps only.
	JWKS string `yaml:"jwks" json:"jwks,omitempty"`
}

// Route puts Postern in front of an upstream: requests whose Host matches are proxied once allowed.
type Route struct {
	// Host is matched against the Host header: a host name or host:port, no scheme or path.
	Host string `yaml:"host" json:"host"`
	// Upstream is the absolute http or https URL requests are forwarded to.
	Upstream string `yaml:"upstream" json:"upstream"`
	// App names the web app of this manifest whose sign-in the route uses.
	App string `yaml:"app" json:"app"`
	// Allow says who may pass.
	Allow Allow `yaml:"allow" json:"allow"`
	// PublicPaths are path prefixes served without signing in.
	PublicPaths []string `yaml:"public_paths" json:"public_paths,omitempty"`
}

// Allow says who may pass a route.
type Allow struct {
	// Authenticated lets every signed-in user pass.
	Authenticated bool `yaml:"authenticated" json:"authenticated,omitempty"`
	// Groups lets members of any of these groups pass.
	Groups []string `yaml:"groups" json:"groups,omitempty"`
	// Paths are finer rules for path prefixes.
	Paths []PathRule `yaml:"paths" json:"paths,omitempty"`
}

// PathRule restricts the requests under a path prefix.
type PathRule struct {
	// Prefix is a path prefix starting with "/".
	Prefix string `yaml:"prefix" json:"prefix"`
	// Methods are HTTP methods (upper case); empty means any.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Groups lets members of any of these groups pass; empty means any signed-in user.
	Groups []string `yaml:"groups" json:"groups,omitempty"`
}

// IdentityProvider is an upstream identity provider people can sign in with.
type IdentityProvider struct {
	// ID names the provider inside the tenant and in sign_in_methods: ^[a-z0-9][a-z0-9_-]{0,62}$.
	ID string `yaml:"id" json:"id"`
	// Type is one of oidc, oauth2, saml.
	Type string `yaml:"type" json:"type"`
	// Issuer is the provider's absolute https URL (http only for loopback).
	Issuer string `yaml:"issuer" json:"issuer"`
	// ClientID is Postern's client id at the provider; required for oidc and oauth2.
	ClientID string `yaml:"client_id" json:"client_id,omitempty"`
	// ClientSecret is Postern's client secret at the provider; sealed at rest.
	ClientSecret string `yaml:"client_secret" json:"client_secret,omitempty"`
	// Scopes requested from the provider; empty means the default for the type.
	Scopes []string `yaml:"scopes" json:"scopes,omitempty"`
}

// Extension is a tenant extension called at named events: a WebAssembly module run inside Postern, or an
// HTTP endpoint.
type Extension struct {
	// ID names the extension inside the tenant: ^[a-z0-9][a-z0-9_-]{0,62}$.
	ID string `yaml:"id" json:"id"`
	// Wasm is the module: a file path next to the manifest (uploaded by `postern apply`) or, after upload,
	// its stored reference. Exactly one of Wasm and URL is set.
	Wasm string `yaml:"wasm" json:"wasm,omitempty"`
	// URL is the HTTP extension's https endpoint (http only for loopback).
	URL string `yaml:"url" json:"url,omitempty"`
	// Events are the events the extension is called at; see the Event constants.
	Events []string `yaml:"events" json:"events,omitempty"`
	// Timeout bounds one call, 1ms to 10s; zero means the default.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// MemoryLimit bounds a Wasm instance's memory, 64KiB to 512MiB; zero means the default.
	MemoryLimit ByteSize `yaml:"memory_limit" json:"memory_limit,omitempty"`
	// MaxInstances bounds the extension's calls running at once on a node (and so its Wasm instances),
	// 1 to 64; zero means the node's default.
	MaxInstances int `yaml:"max_instances" json:"max_instances,omitempty"`
	// MaxInput and MaxOutput bound one call's request and answer, 1KiB to 1MiB; zero means 1MiB.
	MaxInput  ByteSize `yaml:"max_input" json:"max_input,omitempty"`
	MaxOutput ByteSize `yaml:"max_output" json:"max_output,omitempty"`
	// OnError is fail or continue; empty means fail.
	OnError string `yaml:"on_error" json:"on_error,omitempty"`
	// AllowedHosts are the hosts the extension may reach through the host's HTTP function.
	AllowedHosts []string `yaml:"allowed_hosts" json:"allowed_hosts,omitempty"`
	// Config is passed to the extension as is.
	Config map[string]string `yaml:"config" json:"config,omitempty"`
	// Secrets reach a Wasm extension through secret_get, apart from Config, because they are stored
	// sealed with the key-encryption key and never shown again (the admin API lists their names): the
	// API keys of the services the extension calls. Values usually come from the environment of
	// `postern apply` (${NAME}), so that the file itself holds none.
	Secrets map[string]string `yaml:"secrets" json:"secrets,omitempty"`
}

// Sign-in methods built into Postern; an identity provider's id is a sign-in method too.
const (
	MethodPassword = "password"
	MethodEmailOTP = "email_otp"
	MethodPasskey  = "passkey"
)

// Second factors, for MFA.Methods.
const (
	FactorEmailOTP = "email_otp"
	FactorTOTP     = "totp"
	FactorPasskey  = "passkey"
)

// MFA modes.
const (
	MFAOff       = "off"
	MFAOptional  = "optional"
	MFARequired  = "required"
	MFARiskBased = "risk_based"
)

// Attribute types.
const (
	AttrString  = "string"
	AttrNumber  = "number"
	AttrBoolean = "boolean"
	AttrDate    = "date"
)

// App types. Web and service apps are confidential clients; spa and native apps are public clients.
const (
	AppWeb     = "web"
	AppSPA     = "spa"
	AppNative  = "native"
	AppService = "service"
)

// Grant types (RFC 6749).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Token signing algorithms (RFC 7518, RFC 8037).
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// Identity provider types.
const (
	IdPOIDC   = "oidc"
	IdPOAuth2 = "oauth2"
	IdPSAML   = "saml"
)

// Extension events.
const (
	EventAttributeCollectionStart  = "OnAttributeCollectionStart"
	EventAttributeCollectionSubmit = "OnAttributeCollectionSubmit"
	EventTokenIssuanceStart        = "OnTokenIssuanceStart"
	EventOtpSend                   = "OnOtpSend"
	EventProxyRequest              = "OnProxyRequest"
)

// Extension failure policies.
const (
	OnErrorFail     = "fail"
	OnErrorContinue = "continue"
)
