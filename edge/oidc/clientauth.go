package oidc

import (
	"bytes"
	"encoding/base64"
	"net/url"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// Client authentication methods (RFC 6749 section 2.3.1, OIDC Core section 9).
var clientAuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}

// authenticateClient identifies the client of a token, revocation or introspection request.
// Confidential clients must prove their secret (one method only, RFC 6749 section 2.3); public clients
// name themselves with client_id and must then be held to PKCE by the grant. requireConfidential refuses
// public clients (introspection).
func (p *Provider) authenticateClient(ctx *fasthttp.RequestCtx, te *tenantEntry, requireConfidential bool) (directory.App, *Error) {
	if id, ok := ctx.UserValue(internalClient{}).(string); ok {
		app, ok := p.app(te, id)
		if !ok {
			return directory.App{}, errInvalidClient("client authentication failed")
		}
		if _, routed, err := p.withRouteCallbacks(te.tenant.ID, app); err != nil || !routed {
			return directory.App{}, errInvalidClient("client authentication failed")
		}
		return app, nil
	}
	args := ctx.PostArgs()
	if args.Has("client_assertion") || args.Has("client_assertion_type") {
		return p.authenticateAssertion(ctx, te)
	}
	var id, secret string
	basic := false
	if h := ctx.Request.Header.Peek("Authorization"); len(h) > 0 {
		const prefix = "Basic "
		if len(h) < len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
			return directory.App{}, errInvalidClient("unsupported Authorization scheme")
		}
		raw, err := base64.StdEncoding.DecodeString(string(h[len(prefix):]))
		if err != nil {
			return directory.App{}, errInvalidClient("malformed Basic credentials")
		}
		user, pass, ok := bytes.Cut(raw, []byte(":"))
		if !ok {
			return directory.App{}, errInvalidClient("malformed Basic credentials")
		}
		// RFC 6749 section 2.3.1: both parts are form-urlencoded.
		u, err1 := url.QueryUnescape(string(user))
		s, err2 := url.QueryUnescape(string(pass))
		if err1 != nil || err2 != nil {
			return directory.App{}, errInvalidClient("malformed Basic credentials")
		}
		id, secret, basic = u, s, true
		if args.Has("client_secret") {
			return directory.App{}, errInvalidRequest("use one client authentication method, not two")
		}
		if pid := args.Peek("client_id"); len(pid) > 0 && string(pid) != id {
			return directory.App{}, errInvalidRequest("client_id does not match the authenticated client")
		}
	} else {
		id, secret = string(args.Peek("client_id")), string(args.Peek("client_secret"))
	}
	if id == "" {
		return directory.App{}, errInvalidClient("client authentication is required")
	}
	app, ok := p.app(te, id)
	if !ok {
		return directory.App{}, errInvalidClient("client authentication failed")
	}
	if app.Confidential() {
		if secret == "" || !directory.AppSecretMatches(app, secret) {
			return directory.App{}, errInvalidClient("client authentication failed")
		}
		return app, nil
	}
	if requireConfidential {
		return directory.App{}, errInvalidClient("a public client cannot use this endpoint")
	}
	if basic || secret != "" {
		return directory.App{}, errInvalidClient("a public client has no secret")
	}
	return app, nil
}
