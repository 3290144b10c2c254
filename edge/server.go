package edge

import (
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Readiness reports whether the node can serve fresh reads and take writes; the error says why not.
type Readiness interface {
	Ready() error
}

// Handler serves part of the edge's URL space and reports whether a request was its own.
type Handler interface {
	Handle(ctx *fasthttp.RequestCtx) bool
}

// Server is the edge listener: health endpoints, then each mounted handler in turn (the OIDC provider
// and its hosted pages; the proxy arrives next).
type Server struct {
	ready    Readiness
	log      *slog.Logger
	srv      *fasthttp.Server
	handlers []Handler
}

// NewServer builds the edge listener.
func NewServer(ready Readiness, log *slog.Logger, handlers ...Handler) *Server {
	s := &Server{ready: ready, log: log, handlers: handlers}
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		Name:                         "postern",
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		MaxRequestBodySize:           1 << 20,
		ReadTimeout:                  30 * time.Second,
		IdleTimeout:                  2 * time.Minute,
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
		for _, h := range s.handlers {
			if h.Handle(ctx) {
				return
			}
		}
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
