package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"postern.dev/postern/directory"
)

// An authorization code is the grant itself, sealed with the key-encryption key for its tenant: any edge
// can open it, nobody else can read or forge it, and issuing one costs no write. That it is used once is
// decided by the code.redeem op at redemption. Codes live at most codeLifetime (RFC 6749 section 4.1.2:
// "a maximum authorization code lifetime of 10 minutes is RECOMMENDED").
const (
	codePrefix   = "pc1."
	codeLifetime = 10 * time.Minute
)

// grantCode is what a code carries.
type grantCode struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"cid"`
	RedirectURI   string    `json:"ru"`
	Challenge     string    `json:"cc,omitempty"`
	Nonce         string    `json:"n,omitempty"`
	SessionID     string    `json:"sid"`
	Subject       string    `json:"sub"`
	AuthTime      time.Time `json:"at"`
	Scopes        []string  `json:"sc,omitempty"`
	AMR           []string  `json:"amr,omitempty"`
	ExpiresAt     time.Time `json:"exp"`
	ClaimsLocales string    `json:"cl,omitempty"`
	// Index is the raft index of the session's creation: the redeeming edge waits for it.
	Index uint64 `json:"i,omitempty"`
	// Claims are what OnTokenIssuanceStart extensions provided when the code was issued, for the tokens
	// it is redeemed for (sealed in the code like the rest, so no extension runs at the token endpoint).
	Claims map[string]any `json:"x,omitempty"`
}

func codeContext(tenant string) string { return "authcode/" + tenant }

func (p *Provider) sealCode(tenant string, g grantCode) (string, error) {
	b, err := json.Marshal(g)
	if err != nil {
		return "", err
	}
	sealed, err := p.cfg.KEK.Seal(b, codeContext(tenant))
	if err != nil {
		return "", err
	}
	return codePrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

var errBadCode = errors.New("not a code of this tenant")

func (p *Provider) openCode(tenant, code string) (grantCode, error) {
	var g grantCode
	raw, ok := strings.CutPrefix(code, codePrefix)
	if !ok || len(raw) > 4096 {
		return g, errBadCode
	}
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return g, errBadCode
	}
	b, err := p.cfg.KEK.Open(directory.Sealed(sealed), codeContext(tenant))
	if err != nil {
		return g, errBadCode
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return g, errBadCode
	}
	return g, nil
}

// verifyPKCE checks a code_verifier against an S256 challenge (RFC 7636 section 4.6), in constant time.
func verifyPKCE(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, c := range verifier {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}
