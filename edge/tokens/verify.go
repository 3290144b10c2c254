package tokens

import (
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 60 * time.Second

// maxTokenSize bounds what is parsed at all: Postern's own tokens are well under a kilobyte.
const maxTokenSize = 16 << 10

// ErrInvalidToken is wrapped by every refusal of VerifyAccessToken. The text after it says why, for logs;
// a client should be told no more than invalid_token (RFC 6750 section 3.1).
var ErrInvalidToken = errors.New("invalid token")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, a...))
}

// VerifyAccessToken checks an access token of tenant and returns its claims. It accepts the token only
// when all of these hold:
//   - it is a JWS in compact serialization whose alg is on the allowlist ES256, RS256, EdDSA (never
//     "none", never an HMAC: RFC 8725 section 3.1);
//   - its kid names a published key of THIS tenant (a key of another tenant is unknown here, whatever
//     its kid), the alg is that key's own, and the signature verifies with it;
//   - its typ is "at+jwt" (RFC 9068 section 4), so an ID token ("JWT") is refused;
//   - iss equals issuer exactly;
//   - exp and iat are present, and exp, nbf and iat hold at now with [Leeway].
//
// Audience, scope and revocation are the caller's to check.
func (r *KeyRing) VerifyAccessToken(tenant, issuer, token string, now time.Time) (Claims, error) {
	return r.verify(tenant, issuer, token, now, isAccessTokenType, true)
}

// VerifyIDToken checks an ID token this tenant issued, as a relying party does on receiving one (OIDC
// Core section 3.1.3.7): the same signature, key, issuer and time rules as [KeyRing.VerifyAccessToken],
// with typ "JWT" (or none). Audience and nonce are the caller's to check.
func (r *KeyRing) VerifyIDToken(tenant, issuer, token string, now time.Time) (Claims, error) {
	return r.verify(tenant, issuer, token, now, func(typ string) bool { return typ == "" || strings.EqualFold(typ, TypeIDToken) }, true)
}

// VerifyIDTokenHint checks an ID token this tenant issued, as RP-initiated logout's id_token_hint: the
// same signature, key and issuer rules, typ "JWT" (or none), but an expired token is still a good hint
// (OpenID Connect RP-Initiated Logout 1.0, section 2).
func (r *KeyRing) VerifyIDTokenHint(tenant, issuer, token string, now time.Time) (Claims, error) {
	return r.verify(tenant, issuer, token, now, func(typ string) bool { return typ == "" || strings.EqualFold(typ, TypeIDToken) }, false)
}

func (r *KeyRing) verify(tenant, issuer, token string, now time.Time, typOK func(string) bool, checkTime bool) (Claims, error) {
	if issuer == "" {
		return nil, errors.New("verifying an access token: no issuer to compare with")
	}
	if len(token) > maxTokenSize {
		return nil, invalid("longer than %d bytes", maxTokenSize)
	}
	tok, err := jwt.ParseSigned(token, allowedAlgs)
	if err != nil {
		return nil, invalid("parsing: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, invalid("not one signature")
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return nil, invalid("no kid")
	}
	k, err := r.publicKey(tenant, h.KeyID, now)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, invalid("%v", err)
		}
		return nil, err // the store failed: not the token's fault
	}
	if h.Algorithm != k.Alg {
		return nil, invalid("alg %s is not the alg %s of key %s", h.Algorithm, k.Alg, k.ID)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !typOK(typ) {
		return nil, invalid("typ %q is not the expected type", typ)
	}
	var std jwt.Claims
	var claims Claims
	if err := tok.Claims(k.Public, &std, &claims); err != nil {
		return nil, invalid("%v", err)
	}
	if std.Issuer != issuer {
		return nil, invalid("iss %q is not %q", std.Issuer, issuer)
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return nil, invalid("exp or iat is missing")
	}
	if !checkTime {
		return claims, nil
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Time: now}, Leeway); err != nil {
		return nil, invalid("%v", err)
	}
	return claims, nil
}

// isAccessTokenType accepts "at+jwt" and its full media type "application/at+jwt", in any case
// (RFC 7515 section 4.1.9: the application/ prefix may be left out; media types are case-insensitive).
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == TypeAccessToken || typ == "application/"+TypeAccessToken
}
