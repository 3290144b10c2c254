package directory

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

// reservedTenantIDs collide with paths the edge serves itself.
var reservedTenantIDs = map[string]bool{
	"admin": true, "api": true, "healthz": true, "readyz": true, "metrics": true, "static": true,
	"assets": true, "well-known": true, "oauth2": true, "oidc": true, "postern": true, "login": true,
	"logout": true, "sign-in": true, "sign-up": true, "authorize": true, "token": true, "jwks": true,
	"userinfo": true, "favicon-ico": true, "robots-txt": true,
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// SHA256Hex is the content hash by which Wasm modules are stored.
func SHA256Hex(b []byte) string { return sha256Hex(b) }

// ValidTenantID checks a tenant id against CONTRACT.md: [a-z0-9][a-z0-9-]{1,61}[a-z0-9], and not a name
// the edge uses for its own paths.
func ValidTenantID(id string) error {
	if !tenantIDPattern.MatchString(id) {
		return invalid("tenant id %q must be 3 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'", id)
	}
	if reservedTenantIDs[id] {
		return invalid("tenant id %q is reserved for the edge's own paths", id)
	}
	return nil
}

// PlausibleEmail is a deliberately loose check (one @, something on each side, a dot in the domain, no
// spaces): the real check is the verification code sent to it.
func PlausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n<>") || len(s) > 254 {
		return false
	}
	domain := s[at+1:]
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}
