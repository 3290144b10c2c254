package oidc

import (
	"bytes"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/tokens"
)

// bearerToken reads an access token from the Authorization header, or from a form body (RFC 6750
// sections 2.1 and 2.2); never both.
func bearerToken(ctx *fasthttp.RequestCtx) (string, *Error) {
	h := ctx.Request.Header.Peek("Authorization")
	form := ""
	if ctx.IsPost() && strings.HasPrefix(string(ctx.Request.Header.ContentType()), "application/x-www-form-urlencoded") {
		form = string(ctx.PostArgs().Peek("access_token"))
	}
	const prefix = "Bearer "
	switch {
	case len(h) > 0 && form != "":
		return "", errInvalidRequest("send the access token once")
	case len(h) > 0:
		if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
			return "", errInvalidToken("the Authorization header must carry a Bearer token")
		}
		return strings.TrimSpace(string(h[len(prefix):])), nil
	case form != "":
		return form, nil
	}
	return "", &Error{Code: "invalid_token", Description: "an access token is required", Status: fasthttp.StatusUnauthorized}
}

// validAccessToken verifies an access token of this tenant and that nothing revoked it since.
func (p *Provider) validAccessToken(te *tenantEntry, tok string) (tokens.Claims, *Error) {
	c, err := p.cfg.Keys.VerifyAccessToken(te.tenant.ID, p.issuer(te.tenant.ID), tok, p.cfg.Now())
	if err != nil {
		return nil, errInvalidToken("the access token is invalid")
	}
	if jti, _ := c["jti"].(string); jti != "" && p.cfg.Store.TokenRevoked(te.tenant.ID, jti) {
		return nil, errInvalidToken("the access token was revoked")
	}
	if sid, _ := c["sid"].(string); sid != "" {
		if s, err := fresh(p, func() (directory.Session, error) { return p.cfg.Store.Session(te.tenant.ID, sid) }); err != nil || !s.RevokedAt.IsZero() {
			return nil, errInvalidToken("the session has ended")
		}
	}
	return c, nil
}

// userinfo is OIDC Core section 5.3.
func (p *Provider) userinfo(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	tok, e := bearerToken(ctx)
	if e != nil {
		writeBearerError(ctx, e)
		return
	}
	c, e := p.validAccessToken(te, tok)
	if e != nil {
		writeBearerError(ctx, e)
		return
	}
	if !audienceHas(c["aud"], p.issuer(te.tenant.ID)) {
		writeBearerError(ctx, errInvalidToken("the access token is for another audience"))
		return
	}
	scopes := strings.Fields(stringClaim(c, "scope"))
	if !slices.Contains(scopes, "openid") {
		writeBearerError(ctx, &Error{Code: "insufficient_scope", Description: "the openid scope is required", Status: fasthttp.StatusForbidden})
		return
	}
	sub := stringClaim(c, "sub")
	u, err := fresh(p, func() (directory.User, error) { return p.cfg.Store.User(te.tenant.ID, sub) })
	if err != nil || u.Blocked {
		writeBearerError(ctx, errInvalidToken("the user no longer exists or is blocked"))
		return
	}
	out := userClaims(u, scopes)
	out["sub"] = u.ID
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func stringClaim(c tokens.Claims, name string) string {
	s, _ := c[name].(string)
	return s
}

func audienceHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, _ := x.(string); s == want {
				return true
			}
		}
	case []string:
		return slices.Contains(a, want)
	}
	return false
}
