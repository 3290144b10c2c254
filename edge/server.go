package edge

import (
	"log/slog"
	"net"

	"github.com/valyala/fasthttp"
)

// Readiness reports whether the node can serve fresh reads and take writes; the error says why not.
type Readiness interface {
	Ready() error
}

// Server is the edge listener: for now its health endpoints; the OIDC provider, hosted pages and the
// proxy are mounted here as they arrive.
type Server struct {
	ready Readiness
	log   *slog.Logger
	srv   *fasthttp.Server
}

// NewServer builds the edge listener.
func NewServer(ready Readiness, log *slog.Logger) *Server {
	s := &Server{ready: ready, log: log}
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		Name:                         "postern",
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
	}
	return s
}

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting and waits for requests in flight.
func (s *Server) Shutdown() error { return s.srv.Shutdown() }

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz":
		Healthz(ctx)
	case "/readyz":
		Readyz(ctx, s.ready)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// Healthz answers 200 as soon as the process serves.
func Healthz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok\n")
}

// Readyz answers 200 once the replica has caught up and the cluster can take writes, 503 with the reason
// otherwise.
func Readyz(ctx *fasthttp.RequestCtx, r Readiness) {
	ctx.SetContentType("text/plain; charset=utf-8")
	if err := r.Ready(); err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready: " + err.Error() + "\n")
		return
	}
	ctx.SetBodyString("ready\n")
}
