package proxy

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/flows"
)

// OnProxyRequest: a tenant's extensions may deny a request the route's rules let through, or add headers
// for the upstream. A tenant without such extensions pays one cache lookup per request.

// proxyExtBudget bounds the extension calls of one request, whatever each extension's own timeout.
const proxyExtBudget = 5 * time.Second

// forwardedHeaders are the request headers an extension is shown (never credentials: flows drops
// those whatever is passed).
var forwardedHeaders = []string{fasthttp.HeaderUserAgent, fasthttp.HeaderAccept, fasthttp.HeaderAcceptLanguage,
	fasthttp.HeaderContentType, fasthttp.HeaderReferer, fasthttp.HeaderOrigin}

// proxyExtensions lists the tenant's OnProxyRequest extensions, from a cache dropped on any extension
// change.
func (p *Proxy) proxyExtensions(tenant string) ([]directory.Extension, error) {
	if p.cfg.Extensions == nil {
		return nil, nil
	}
	if exts, ok := p.exts.get(tenant); ok {
		return exts, nil
	}
	gen := p.gen.Load()
	all, err := p.cfg.Store.Extensions(tenant)
	if err != nil {
		return nil, err
	}
	exts := flows.Subscribed(all, flows.EventProxyRequest)
	if p.gen.Load() == gen {
		p.exts.put(tenant, exts)
	}
	return exts, nil
}

// runProxyExtensions asks the tenant's extensions about an allowed request. It answers the request
// itself (and returns false) on a denial or a failure under on_error fail; otherwise it returns the
// headers to add upstream. Method and path are bytes so that a tenant without such extensions pays
// for no string copies.
func (p *Proxy) runProxyExtensions(ctx *fasthttp.RequestCtx, e *routeEntry, method, path []byte, id *identity) (map[string]string, bool) {
	rt := e.route
	exts, err := p.proxyExtensions(rt.Tenant)
	if err != nil {
		ref := p.fail(rt, "listing extensions", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
		return nil, false
	}
	if len(exts) == 0 {
		return nil, true
	}
	in := flows.ProxyRequestInput{Host: rt.Host, Method: string(method), Path: string(path), Headers: map[string]string{}}
	in.Tenant, in.CorrelationID, in.ClientIP = rt.Tenant, directory.NewID()[:12], ctx.RemoteIP().String()
	if app := e.app.Load(); app != nil {
		in.App = *app
	} else if app, err := p.cfg.Store.AppByName(rt.Tenant, rt.App); err == nil {
		e.app.Store(&app) // the entry is dropped on any app change
		in.App = app
	}
	for _, h := range forwardedHeaders {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			in.Headers[h] = string(v)
		}
	}
	if id != nil {
		in.User = &flows.ProxyUser{ID: id.sub, Email: id.email, Groups: id.groups}
	}
	c, cancel := context.WithTimeout(context.Background(), proxyExtBudget)
	defer cancel()
	d, err := p.cfg.Extensions.ProxyRequest(c, exts, in)
	if err != nil {
		var xe *flows.ExtensionError
		if errors.As(err, &xe) {
			p.cfg.Log.Warn("proxy: an extension stopped the request (on_error: fail)", "host", rt.Host, "tenant", rt.Tenant,
				"extension", xe.Extension, "ref", in.CorrelationID, "err", xe.Err)
		} else {
			p.cfg.Log.Error("proxy: running extensions", "host", rt.Host, "tenant", rt.Tenant, "ref", in.CorrelationID, "err", err)
		}
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "This request could not be checked right now. Try again in a moment.", in.CorrelationID)
		return nil, false
	}
	if d.Deny != nil {
		msg := d.Deny.Message
		if msg == "" {
			msg = "This request is not allowed."
		}
		page(ctx, d.Deny.Status, strconv.Itoa(d.Deny.Status)+" "+fasthttp.StatusMessage(d.Deny.Status), msg, "")
		return nil, false
	}
	return d.Headers, true
}
