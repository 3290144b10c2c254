package proxy_test

import (
	"math"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/cluster/clustertest"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge/proxy"
)

const benchHost = "bench.acme.test"

// benchSetup is the in-process proxy of BenchmarkProxy and TestProxyRequestCostsNothing: a route of
// tenant acme to a minimal fasthttp upstream (which answers 418 when a request reaches it without the
// identity), a bearer token and a host session cookie of ann, and a bare fasthttp reverse proxy to the
// same upstream.
type benchSetup struct {
	edge, bare      string // host:port
	bearer, session string // Authorization and Cookie header values
}

func newBenchSetup(t testing.TB) benchSetup {
	e := newEnv(t, func(c *proxy.Config) { c.KEK = clustertest.KEK(t) })
	tok, _ := e.token("acme", "ann")
	e.propose(directory.MakeOp(directory.OpSessionPut, directory.Session{ID: "s-bench", Tenant: "acme", UserID: "ann",
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}))
	cookie, err := proxy.HostSessionCookie(e.proxy, benchHost, "acme", "ann", "s-bench", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if len(ctx.Request.Header.Peek("X-Forwarded-User")) == 0 && ctx.Request.Header.Peek("X-Forwarded-For") != nil {
			ctx.SetStatusCode(fasthttp.StatusTeapot) // the proxy must have attached the identity
		}
		ctx.SetBodyString("hello from the upstream, a small answer of about a hundred bytes, like a JSON status")
	}}
	go upstream.Serve(upLn)
	t.Cleanup(func() { upstream.Shutdown() })
	e.propose(directory.MakeOp(directory.OpRoutePut, directory.Route{Host: benchHost, Tenant: "acme", Upstream: "http://" + upLn.Addr().String(),
		App: "web", Allow: directory.Allow{Authenticated: true}}))

	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &fasthttp.HostClient{Addr: upLn.Addr().String()}
	bare := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := up.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}}
	go bare.Serve(bareLn)
	t.Cleanup(func() { bare.Shutdown() })
	return benchSetup{edge: e.base[len("http://"):], bare: bareLn.Addr().String(), bearer: "Bearer " + tok, session: "postern_proxy=" + cookie}
}

// client returns a function that sends one GET of uri to addr with the header and returns its status.
func (benchSetup) client(t testing.TB, addr, uri, header, value string) func() int {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 10 * time.Second}
	return func() int {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(uri)
		req.Header.Set(header, value)
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode()
	}
}

// BenchmarkProxy compares requests through the proxy (decision, revocation check, identity headers,
// assertion), with a bearer token and with a host session cookie, with the same requests through a bare
// fasthttp reverse proxy to the same upstream: a minimal fasthttp app, so the figure is the proxies' cost
// rather than an upstream's work on the extra headers.
func BenchmarkProxy(b *testing.B) {
	s := newBenchSetup(b)
	// Both get the very same request, credentials included: the figure is the proxies' cost.
	run := func(b *testing.B, addr, header, value string) {
		do := s.client(b, addr, "http://"+benchHost+"/bench", header, value)
		if st := do(); st != 200 { // check the result before the timed loop
			b.Fatalf("status %d", st)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				do()
			}
		})
	}
	b.Run("bare-bearer", func(b *testing.B) { run(b, s.bare, "Authorization", s.bearer) })
	b.Run("postern-bearer", func(b *testing.B) { run(b, s.edge, "Authorization", s.bearer) })
	b.Run("bare-cookie", func(b *testing.B) { run(b, s.bare, "Cookie", s.session) })
	b.Run("postern-cookie", func(b *testing.B) { run(b, s.edge, "Cookie", s.session) })
}

// TestProxyRequestCostsNothing: once warm, a request forwarded for a signed-in user allocates nothing in
// the whole process (client, proxy and upstream), whether it carries a bearer token or the session
// cookie, and however long its path is (a string copy of a path past 32 bytes is an allocation).
func TestProxyRequestCostsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under -race; make test runs this test again without it")
	}
	s := newBenchSetup(t)
	uri := "http://" + benchHost + "/api/v1/customers/0123456789/orders/9876543210?expand=lines&page=2"
	for _, c := range []struct{ header, value string }{{"Authorization", s.bearer}, {"Cookie", s.session}} {
		do := s.client(t, s.edge, uri, c.header, c.value)
		for range 100 { // warm: caches filled, pools stocked, assertion signed
			if st := do(); st != 200 {
				t.Fatalf("%s: status %d", c.header, st)
			}
		}
		// The least of five counts: a burst of the process's own (a pool emptied by a collection, a new
		// connection) can lift one count, a cost of every request lifts all five.
		least := math.Inf(1)
		for range 5 {
			least = min(least, testing.AllocsPerRun(200, func() { do() }))
		}
		if least > 0 {
			t.Errorf("%s: %.0f allocations per request", c.header, least)
		}
	}
}
