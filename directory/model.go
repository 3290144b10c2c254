package directory

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Tenant is one business using Postern: its customers, apps and settings are walled off from every other
// tenant's by the key prefix "t/<id>/".
type Tenant struct {
	ID            string    `json:"id"`
	DisplayName   string    `json:"display_name,omitempty"`
	DefaultLocale string    `json:"default_locale,omitempty"`
	Settings      Settings  `json:"settings"`
	ManagedBy     string    `json:"managed_by,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Settings shape a tenant's journeys: which sign-in methods it offers, what sign-up collects, when MFA is
// asked for, and how its pages look.
type Settings struct {
	SignInMethods []string `json:"sign_in_methods,omitempty"`
	SignUp        SignUp   `json:"sign_up"`
	MFA           MFA      `json:"mfa"`
	Branding      Branding `json:"branding"`
}

// SignUp is the sign-up flow's configuration.
type SignUp struct {
	EmailVerification bool           `json:"email_verification"`
	Attributes        []AttributeDef `json:"attributes,omitempty"`
}

// AttributeDef declares one attribute collected at sign-up; built-in names (given_name, family_name, …)
// land in the user's profile, any other name is a custom attribute.
type AttributeDef struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"` // string | number | boolean | date
	Pattern  string `json:"pattern,omitempty"`
	Required bool   `json:"required,omitempty"`
	Label    string `json:"label,omitempty"`
}

// MFA is the tenant's multi-factor policy.
type MFA struct {
	Mode    string   `json:"mode,omitempty"` // off | optional | required | risk_based
	Methods []string `json:"methods,omitempty"`
}

// Branding is what the hosted pages show of the tenant.
type Branding struct {
	CompanyName string                       `json:"company_name,omitempty"`
	Colors      map[string]string            `json:"colors,omitempty"`
	Logo        string                       `json:"logo,omitempty"`
	Strings     map[string]map[string]string `json:"strings,omitempty"`
}

// User is one of a tenant's customers. Email is stored lower-cased; the email and username indexes are
// unique within the tenant.
type User struct {
	ID            string         `json:"id"`
	Tenant        string         `json:"tenant"`
	Email         string         `json:"email,omitempty"`
	Username      string         `json:"username,omitempty"`
	EmailVerified bool           `json:"email_verified"`
	Blocked       bool           `json:"blocked"`
	PasswordHash  string         `json:"password_hash,omitempty"`
	Profile       Profile        `json:"profile"`
	Attributes    map[string]any `json:"attributes,omitempty"`
	Credentials   []Credential   `json:"credentials,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// Public is the user as the admin API shows it: no password hash and no credential secrets.
func (u User) Public() User {
	u.PasswordHash = ""
	creds := make([]Credential, len(u.Credentials))
	for i, c := range u.Credentials {
		c.Secret = nil
		creds[i] = c
	}
	u.Credentials = creds
	return u
}

// Profile holds the built-in OpenID Connect standard claims a user may have.
type Profile struct {
	Name        string `json:"name,omitempty"`
	GivenName   string `json:"given_name,omitempty"`
	FamilyName  string `json:"family_name,omitempty"`
	Nickname    string `json:"nickname,omitempty"`
	Picture     string `json:"picture,omitempty"`
	Locale      string `json:"locale,omitempty"`
	Zoneinfo    string `json:"zoneinfo,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

// Credential is a second factor or passkey bound to a user. Secret (a TOTP seed, say) is sealed with the KEK.
type Credential struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"` // totp | passkey | recovery_codes
	Name      string    `json:"name,omitempty"`
	Secret    Sealed    `json:"secret,omitempty"`
	PublicKey []byte    `json:"public_key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Group gathers users for authorization decisions (proxy allow rules, token claims).
type Group struct {
	ID          string    `json:"id"`
	Tenant      string    `json:"tenant"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// App types, after OAuth 2.0 client profiles: web and service are confidential, spa and native public.
const (
	AppWeb     = "web"
	AppSPA     = "spa"
	AppNative  = "native"
	AppService = "service"
)

// App is a client application registered with a tenant.
type App struct {
	ID                     string       `json:"id"`
	Tenant                 string       `json:"tenant"`
	Name                   string       `json:"name"`
	ClientID               string       `json:"client_id"`
	Type                   string       `json:"type"`
	Secrets                []SecretHash `json:"secrets,omitempty"`
	RedirectURIs           []string     `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string     `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string     `json:"grant_types,omitempty"`
	AccessTokenTTL         Duration     `json:"access_token_ttl,omitempty"`
	IDTokenTTL             Duration     `json:"id_token_ttl,omitempty"`
	RefreshTokenTTL        Duration     `json:"refresh_token_ttl,omitempty"`
	SigningAlg             string       `json:"signing_alg,omitempty"`
	// JWKS is the client's public JSON Web Key Set, for private_key_jwt client authentication (RFC 7523).
	JWKS      string    `json:"jwks,omitempty"`
	ManagedBy string    `json:"managed_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Public is the app as the admin API shows it: secret hashes are replaced by their creation times.
func (a App) Public() App {
	s := make([]SecretHash, len(a.Secrets))
	for i, h := range a.Secrets {
		s[i] = SecretHash{CreatedAt: h.CreatedAt}
	}
	a.Secrets = s
	return a
}

// Confidential reports whether the app can keep a secret (RFC 6749 section 2.1).
func (a App) Confidential() bool { return a.Type == AppWeb || a.Type == AppService }

// SecretHash is one client secret, hashed. More than one may be valid at once, for rotation.
type SecretHash struct {
	Hash      string    `json:"hash,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Route puts an app behind the edge's reverse proxy: requests whose Host is Host go to Upstream once the
// person is signed in with App and allowed.
type Route struct {
	Host        string    `json:"host"`
	Tenant      string    `json:"tenant"`
	Upstream    string    `json:"upstream"`
	App         string    `json:"app"`
	Allow       Allow     `json:"allow"`
	PublicPaths []string  `json:"public_paths,omitempty"`
	ManagedBy   string    `json:"managed_by,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Allow is a route's authorization rule.
type Allow struct {
	Authenticated bool       `json:"authenticated,omitempty"`
	Groups        []string   `json:"groups,omitempty"`
	Paths         []PathRule `json:"paths,omitempty"`
}

// PathRule narrows a route's rule for one path prefix.
type PathRule struct {
	Prefix  string   `json:"prefix"`
	Methods []string `json:"methods,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// IdentityProvider is an outside provider a tenant federates with. Its client secret is sealed.
type IdentityProvider struct {
	ID           string    `json:"id"`
	Tenant       string    `json:"tenant"`
	Type         string    `json:"type"`
	Issuer       string    `json:"issuer,omitempty"`
	ClientID     string    `json:"client_id,omitempty"`
	ClientSecret Sealed    `json:"client_secret,omitempty"`
	Scopes       []string  `json:"scopes,omitempty"`
	ManagedBy    string    `json:"managed_by,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Signing key states: a key is published as next before it signs, signs while active, and stays published
// as retired until the tokens it signed have expired.
const (
	KeyNext    = "next"
	KeyActive  = "active"
	KeyRetired = "retired"
)

// SigningKey is one of a tenant's token-signing keys. Private is the sealed PKCS#8 DER private key.
type SigningKey struct {
	ID        string    `json:"kid"`
	Tenant    string    `json:"tenant"`
	Alg       string    `json:"alg"`
	Private   Sealed    `json:"private,omitempty"`
	Public    []byte    `json:"public"` // PKIX DER
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	NotAfter  time.Time `json:"not_after,omitzero"`
}

// Extension is a tenant's WebAssembly module (by content hash) or HTTP endpoint, bound to events.
type Extension struct {
	ID          string   `json:"id"`
	Tenant      string   `json:"tenant"`
	Events      []string `json:"events"`
	WasmSHA256  string   `json:"wasm_sha256,omitempty"`
	WasmSize    int64    `json:"wasm_size,omitempty"`
	URL         string   `json:"url,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
	MemoryLimit int64    `json:"memory_limit,omitempty"`
	OnError     string   `json:"on_error,omitempty"`
	// MaxInstances, MaxInput and MaxOutput bound the extension's concurrent calls on a node and one
	// call's request and answer; zero means the node's defaults.
	MaxInstances int               `json:"max_instances,omitempty"`
	MaxInput     int64             `json:"max_input,omitempty"`
	MaxOutput    int64             `json:"max_output,omitempty"`
	AllowedHosts []string          `json:"allowed_hosts,omitempty"`
	Config       map[string]string `json:"config,omitempty"`
	Version      int               `json:"version"`
	ManagedBy    string            `json:"managed_by,omitempty"`
	UpdatedAt    time.Time         `json:"updated_at"`
	// Secrets are sealed with the KEK, each bound to its tenant, extension and name
	// (ExtensionSecretContext): a copy of the directory alone reveals none. The admin API shows their
	// names only.
	Secrets map[string]Sealed `json:"secrets,omitempty"`
}

// Session is a person's signed-in state at a tenant, shared by its apps (single sign-on).
type Session struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	UserID string `json:"user_id"`
	// SecretHash is the SHA-256 of the secret half of the session cookie: the id alone (it appears as
	// sid in ID tokens) never opens a session.
	SecretHash string    `json:"secret_hash,omitempty"`
	AuthTime   time.Time `json:"auth_time"`
	AMR        []string  `json:"amr,omitempty"`
	Apps       []string  `json:"apps,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// RefreshFamily is the chain of rotated refresh tokens from one grant; Current is the hash of the only
// token of the family that may still be used.
type RefreshFamily struct {
	ID        string   `json:"id"`
	Tenant    string   `json:"tenant"`
	UserID    string   `json:"user_id,omitempty"`
	ClientID  string   `json:"client_id"`
	SessionID string   `json:"session_id,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	// Claims are what the tenant's OnTokenIssuanceStart extensions provided at sign-in: every token of the
	// family carries them.
	Claims     map[string]any `json:"claims,omitempty"`
	Current    string         `json:"current"`
	Generation int            `json:"generation"`
	CreatedAt  time.Time      `json:"created_at"`
	ExpiresAt  time.Time      `json:"expires_at"`
	RevokedAt  time.Time      `json:"revoked_at,omitzero"`
}

// AuditEvent records one change and who made it, or one line an extension logged (Action
// OpExtensionLog, with the fields below Index).
type AuditEvent struct {
	ID     string    `json:"id"`
	Tenant string    `json:"tenant,omitempty"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor,omitempty"`
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Index  uint64    `json:"index"`

	// An extension log line's level, message and source (see ExtensionLogLine), and the node that ran
	// the call.
	Level   string `json:"level,omitempty"`
	Message string `json:"message,omitempty"`
	Source  string `json:"source,omitempty"`
	Node    string `json:"node,omitempty"`
}

// Node is a member of the cluster as the directory records it: raft knows ids and addresses, the directory
// adds what operators and forwarding need.
type Node struct {
	ID       string    `json:"id"`
	RaftAddr string    `json:"raft_addr"`
	AdminURL string    `json:"admin_url,omitempty"`
	Region   string    `json:"region,omitempty"`
	Suffrage string    `json:"suffrage"` // voter | nonvoter
	JoinedAt time.Time `json:"joined_at"`
}

// Duration is a time.Duration written as "15m" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as Go duration text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "15m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration must be text like \"15m\" or seconds")
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// NormalizeEmail is the form in which emails are stored and indexed. Only case is folded: the local part
// of an address is otherwise kept as given.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }
