package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge/tokens"
)

// Default lifetimes, when the app sets none.
const (
	defaultAccessTTL  = 15 * time.Minute
	defaultIDTTL      = 15 * time.Minute
	defaultRefreshTTL = 30 * 24 * time.Hour
)

// grantHandler issues tokens for one grant type. The registry below is the whole list.
type grantHandler func(p *Provider, ctx *fasthttp.RequestCtx, te *tenantEntry, app directory.App) (map[string]any, *Error)

var grants = map[string]grantHandler{
	"client_credentials": grantClientCredentials,
	"authorization_code": grantAuthorizationCode,
	"refresh_token":      grantRefreshToken,
}

// token is the token endpoint (RFC 6749 section 3.2).
func (p *Provider) token(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	if !strings.HasPrefix(string(ctx.Request.Header.ContentType()), "application/x-www-form-urlencoded") {
		writeJSONError(ctx, errInvalidRequest("the body must be application/x-www-form-urlencoded"))
		return
	}
	if e := repeatedParams(ctx.PostArgs(), "grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id", "client_secret"); e != nil {
		writeJSONError(ctx, e)
		return
	}
	gt := string(ctx.PostArgs().Peek("grant_type"))
	h, ok := grants[gt]
	if !ok {
		if gt == "" {
			writeJSONError(ctx, errInvalidRequest("grant_type is required"))
		} else {
			writeJSONError(ctx, errUnsupportedGrantType("grant_type %q is not supported", gt))
		}
		return
	}
	app, e := p.authenticateClient(ctx, te, false)
	if e != nil {
		writeJSONError(ctx, e)
		return
	}
	if !slices.Contains(app.GrantTypes, gt) {
		writeJSONError(ctx, errUnauthorizedClient("this client may not use the %s grant", gt))
		return
	}
	resp, e := h(p, ctx, te, app)
	if e != nil {
		if e.cause != nil {
			p.cfg.Log.Error("token request failed", "tenant", te.tenant.ID, "client_id", app.ClientID, "grant", gt, "error", e.cause)
		}
		writeJSONError(ctx, e)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, resp)
}

// repeatedParams refuses a request that repeats a parameter (RFC 6749 section 3.1).
func repeatedParams(args *fasthttp.Args, names ...string) *Error {
	for _, n := range names {
		if len(args.PeekMulti(n)) > 1 {
			return errInvalidRequest("parameter %s is repeated", n)
		}
	}
	return nil
}

func ttl(d directory.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

func newTokenID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (p *Provider) signAccessToken(te *tenantEntry, app directory.App, sub, sid string, scopes []string, now time.Time, audience string, extra map[string]any) (string, string, time.Duration, *Error) {
	exp := ttl(app.AccessTokenTTL, defaultAccessTTL)
	jti := newTokenID()
	claims := tokens.Claims{
		"iss": p.issuer(te.tenant.ID), "sub": sub, "aud": audience, "client_id": app.ClientID,
		"iat": now.Unix(), "exp": now.Add(exp).Unix(), "jti": jti,
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	if sid != "" {
		claims["sid"] = sid
	}
	addClaims(claims, extra)
	tok, err := p.cfg.Keys.SignJWT(te.tenant.ID, app.SigningAlg, "at+jwt", claims)
	if err != nil {
		return "", "", 0, errServer(err)
	}
	return tok, jti, exp, nil
}

// audience is the access token's aud: the resource the client asked for (RFC 8707), else the issuer,
// whose userinfo endpoint the token is good for.
func (p *Provider) audience(ctx *fasthttp.RequestCtx, te *tenantEntry) (string, *Error) {
	res := string(ctx.PostArgs().Peek("resource"))
	if res == "" {
		return p.issuer(te.tenant.ID), nil
	}
	if !strings.HasPrefix(res, "https://") && !strings.HasPrefix(res, "http://") || strings.Contains(res, "#") {
		return "", oauthError(fasthttp.StatusBadRequest, "invalid_target", "resource must be an absolute URI without a fragment")
	}
	return res, nil
}

// grantClientCredentials: RFC 6749 section 4.4. No user, no refresh token, no write.
func grantClientCredentials(p *Provider, ctx *fasthttp.RequestCtx, te *tenantEntry, app directory.App) (map[string]any, *Error) {
	if !app.Confidential() {
		return nil, errUnauthorizedClient("client_credentials needs a confidential client")
	}
	scopes, e := parseScope(string(ctx.PostArgs().Peek("scope")))
	if e != nil {
		return nil, e
	}
	if slices.Contains(scopes, "openid") || slices.Contains(scopes, "offline_access") {
		return nil, errInvalidScope("openid and offline_access need a user")
	}
	aud, e := p.audience(ctx, te)
	if e != nil {
		return nil, e
	}
	tok, _, exp, e := p.signAccessToken(te, app, app.ClientID, "", scopes, p.cfg.Now(), aud, nil)
	if e != nil {
		return nil, e
	}
	resp := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(exp.Seconds())}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	return resp, nil
}

// parseScope splits a scope parameter (RFC 6749 section 3.3), refusing characters outside NQCHAR.
func parseScope(s string) ([]string, *Error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, t := range strings.Split(s, " ") {
		if t == "" {
			continue
		}
		for _, c := range t {
			if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
				return nil, errInvalidScope("scope %q has a character not allowed", t)
			}
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Refresh tokens are "prt1.<family>.<secret>"; the family stores only the secret's hash.
const refreshPrefix = "prt1."

func newRefreshToken(family string) (token, hash string) {
	var b [32]byte
	rand.Read(b[:])
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	return refreshPrefix + family + "." + secret, hashSecret(secret)
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func parseRefreshToken(tok string) (family, hash string, ok bool) {
	rest, ok := strings.CutPrefix(tok, refreshPrefix)
	if !ok {
		return "", "", false
	}
	family, secret, ok := strings.Cut(rest, ".")
	if !ok || family == "" || secret == "" || len(tok) > 512 {
		return "", "", false
	}
	return family, hashSecret(secret), true
}

// propose runs a write for a token request, mapping cluster conditions to OAuth errors.
func (p *Provider) propose(ops ...directory.Op) (*directory.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.cfg.Write.Propose(ctx, directory.NewCommand(p.cfg.Now(), "edge", ops...))
}

func writeFailure(err error) *Error {
	if cluster.IsRetryable(err) {
		return errTemporarilyUnavailable(err)
	}
	return errServer(err)
}
