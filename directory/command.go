package directory

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Command is one change to the directory, replicated through the raft log and applied by every replica.
// Its ops are applied in order in one transaction: all of them take effect or none does. Everything that
// is not deterministic (the time, new ids, sealed secrets, password hashes) is decided by the proposer and
// travels inside the command.
type Command struct {
	Time  time.Time `json:"time"`
	Actor string    `json:"actor,omitempty"`
	Ops   []Op      `json:"ops"`
}

// Op is one operation of a command: Kind names a handler in the state machine's registry, Body is its
// JSON argument.
type Op struct {
	Kind string          `json:"kind"`
	Body json.RawMessage `json:"body"`
}

// NewCommand builds a command from typed op bodies (see the Op* kinds); it fails only when a body does not
// encode.
func NewCommand(now time.Time, actor string, ops ...Op) Command {
	return Command{Time: now.UTC(), Actor: actor, Ops: ops}
}

// MakeOp encodes body as an op of the given kind.
func MakeOp(kind string, body any) Op {
	b, err := json.Marshal(body)
	if err != nil {
		// Bodies are this package's own plain structs; failing to encode one is a programming error.
		panic(fmt.Sprintf("directory: encoding %s op: %v", kind, err))
	}
	return Op{Kind: kind, Body: b}
}

// Encode is the command's wire form, as it goes into the raft log.
func (c Command) Encode() ([]byte, error) { return json.Marshal(c) }

// DecodeCommand reads a command's wire form.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decoding command: %w", err)
	}
	return c, nil
}

// Result is what applying a command produced.
type Result struct {
	// Index is the raft index at which the command was applied; a reader that must see the change waits
	// for its replica to reach it (read-your-writes).
	Index uint64 `json:"index"`
	// Outputs holds one value per op (the created record, say), in op order.
	Outputs []json.RawMessage `json:"outputs,omitempty"`
	// Changes lists what changed, for cache invalidation.
	Changes []Change `json:"changes,omitempty"`
}

// Change names one record a command touched.
type Change struct {
	Tenant string `json:"tenant,omitempty"`
	Kind   string `json:"kind"`
	ID     string `json:"id,omitempty"`
}

// NewID returns a random 128-bit id in lower-case base32 (26 characters). Proposers call it; Apply never does.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("directory: crypto/rand failed: " + err.Error())
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Op kinds: the state machine's registry is keyed by these, and they are stored in raft logs, so a kind
// keeps its name and meaning forever.
const (
	OpTenantCreate     = "tenant.create"
	OpTenantUpdate     = "tenant.update"
	OpTenantDelete     = "tenant.delete"
	OpUserCreate       = "user.create"
	OpUserUpdate       = "user.update"
	OpUserDelete       = "user.delete"
	OpCredentialPut    = "user.credential.put"
	OpCredentialDelete = "user.credential.delete"
	OpGroupCreate      = "group.create"
	OpGroupUpdate      = "group.update"
	OpGroupDelete      = "group.delete"
	OpMemberAdd        = "group.member.add"
	OpMemberRemove     = "group.member.remove"
	OpAppCreate        = "app.create"
	OpAppUpdate        = "app.update"
	OpAppDelete        = "app.delete"
	OpKeyPut           = "key.put"
	OpKeyDelete        = "key.delete"
	OpRoutePut         = "route.put"
	OpRouteDelete      = "route.delete"
	OpIdPPut           = "idp.put"
	OpIdPDelete        = "idp.delete"
	OpExtensionPut     = "extension.put"
	OpExtensionDelete  = "extension.delete"
	OpSessionPut       = "session.put"
	OpSessionRevoke    = "session.revoke"
	OpRefreshPut       = "refresh.put"
	OpRefreshRevoke    = "refresh.revoke"
	OpNodePut          = "node.put"
	OpNodeDelete       = "node.delete"
)

// Ref names one record of a tenant, for deletes and revocations.
type Ref struct {
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
}

// TenantPatch changes the fields it sets.
type TenantPatch struct {
	ID            string    `json:"id"`
	DisplayName   *string   `json:"display_name,omitempty"`
	DefaultLocale *string   `json:"default_locale,omitempty"`
	Settings      *Settings `json:"settings,omitempty"`
	ManagedBy     *string   `json:"managed_by,omitempty"`
}

// UserPatch changes the fields it sets. Attributes are merged: a null value removes that attribute.
type UserPatch struct {
	Tenant        string         `json:"tenant"`
	ID            string         `json:"id"`
	Email         *string        `json:"email,omitempty"`
	Username      *string        `json:"username,omitempty"`
	EmailVerified *bool          `json:"email_verified,omitempty"`
	Blocked       *bool          `json:"blocked,omitempty"`
	PasswordHash  *string        `json:"password_hash,omitempty"`
	Profile       *Profile       `json:"profile,omitempty"`
	Attributes    map[string]any `json:"attributes,omitempty"`
}

// CredentialPut adds or replaces one credential of a user.
type CredentialPut struct {
	Tenant     string     `json:"tenant"`
	UserID     string     `json:"user_id"`
	Credential Credential `json:"credential"`
}

// CredentialRef names one credential of a user.
type CredentialRef struct {
	Tenant string `json:"tenant"`
	UserID string `json:"user_id"`
	ID     string `json:"id"`
}

// GroupPatch changes the fields it sets.
type GroupPatch struct {
	Tenant      string  `json:"tenant"`
	ID          string  `json:"id"`
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// Membership puts a user in a group.
type Membership struct {
	Tenant  string `json:"tenant"`
	GroupID string `json:"group_id"`
	UserID  string `json:"user_id"`
}

// AppPatch changes the fields it sets.
type AppPatch struct {
	Tenant                 string        `json:"tenant"`
	ID                     string        `json:"id"`
	Name                   *string       `json:"name,omitempty"`
	RedirectURIs           *[]string     `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs *[]string     `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             *[]string     `json:"grant_types,omitempty"`
	Secrets                *[]SecretHash `json:"secrets,omitempty"`
	AccessTokenTTL         *Duration     `json:"access_token_ttl,omitempty"`
	IDTokenTTL             *Duration     `json:"id_token_ttl,omitempty"`
	RefreshTokenTTL        *Duration     `json:"refresh_token_ttl,omitempty"`
	SigningAlg             *string       `json:"signing_alg,omitempty"`
	JWKS                   *string       `json:"jwks,omitempty"`
	ManagedBy              *string       `json:"managed_by,omitempty"`
}

// HostRef names a proxy route.
type HostRef struct {
	Tenant string `json:"tenant"`
	Host   string `json:"host"`
}

// ExtensionPut stores an extension; Wasm carries the module when the replica may not have its blob yet.
type ExtensionPut struct {
	Extension Extension `json:"extension"`
	Wasm      []byte    `json:"wasm,omitempty"`
}
