package oidc

import (
	"strings"

	"github.com/valyala/fasthttp"
)

// introspect is RFC 7662, for confidential clients (resource servers) of the tenant. An inactive,
// foreign or malformed token is {"active": false} and nothing else (section 2.2).
func (p *Provider) introspect(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	if _, e := p.authenticateClient(ctx, te, true); e != nil {
		writeJSONError(ctx, e)
		return
	}
	tok := string(ctx.PostArgs().Peek("token"))
	if tok == "" {
		writeJSONError(ctx, errInvalidRequest("token is required"))
		return
	}
	inactive := map[string]any{"active": false}
	if family, hash, ok := parseRefreshToken(tok); ok {
		f, err := p.cfg.Store.RefreshFamily(te.tenant.ID, family)
		if err != nil || !f.RevokedAt.IsZero() || f.Current != hash || !p.cfg.Now().Before(f.ExpiresAt) {
			writeJSON(ctx, fasthttp.StatusOK, inactive)
			return
		}
		out := map[string]any{"active": true, "token_type": "refresh_token", "client_id": f.ClientID, "sub": f.UserID,
			"exp": f.ExpiresAt.Unix(), "iat": f.CreatedAt.Unix(), "iss": p.issuer(te.tenant.ID)}
		if len(f.Scopes) > 0 {
			out["scope"] = strings.Join(f.Scopes, " ")
		}
		writeJSON(ctx, fasthttp.StatusOK, out)
		return
	}
	c, e := p.validAccessToken(te, tok)
	if e != nil {
		writeJSON(ctx, fasthttp.StatusOK, inactive)
		return
	}
	out := map[string]any{"active": true, "token_type": "Bearer"}
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "sid"} {
		if v, ok := c[k]; ok {
			out[k] = v
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}
