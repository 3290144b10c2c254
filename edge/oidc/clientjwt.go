package oidc

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// private_key_jwt (OIDC Core section 9, RFC 7523 section 2.2): the client signs a short-lived JWT with a
// key whose public half it registered (the app's jwks).

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime bounds exp - now, so a replay cache can hold every jti until it expires.
const maxAssertionLifetime = 10 * time.Minute

var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// seenAssertions remembers assertion ids until they expire. It is per node: an assertion replayed at
// another edge within its few minutes of life is not caught here (RFC 7523 leaves replay checks to the
// server's discretion); a cluster-wide record would cost a raft write per authentication.
type seenAssertions struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (s *seenAssertions) firstUse(key string, exp, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	if len(s.seen) > 10_000 {
		for k, e := range s.seen {
			if now.After(e) {
				delete(s.seen, k)
			}
		}
	}
	if e, ok := s.seen[key]; ok && !now.After(e) {
		return false
	}
	s.seen[key] = exp
	return true
}

func (p *Provider) authenticateAssertion(ctx *fasthttp.RequestCtx, te *tenantEntry) (directory.App, *Error) {
	args := ctx.PostArgs()
	fail := errInvalidClient("client authentication failed")
	if string(args.Peek("client_assertion_type")) != clientAssertionType {
		return directory.App{}, errInvalidClient("client_assertion_type must be %s", clientAssertionType)
	}
	if len(ctx.Request.Header.Peek("Authorization")) > 0 || args.Has("client_secret") {
		return directory.App{}, errInvalidRequest("use one client authentication method, not two")
	}
	raw := string(args.Peek("client_assertion"))
	if raw == "" || len(raw) > 16<<10 {
		return directory.App{}, fail
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return directory.App{}, fail
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return directory.App{}, fail
	}
	clientID := unverified.Issuer
	if id := string(args.Peek("client_id")); id != "" && id != clientID {
		return directory.App{}, fail
	}
	app, ok := p.app(te, clientID)
	if !ok || !app.Confidential() || app.JWKS == "" {
		return directory.App{}, fail
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(app.JWKS), &set); err != nil {
		p.cfg.Log.Error("an app's jwks does not parse", "tenant", te.tenant.ID, "client_id", clientID, "error", err)
		return directory.App{}, fail
	}
	keys := set.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = set.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if !k.IsPublic() || (k.Algorithm != "" && k.Algorithm != tok.Headers[0].Algorithm) {
			continue
		}
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return directory.App{}, fail
	}
	now := p.cfg.Now()
	iss := p.issuer(te.tenant.ID)
	audOK := slices.ContainsFunc(claims.Audience, func(a string) bool { return a == iss+pathToken || a == iss })
	switch {
	case claims.Issuer != clientID || claims.Subject != clientID:
		return directory.App{}, fail
	case !audOK:
		return directory.App{}, errInvalidClient("the client assertion's aud must be the token endpoint")
	case claims.Expiry == nil || claims.ID == "":
		return directory.App{}, errInvalidClient("the client assertion needs exp and jti")
	case claims.Expiry.Time().Sub(now) > maxAssertionLifetime:
		return directory.App{}, errInvalidClient("the client assertion lives too long (at most %s)", maxAssertionLifetime)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, time.Minute); err != nil {
		return directory.App{}, errInvalidClient("the client assertion has expired")
	}
	if !p.assertions.firstUse(te.tenant.ID+"\x00"+clientID+"\x00"+claims.ID, claims.Expiry.Time().Add(time.Minute), now) {
		return directory.App{}, errInvalidClient("the client assertion was already used")
	}
	return app, nil
}
