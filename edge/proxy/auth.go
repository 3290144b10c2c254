package proxy

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/tokens"
)

// identity is a signed-in user as the proxy forwards them: cached per tenant until a user or group
// change, with the assertions made for them.
type identity struct {
	sub     string
	email   string
	blocked bool
	groups  []string // names
	joined  string   // groups, comma separated

	// The header values, as bytes once: setting a header from a string would copy it per request.
	subB, emailB, joinedB []byte

	// Route host → assertion, replaced whole on renewal (every half lifetime): read on every request
	// without a lock.
	mu         sync.Mutex // serialises renewals
	assertions atomic.Pointer[map[string]assertion]
}

type assertion struct {
	jwt     []byte
	lines   []byte // the identity's header lines with this assertion (head.go)
	renewAt time.Time
}

// verified is what the proxy keeps of a verified access token.
type verified struct {
	tenant string
	host   string // for a session cookie: the host it was sealed for
	sub    string
	jti    string
	sid    string
	exp    time.Time
}

// errRefused is a token that is well formed and signed but not good for this request (revoked, ended
// session, blocked or unknown user, wrong audience). Like an invalid token, the client learns only
// invalid_token.
var errRefused = errors.New("refused")

// bearer returns the token of an Authorization: Bearer header (RFC 6750 section 2.1; the scheme is
// case-insensitive), and whether there was an Authorization header at all. The token aliases the
// header: it is copied only when it is verified and cached.
func bearer(h []byte) ([]byte, bool) {
	if len(h) == 0 {
		return nil, false
	}
	const scheme = "bearer "
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return nil, true
	}
	return bytes.TrimSpace(h[len(scheme):]), true
}

// authenticate checks an access token for the route and returns the identity it stands for. Signature
// and claims are verified once per token and cached; revocation of the token (jti) and of its session
// (sid) are read from the replica on every call, so a revocation applied here is honoured at once.
func (p *Proxy) authenticate(rt *directory.Route, token []byte) (*identity, error) {
	now := p.cfg.Now()
	v, ok := getHotBytes(p.tokens, token)
	if ok && !now.Before(v.exp) {
		p.tokens.delete(string(token))
		ok = false
	}
	if !ok || v.tenant != rt.Tenant {
		issuer := p.issuer(rt.Tenant)
		claims, err := p.cfg.Keys.VerifyAccessToken(rt.Tenant, issuer, string(token), now)
		if err != nil {
			return nil, err
		}
		if !audienceFits(claims["aud"], issuer, rt.Host) {
			return nil, errRefused
		}
		v = verified{tenant: rt.Tenant}
		v.sub, _ = claims["sub"].(string)
		v.jti, _ = claims["jti"].(string)
		v.sid, _ = claims["sid"].(string)
		exp, _ := claims["exp"].(float64)
		v.exp = time.Unix(int64(exp), 0)
		if v.sub == "" || v.jti == "" {
			return nil, errRefused
		}
		if now.Before(v.exp) {
			p.tokens.put(string(token), v)
		}
	}
	if p.tokenRevoked(rt.Tenant, v.jti) {
		return nil, errRefused
	}
	if v.sid != "" {
		live, err := p.sessionLive(rt.Tenant, v.sid, now)
		if err != nil {
			return nil, err
		}
		if !live {
			return nil, errRefused
		}
	}
	id, err := p.identity(rt.Tenant, v.sub)
	if err != nil {
		return nil, err
	}
	if id.blocked {
		return nil, errRefused
	}
	return id, nil
}

// audienceFits accepts a token meant for the tenant in general (aud = issuer, what the provider issues
// when no resource was asked for) or for this route's origin (RFC 8707 resource indicator).
func audienceFits(aud any, issuer, host string) bool {
	ok := func(s string) bool {
		s = strings.TrimSuffix(s, "/")
		return s == issuer || strings.EqualFold(s, "https://"+host) || strings.EqualFold(s, "http://"+host)
	}
	switch a := aud.(type) {
	case string:
		return ok(a)
	case []any:
		for _, x := range a {
			if s, _ := x.(string); ok(s) {
				return true
			}
		}
	}
	return false
}

// identity reads a user and their group names, from the cache.
func (p *Proxy) identity(tenant, sub string) (*identity, error) {
	k := recordKey{tenant, sub}
	if id, ok := p.users.get(k); ok {
		return id, nil
	}
	gen := p.gen.Load()
	u, err := p.cfg.Store.User(tenant, sub)
	if err != nil {
		if errors.Is(err, directory.ErrNotFound) {
			return nil, errRefused
		}
		return nil, err
	}
	ids, err := p.cfg.Store.UserGroups(tenant, sub)
	if err != nil {
		return nil, err
	}
	id := &identity{sub: u.ID, email: u.Email, blocked: u.Blocked}
	for _, gid := range ids {
		g, err := p.cfg.Store.Group(tenant, gid)
		if err != nil {
			if errors.Is(err, directory.ErrNotFound) {
				continue
			}
			return nil, err
		}
		id.groups = append(id.groups, g.Name)
	}
	id.joined = strings.Join(id.groups, ",")
	id.subB, id.emailB, id.joinedB = appendSafe(nil, []byte(id.sub)), appendSafe(nil, []byte(id.email)), appendSafe(nil, []byte(id.joined))
	if p.gen.Load() == gen {
		return p.users.putIfAbsent(k, id), nil
	}
	return id, nil
}

// assertionTTL is the lifetime of X-Postern-Assertion; it is renewed at half-life, so the upstream always
// receives one valid for at least half of it.
const assertionTTL = 60 * time.Second

// assertion returns the X-Postern-Assertion for the identity at the route: a JWT of the tenant's key,
// typ JWT, aud the route's host. Signing costs tens of microseconds, so one is reused until half-life.
func (p *Proxy) assertion(rt *directory.Route, id *identity) (assertion, error) {
	now := p.cfg.Now()
	if m := id.assertions.Load(); m != nil {
		if a, ok := (*m)[rt.Host]; ok && now.Before(a.renewAt) {
			return a, nil
		}
	}
	claims := tokens.Claims{
		"iss": p.issuer(rt.Tenant), "sub": id.sub, "aud": rt.Host,
		"iat": now.Unix(), "exp": now.Add(assertionTTL).Unix(),
	}
	if id.email != "" {
		claims["email"] = id.email
	}
	if len(id.groups) > 0 {
		claims["groups"] = id.groups
	}
	signed, err := p.cfg.Keys.SignJWT(rt.Tenant, "", tokens.TypeIDToken, claims)
	if err != nil {
		return assertion{}, err
	}
	a := assertion{jwt: []byte(signed), renewAt: now.Add(assertionTTL / 2)}
	setIdentity(func(k, v []byte) { a.lines = appendLine(a.lines, string(k), v) }, id, a.jwt)
	id.mu.Lock()
	m := map[string]assertion{}
	if old := id.assertions.Load(); old != nil {
		for h, a := range *old {
			m[h] = a
		}
	}
	m[rt.Host] = a
	id.assertions.Store(&m)
	id.mu.Unlock()
	return a, nil
}

var errInvalidToken = tokens.ErrInvalidToken
