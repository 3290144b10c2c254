package proxy

import (
	"bytes"
	"errors"
	"net/url"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// refusal is how an unauthenticated browser is answered: the reverse proxy and forward-auth for
// Traefik, Caddy and Envoy redirect it; nginx's auth_request only understands 2xx, 401 and 403, so it
// gets 401 with the sign-in address in Location for its error_page to use.
type refusal int

const (
	redirectBrowsers refusal = iota
	locationOn401
)

// check decides a request for the route (method and normalised path of the original request): nil
// identity and true for a public path, the identity and true when allowed; otherwise it writes the
// answer (302 or 401 when not signed in, 403 when not allowed, 503 when the replica failed) and returns
// false. A bearer token, when sent, is what counts; otherwise the host's session cookie. requestURI is
// where a browser returns after signing in; nil means this request's own (made only when needed).
func (p *Proxy) check(ctx *fasthttp.RequestCtx, rt *directory.Route, method, path string, requestURI []byte, how refusal) (*identity, bool) {
	if public(rt, path) {
		return nil, true
	}
	token, sent := bearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
	var id *identity
	var err error
	switch {
	case len(token) > 0:
		id, err = p.authenticate(rt, token)
	case !sent:
		id, err = p.cookieSession(ctx, rt)
	}
	if err != nil {
		if !errors.Is(err, errRefused) && !errors.Is(err, errInvalidToken) {
			ref := p.fail(rt, "authenticating", err)
			page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
			return nil, false
		}
		p.cfg.Log.Debug("proxy: credentials refused", "host", rt.Host, "tenant", rt.Tenant, "err", err)
		id = nil
	}
	if id == nil {
		p.unauthenticated(ctx, rt, sent, requestURI, how)
		return nil, false
	}
	if !allowed(rt.Allow, method, path, id.groups) {
		page(ctx, fasthttp.StatusForbidden, "Forbidden", "You are signed in, but not allowed here.", "")
		return nil, false
	}
	return id, true
}

// unauthenticated answers a request without usable credentials: the sign-in address for a browser
// (Accept names text/html), 401 with WWW-Authenticate: Bearer otherwise (RFC 6750 section 3).
func (p *Proxy) unauthenticated(ctx *fasthttp.RequestCtx, rt *directory.Route, sentToken bool, requestURI []byte, how refusal) {
	if !sentToken && bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderAccept), []byte("text/html")) {
		if requestURI == nil {
			requestURI = ctx.URI().RequestURI()
		}
		signIn := pathSignIn + "?rd=" + url.QueryEscape(string(requestURI))
		if how == redirectBrowsers {
			redirect(ctx, signIn)
			return
		}
		ctx.Response.Header.Set(fasthttp.HeaderLocation, signIn)
	}
	challenge := `Bearer realm="` + rt.Host + `"`
	if sentToken {
		challenge += `, error="invalid_token"`
	}
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, challenge)
	page(ctx, fasthttp.StatusUnauthorized, "Unauthorized", "Sign in to use this app.", "")
}

// reservedPath answers Postern's own paths on a routed host.
func (p *Proxy) reservedPath(ctx *fasthttp.RequestCtx, rt *directory.Route, path string) {
	switch path {
	case pathSignIn:
		p.signIn(ctx, rt)
	case pathCallback:
		p.callback(ctx, rt)
	case pathSignOut:
		p.signOut(ctx, rt)
	default:
		if forwardAuthPath(path) {
			p.forwardAuth(ctx, path)
			return
		}
		page(ctx, fasthttp.StatusNotFound, "Not found", "There is nothing here.", "")
	}
}
