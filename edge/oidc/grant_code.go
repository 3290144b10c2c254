package oidc

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/tokens"
)

// grantAuthorizationCode: RFC 6749 section 4.1.3 with PKCE (RFC 7636). The redemption is one raft write
// (code.redeem, plus the new refresh-token family), which is where "used once" is decided even when two
// edges race. A second use fails and revokes what the first issued (section 4.1.2).
func grantAuthorizationCode(p *Provider, ctx *fasthttp.RequestCtx, te *tenantEntry, app directory.App) (map[string]any, *Error) {
	args := ctx.PostArgs()
	code := string(args.Peek("code"))
	if code == "" {
		return nil, errInvalidRequest("code is required")
	}
	g, err := p.openCode(te.tenant.ID, code)
	if err != nil {
		return nil, errInvalidGrant("the authorization code is invalid")
	}
	now := p.cfg.Now()
	if g.ClientID != app.ClientID {
		return nil, errInvalidGrant("the authorization code was issued to another client")
	}
	if string(args.Peek("redirect_uri")) != g.RedirectURI {
		return nil, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	if !now.Before(g.ExpiresAt) {
		return nil, errInvalidGrant("the authorization code has expired")
	}
	verifier := string(args.Peek("code_verifier"))
	switch {
	case g.Challenge == "" && verifier != "":
		return nil, errInvalidGrant("code_verifier sent but the authorization request had no code_challenge")
	case g.Challenge == "" && !app.Confidential():
		return nil, errInvalidGrant("a public client must use PKCE")
	case g.Challenge != "" && !verifyPKCE(g.Challenge, verifier):
		return nil, errInvalidGrant("code_verifier does not match the code_challenge")
	}
	user, err := freshAfter(p, g.Index, func() (directory.User, error) { return p.cfg.Store.User(te.tenant.ID, g.Subject) })
	if err != nil || user.Blocked {
		return nil, errInvalidGrant("the user cannot sign in")
	}
	if sess, err := freshAfter(p, g.Index, func() (directory.Session, error) { return p.cfg.Store.Session(te.tenant.ID, g.SessionID) }); err != nil || !sess.RevokedAt.IsZero() {
		return nil, errInvalidGrant("the session has ended")
	}
	aud, e := p.audience(ctx, te)
	if e != nil {
		return nil, e
	}
	access, jti, exp, e := p.signAccessToken(te, app, user.ID, g.SessionID, g.Scopes, now, aud, g.Claims)
	if e != nil {
		return nil, e
	}
	red := directory.CodeRedemption{Tenant: te.tenant.ID, CodeID: g.ID, ClientID: app.ClientID, SessionID: g.SessionID,
		AccessJTI: jti, ExpiresAt: g.ExpiresAt}
	ops := []directory.Op{}
	var refresh string
	if slices.Contains(app.GrantTypes, "refresh_token") {
		red.FamilyID = directory.NewID()
		var hash string
		refresh, hash = newRefreshToken(red.FamilyID)
		ops = append(ops, directory.MakeOp(directory.OpRefreshPut, directory.RefreshFamily{ID: red.FamilyID, Tenant: te.tenant.ID,
			UserID: user.ID, ClientID: app.ClientID, SessionID: g.SessionID, Scopes: g.Scopes, Claims: g.Claims, Current: hash,
			CreatedAt: now, ExpiresAt: now.Add(ttl(app.RefreshTokenTTL, defaultRefreshTTL))}))
	}
	ops = append([]directory.Op{directory.MakeOp(directory.OpCodeRedeem, red)}, ops...)
	if _, err := p.propose(ops...); err != nil {
		if de, ok := directory.AsError(err); ok && de.Code == directory.CodeConflict {
			p.revokeFirstUse(te.tenant.ID, g.ID)
			return nil, errInvalidGrant("the authorization code was already used")
		}
		if _, ok := directory.AsError(err); ok {
			return nil, errInvalidGrant("the authorization code is invalid or expired")
		}
		return nil, writeFailure(err)
	}
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(exp.Seconds())}
	if len(g.Scopes) > 0 {
		resp["scope"] = strings.Join(g.Scopes, " ")
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	if slices.Contains(g.Scopes, "openid") {
		idt, e := p.signIDToken(te, app, user, g.SessionID, g.AuthTime, g.Nonce, g.AMR, g.Scopes, access, now, g.Claims)
		if e != nil {
			return nil, e
		}
		resp["id_token"] = idt
	}
	return resp, nil
}

// revokeFirstUse revokes the refresh-token family and the access token the first redemption issued.
func (p *Provider) revokeFirstUse(tenant, codeID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.cfg.Write.Barrier(ctx); err != nil {
		p.cfg.Log.Warn("code reuse: cannot reach the leader to revoke the first use", "tenant", tenant, "error", err)
		return
	}
	first, err := p.cfg.Store.CodeRedemption(tenant, codeID)
	if err != nil {
		return
	}
	var ops []directory.Op
	if first.FamilyID != "" {
		ops = append(ops, directory.MakeOp(directory.OpRefreshRevoke, directory.Ref{Tenant: tenant, ID: first.FamilyID}))
	}
	if first.AccessJTI != "" {
		ops = append(ops, directory.MakeOp(directory.OpTokenRevoke, directory.RevokedToken{Tenant: tenant, JTI: first.AccessJTI,
			ExpiresAt: p.cfg.Now().Add(24 * time.Hour)}))
	}
	if len(ops) > 0 {
		if _, err := p.propose(ops...); err != nil {
			p.cfg.Log.Warn("code reuse: revoking the first use failed", "tenant", tenant, "error", err)
		}
	}
	p.cfg.Log.Warn("authorization code used twice; revoked what its first use issued", "tenant", tenant, "client_id", first.ClientID)
}

// signIDToken builds an ID token (OIDC Core section 2) with the claims the scopes allow (section 5.4).
func (p *Provider) signIDToken(te *tenantEntry, app directory.App, u directory.User, sid string, authTime time.Time,
	nonce string, amr, scopes []string, accessToken string, now time.Time, extra map[string]any) (string, *Error) {
	alg := app.SigningAlg
	if alg == "" {
		alg = "ES256"
	}
	c := tokens.Claims{
		"iss": p.issuer(te.tenant.ID), "sub": u.ID, "aud": app.ClientID, "azp": app.ClientID,
		"iat": now.Unix(), "exp": now.Add(ttl(app.IDTokenTTL, defaultIDTTL)).Unix(),
		"auth_time": authTime.Unix(),
	}
	if sid != "" {
		c["sid"] = sid
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if len(amr) > 0 {
		c["amr"] = amr
	}
	if accessToken != "" {
		c["at_hash"] = tokens.AtHash(alg, accessToken)
	}
	for k, v := range userClaims(u, scopes) {
		c[k] = v
	}
	addClaims(c, extra)
	tok, err := p.cfg.Keys.SignJWT(te.tenant.ID, alg, "JWT", c)
	if err != nil {
		return "", errServer(err)
	}
	return tok, nil
}

// userClaims are the standard claims a user's scopes allow (OIDC Core section 5.4).
func userClaims(u directory.User, scopes []string) map[string]any {
	c := map[string]any{}
	if slices.Contains(scopes, "email") && u.Email != "" {
		c["email"], c["email_verified"] = u.Email, u.EmailVerified
	}
	if slices.Contains(scopes, "profile") {
		var prof map[string]any
		b, _ := json.Marshal(u.Profile)
		json.Unmarshal(b, &prof)
		for k, v := range prof {
			if k != "phone_number" {
				c[k] = v
			}
		}
		if u.Username != "" {
			c["preferred_username"] = u.Username
		}
		c["updated_at"] = u.UpdatedAt.Unix()
	}
	if slices.Contains(scopes, "phone") && u.Profile.PhoneNumber != "" {
		c["phone_number"] = u.Profile.PhoneNumber
	}
	return c
}
