package oidc

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// grantRefreshToken: RFC 6749 section 6, with rotation: every use returns a new refresh token, and the
// reuse of a rotated one revokes the whole family (one raft write: refresh.rotate, decided in Apply).
func grantRefreshToken(p *Provider, ctx *fasthttp.RequestCtx, te *tenantEntry, app directory.App) (map[string]any, *Error) {
	family, hash, ok := parseRefreshToken(string(ctx.PostArgs().Peek("refresh_token")))
	if !ok {
		return nil, errInvalidGrant("the refresh token is invalid")
	}
	f, err := fresh(p, func() (directory.RefreshFamily, error) { return p.cfg.Store.RefreshFamily(te.tenant.ID, family) })
	if err != nil || f.ClientID != app.ClientID {
		return nil, errInvalidGrant("the refresh token is invalid")
	}
	scopes := f.Scopes
	if req, e := parseScope(string(ctx.PostArgs().Peek("scope"))); e != nil {
		return nil, e
	} else if len(req) > 0 {
		for _, s := range req {
			if !slices.Contains(f.Scopes, s) {
				return nil, errInvalidScope("scope %q was not granted", s)
			}
		}
		scopes = req
	}
	user, err := fresh(p, func() (directory.User, error) { return p.cfg.Store.User(te.tenant.ID, f.UserID) })
	if err != nil || user.Blocked {
		return nil, errInvalidGrant("the user cannot sign in")
	}
	sess, err := p.cfg.Store.Session(te.tenant.ID, f.SessionID)
	if f.SessionID != "" && (err != nil || !sess.RevokedAt.IsZero()) {
		return nil, errInvalidGrant("the session has ended")
	}
	next, nextHash := newRefreshToken(family)
	res, err := p.propose(directory.MakeOp(directory.OpRefreshRotate, directory.RefreshRotate{Tenant: te.tenant.ID, ID: family,
		Presented: hash, Next: nextHash}))
	if err != nil {
		if _, ok := directory.AsError(err); ok {
			return nil, errInvalidGrant("the refresh token is invalid")
		}
		return nil, writeFailure(err)
	}
	var out directory.RotateOutcome
	if err := json.Unmarshal(res.Outputs[0], &out); err != nil {
		return nil, errServer(err)
	}
	if out.Reused {
		p.cfg.Log.Warn("refresh token reused; family revoked", "tenant", te.tenant.ID, "client_id", app.ClientID, "family", family)
		return nil, errInvalidGrant("the refresh token is invalid")
	}
	now := p.cfg.Now()
	aud, e := p.audience(ctx, te)
	if e != nil {
		return nil, e
	}
	access, _, exp, e := p.signAccessToken(te, app, user.ID, f.SessionID, scopes, now, aud, f.Claims)
	if e != nil {
		return nil, e
	}
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(exp.Seconds()), "refresh_token": next}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	if slices.Contains(scopes, "openid") {
		idt, e := p.signIDToken(te, app, user, f.SessionID, sess.AuthTime, "", sess.AMR, scopes, access, now, f.Claims)
		if e != nil {
			return nil, e
		}
		resp["id_token"] = idt
	}
	return resp, nil
}
