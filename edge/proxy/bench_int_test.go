package proxy_test

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/cluster/clustertest"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge/proxy"
)

const benchHost = "bench.acme.test"

// BenchmarkProxy compares requests through the proxy (decision, revocation check, identity headers,
// assertion), with a bearer token and with a host session cookie, with the same requests through a bare
// fasthttp reverse proxy to the same upstream: a minimal fasthttp app, so the figure is the proxies' cost
// rather than an upstream's work on the extra headers.
func BenchmarkProxy(b *testing.B) {
	e := newEnv(b, func(c *proxy.Config) { c.KEK = clustertest.KEK(b) })
	tok, _ := e.token("acme", "ann")
	e.propose(directory.MakeOp(directory.OpSessionPut, directory.Session{ID: "s-bench", Tenant: "acme", UserID: "ann",
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}))
	cookie, err := proxy.HostSessionCookie(e.proxy, benchHost, "acme", "ann", "s-bench", time.Now().Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	upstream := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if len(ctx.Request.Header.Peek("X-Forwarded-User")) == 0 && ctx.Request.Header.Peek("X-Forwarded-For") != nil {
			ctx.SetStatusCode(fasthttp.StatusTeapot) // the proxy must have attached the identity
		}
		ctx.SetBodyString("hello from the upstream, a small answer of about a hundred bytes, like a JSON status")
	}}
	go upstream.Serve(upLn)
	b.Cleanup(func() { upstream.Shutdown() })
	e.propose(directory.MakeOp(directory.OpRoutePut, directory.Route{Host: benchHost, Tenant: "acme", Upstream: "http://" + upLn.Addr().String(),
		App: "web", Allow: directory.Allow{Authenticated: true}}))

	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &fasthttp.HostClient{Addr: upLn.Addr().String()}
	bare := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := up.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}}
	go bare.Serve(bareLn)
	b.Cleanup(func() { bare.Shutdown() })

	// Both get the very same request, credentials included: the figure is the proxies' cost.
	run := func(b *testing.B, addr, header, value string) {
		c := &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 10 * time.Second}
		do := func() int {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + benchHost + "/bench")
			req.Header.Set(header, value)
			if err := c.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			return resp.StatusCode()
		}
		if s := do(); s != 200 { // check the result before the timed loop
			b.Fatalf("status %d", s)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				do()
			}
		})
	}
	bearer, session := "Bearer "+tok, "postern_proxy="+cookie
	b.Run("bare-bearer", func(b *testing.B) { run(b, bareLn.Addr().String(), "Authorization", bearer) })
	b.Run("postern-bearer", func(b *testing.B) { run(b, e.base[len("http://"):], "Authorization", bearer) })
	b.Run("bare-cookie", func(b *testing.B) { run(b, bareLn.Addr().String(), "Cookie", session) })
	b.Run("postern-cookie", func(b *testing.B) { run(b, e.base[len("http://"):], "Cookie", session) })
}
