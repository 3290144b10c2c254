package oidc

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// Session timeouts: a session ends after sessionIdle without use, and sessionAbsolute after sign-in
// whatever happens.
const (
	sessionIdle     = 30 * time.Minute
	sessionAbsolute = 12 * time.Hour
)

// sessionCookie is what the browser holds: sealed for the tenant, so it cannot be read or forged, with
// the time of last use (idle timeout without a write per request) and the secret whose hash the
// directory's session record keeps.
type sessionCookie struct {
	ID     string    `json:"id"`
	Secret string    `json:"s"`
	Seen   time.Time `json:"seen"`
	// Index is the raft index of the session's creation, so another edge can wait for it.
	Index uint64 `json:"i,omitempty"`
}

// cookieName is one cookie per tenant (tenants share the edge's host). Over TLS it carries the __Host-
// prefix: Secure, Path=/, no Domain, so no other host can set or read it.
func (p *Provider) cookieName(ctx *fasthttp.RequestCtx, tenant, name string) string {
	if p.secure(ctx) {
		return "__Host-" + name + "_" + tenant
	}
	return name + "_" + tenant
}

func (p *Provider) secure(ctx *fasthttp.RequestCtx) bool {
	return ctx.IsTLS() || len(p.cfg.PublicURL) > 8 && p.cfg.PublicURL[:8] == "https://"
}

func (p *Provider) setCookie(ctx *fasthttp.RequestCtx, name, value string, maxAge time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(name)
	c.SetValue(value)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	c.SetSecure(p.secure(ctx))
	if maxAge > 0 {
		c.SetMaxAge(int(maxAge.Seconds()))
	} else if maxAge < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
	}
	ctx.Response.Header.SetCookie(c)
}

// currentSession returns the tenant's live session named by the request's cookie, if any, and refreshes
// the cookie's last-use time.
func (p *Provider) currentSession(ctx *fasthttp.RequestCtx, te *tenantEntry) (directory.Session, uint64, bool) {
	name := p.cookieName(ctx, te.tenant.ID, "postern_session")
	raw := ctx.Request.Header.Cookie(name)
	if len(raw) == 0 || len(raw) > 4096 {
		return directory.Session{}, 0, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(string(raw))
	if err != nil {
		return directory.Session{}, 0, false
	}
	b, err := p.cfg.KEK.Open(directory.Sealed(sealed), "session/"+te.tenant.ID)
	var c sessionCookie
	if err != nil || json.Unmarshal(b, &c) != nil {
		return directory.Session{}, 0, false
	}
	now := p.cfg.Now()
	if now.Sub(c.Seen) > sessionIdle {
		return directory.Session{}, 0, false
	}
	s, err := freshAfter(p, c.Index, func() (directory.Session, error) { return p.cfg.Store.Session(te.tenant.ID, c.ID) })
	if err != nil || !s.RevokedAt.IsZero() || !now.Before(s.ExpiresAt) ||
		subtle.ConstantTimeCompare([]byte(hashSecret(c.Secret)), []byte(s.SecretHash)) != 1 {
		return directory.Session{}, 0, false
	}
	if u, err := p.cfg.Store.User(te.tenant.ID, s.UserID); err != nil || u.Blocked {
		return directory.Session{}, 0, false
	}
	if now.Sub(c.Seen) > time.Minute {
		c.Seen = now
		p.writeSessionCookie(ctx, te.tenant.ID, c)
	}
	return s, c.Index, true
}

func (p *Provider) writeSessionCookie(ctx *fasthttp.RequestCtx, tenant string, c sessionCookie) {
	b, _ := json.Marshal(c)
	sealed, err := p.cfg.KEK.Seal(b, "session/"+tenant)
	if err != nil {
		return
	}
	p.setCookie(ctx, p.cookieName(ctx, tenant, "postern_session"), base64.RawURLEncoding.EncodeToString(sealed), sessionIdle)
}

// newSession makes a session record for a user who just proved who they are, and the secret for its
// cookie. Nothing is written yet.
func (p *Provider) newSession(te *tenantEntry, userID string, amr []string) (directory.Session, string) {
	now := p.cfg.Now()
	var sec [32]byte
	rand.Read(sec[:])
	secret := base64.RawURLEncoding.EncodeToString(sec[:])
	return directory.Session{ID: directory.NewID(), Tenant: te.tenant.ID, UserID: userID, SecretHash: hashSecret(secret),
		AuthTime: now, AMR: amr, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(sessionAbsolute)}, secret
}

// startSession records a new session for a signed-in user (the sign-in's one raft write) and sets its
// cookie.
func (p *Provider) startSession(ctx *fasthttp.RequestCtx, te *tenantEntry, user directory.User, amr []string) (directory.Session, uint64, error) {
	s, secret := p.newSession(te, user.ID, amr)
	res, err := p.propose(directory.MakeOp(directory.OpSessionPut, s))
	if err != nil {
		return s, 0, err
	}
	p.writeSessionCookie(ctx, te.tenant.ID, sessionCookie{ID: s.ID, Secret: secret, Seen: s.CreatedAt, Index: res.Index})
	return s, res.Index, nil
}
