package bench

import (
	"time"

	"github.com/valyala/fasthttp"
)

// The proxy scenario's peers: the upstream app Postern forwards to, and the bare reverse proxy it is
// compared with. Each runs in a process of its own (cmd/postern-bench-peer), never in the bench's: in
// here they would share the Go scheduler, the garbage collector and the CPU accounting with the load
// generator's goroutines, so the upstream's answers would wait behind the load generator and the bare
// proxy would not be measured as the postern process is, alone in its process.

// peerPackage is the command that runs a peer.
const peerPackage = "postern.dev/postern/bench/cmd/postern-bench-peer"

// upstreamBodySize is the size of every answer of the upstream, about that of a small JSON API answer.
const upstreamBodySize = 100

// upstreamUserPrefix starts the upstream's answer; the X-Forwarded-User it was sent follows, so the
// scenario can check that the proxy said who the user is.
const upstreamUserPrefix = "x-forwarded-user="

var upstreamPadding = func() []byte {
	b := make([]byte, upstreamBodySize)
	for i := range b {
		b[i] = '.'
	}
	b[len(b)-1] = '\n'
	return b
}()

// UpstreamHandler is the upstream app of the proxy scenario: 200 to anything, with a text body of
// upstreamBodySize bytes (more only if the user id is very long) that starts with the request's
// X-Forwarded-User. It allocates nothing of its own per request.
func UpstreamHandler(ctx *fasthttp.RequestCtx) {
	r := &ctx.Response
	r.Header.SetContentType("text/plain; charset=utf-8")
	r.AppendBodyString(upstreamUserPrefix)
	r.AppendBody(ctx.Request.Header.Peek("X-Forwarded-User"))
	r.AppendBodyString(" ")
	if n := len(r.Body()); n < upstreamBodySize {
		r.AppendBody(upstreamPadding[n:])
	}
}

// BareProxyHandler is the baseline of the proxy scenario: a reverse proxy with nothing but fasthttp, every
// request sent as it came to upstream (host:port) over a keep-alive pool, like Postern's, and the answer
// sent back as it came. No authentication, no header rewriting, no streaming: the least a fasthttp
// reverse proxy can do.
func BareProxyHandler(upstream string) fasthttp.RequestHandler {
	hc := &fasthttp.HostClient{
		Addr:                     upstream,
		NoDefaultUserAgentHeader: true,
		ReadTimeout:              30 * time.Second,
		WriteTimeout:             30 * time.Second,
	}
	return func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Response.Reset()
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}
}
