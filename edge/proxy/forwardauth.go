package proxy

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// Forward-auth: a proxy in front of the app (nginx, Traefik, Caddy, Envoy) asks Postern about each
// request and forwards it itself. The answer is the reverse proxy's decision without the forwarding:
// 200 with the identity headers for the proxy to copy upstream, or the refusal the client should see.
//
// Where the original request is read from, in order:
//   - host: X-Forwarded-Host (Traefik, Caddy; the nginx configuration sets it), else Host (Envoy keeps
//     the original authority);
//   - on /.postern/auth_request (nginx): method and URI from X-Original-Method and X-Original-URI (the
//     configuration sets them; a missing URI is refused, not read as "/");
//   - on /.postern/auth: X-Forwarded-Method and X-Forwarded-Uri (Traefik, Caddy), else the request's
//     own method and what follows /.postern/auth in the path (Envoy's path_prefix puts it there);
//   - each endpoint ignores the other's headers, since some callers pass the client's headers along.
//
// The caller is trusted for these headers: it is the proxy the operator put in front of the app, and
// whoever else calls the endpoint learns only what its own credentials allow.

func forwardAuthPath(path string) bool {
	return path == pathAuth || path == pathAuthRequest || strings.HasPrefix(path, pathAuth+"/")
}

func firstValue(h []byte) []byte {
	if i := bytes.IndexByte(h, ','); i >= 0 {
		h = h[:i]
	}
	return bytes.TrimSpace(h)
}

// forwardAuth answers /.postern/auth (redirects for browsers) and /.postern/auth_request (nginx: 401
// with Location).
func (p *Proxy) forwardAuth(ctx *fasthttp.RequestCtx, path string) {
	h := &ctx.Request.Header
	host := firstValue(h.Peek(fasthttp.HeaderXForwardedHost))
	if len(host) == 0 {
		host = ctx.Host()
	}
	e := p.route(host)
	if e.route == nil {
		page(ctx, fasthttp.StatusNotFound, "Not found", "No route of any tenant has the host "+safeText(host)+".", "")
		return
	}
	// Each caller's own headers only: nginx's auth_request passes the client's headers along, so a
	// client-sent X-Forwarded-Uri must mean nothing on the nginx endpoint, and X-Original-URI nothing
	// on the other.
	var method, uri []byte
	if path == pathAuthRequest {
		method, uri = firstValue(h.Peek("X-Original-Method")), h.Peek("X-Original-URI")
		if len(uri) == 0 {
			p.cfg.Log.Warn("proxy: auth_request without X-Original-URI; see the README's nginx configuration", "host", string(host))
			page(ctx, fasthttp.StatusBadRequest, "Bad request", "X-Original-URI is missing: the proxy in front must send the original request URI.", "")
			return
		}
	} else {
		method, uri = firstValue(h.Peek("X-Forwarded-Method")), h.Peek("X-Forwarded-Uri")
		if len(uri) == 0 {
			uri = bytes.TrimPrefix(ctx.RequestURI(), []byte(pathAuth)) // Envoy's path_prefix
		}
	}
	if len(method) == 0 {
		method = ctx.Method()
	}
	if len(uri) == 0 || uri[0] != '/' {
		uri = []byte("/")
	}
	var u fasthttp.URI
	if err := u.Parse(host, uri); err != nil {
		page(ctx, fasthttp.StatusBadRequest, "Bad request", "The original request's URI does not parse.", "")
		return
	}
	origPath := string(u.Path())
	if reserved(origPath) {
		ctx.SetStatusCode(fasthttp.StatusOK) // Postern's own pages: the caller routes them to Postern
		return
	}
	how := redirectBrowsers
	if path == pathAuthRequest {
		how = locationOn401
	}
	id, ok := p.check(ctx, e.route, string(method), origPath, uri, how)
	if !ok {
		return
	}
	added, ok := p.runProxyExtensions(ctx, e, method, []byte(origPath), id)
	if !ok {
		return
	}
	for k, v := range added { // for the proxy in front to copy upstream, like the identity headers
		ctx.Response.Header.Set(k, v)
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetStatusCode(fasthttp.StatusOK)
	if id == nil {
		return
	}
	a, err := p.assertion(e.route, id)
	if err != nil {
		ref := p.fail(e.route, "signing the assertion", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
		return
	}
	setIdentity(ctx.Response.Header.SetCanonical, id, a.jwt)
}
