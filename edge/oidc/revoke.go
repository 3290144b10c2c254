package oidc

import (
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// revoke is RFC 7009. Whatever the token, the answer is 200 unless the client failed to authenticate:
// an invalid or foreign token is simply not revoked (section 2.2).
func (p *Provider) revoke(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	app, e := p.authenticateClient(ctx, te, false)
	if e != nil {
		writeJSONError(ctx, e)
		return
	}
	tok := string(ctx.PostArgs().Peek("token"))
	if tok == "" {
		writeJSONError(ctx, errInvalidRequest("token is required"))
		return
	}
	var op *directory.Op
	if family, _, ok := parseRefreshToken(tok); ok {
		if f, err := p.cfg.Store.RefreshFamily(te.tenant.ID, family); err == nil && f.ClientID == app.ClientID && f.RevokedAt.IsZero() {
			o := directory.MakeOp(directory.OpRefreshRevoke, directory.Ref{Tenant: te.tenant.ID, ID: family})
			op = &o
		}
	} else if c, err := p.cfg.Keys.VerifyAccessToken(te.tenant.ID, p.issuer(te.tenant.ID), tok, p.cfg.Now()); err == nil &&
		stringClaim(c, "client_id") == app.ClientID {
		exp := time.Unix(int64(numberClaim(c, "exp")), 0)
		o := directory.MakeOp(directory.OpTokenRevoke, directory.RevokedToken{Tenant: te.tenant.ID, JTI: stringClaim(c, "jti"), ExpiresAt: exp})
		op = &o
	}
	if op != nil {
		if _, err := p.propose(*op); err != nil {
			if _, refused := directory.AsError(err); !refused {
				writeJSONError(ctx, writeFailure(err))
				return
			}
		}
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(fasthttp.StatusOK)
}

func numberClaim(c map[string]any, name string) float64 {
	switch v := c[name].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	return 0
}
