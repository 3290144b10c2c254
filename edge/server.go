package edge

import (
	"io"
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
//
// A handler gets the request body buffered, at most [MaxBufferedBody] bytes, unless it is a
// [BodyStreamer].
type Handler interface {
	Handle(ctx *fasthttp.RequestCtx) bool
}

// BodyStreamer is the optional capability of a [Handler] that reads request bodies as streams
// (RequestCtx.RequestBodyStream, never PostBody or PostArgs) and so can take bodies of any size: the
// proxy, which passes an upload to the upstream as it arrives. The server finds it by type assertion;
// every other handler gets bodies buffered and bounded.
type BodyStreamer interface {
	StreamsRequestBody() bool
}

// MaxBufferedBody bounds the request body of every request the server hands to a handler that does not
// stream (forms and JSON of the OpenID provider and hosted pages): a larger one is answered 413 before
// such a handler sees it, and never kept in memory.
const MaxBufferedBody = 1 << 20

// Server is the edge listener: health endpoints, then each mounted handler in turn (the proxy for the
// routed hosts, the OIDC provider and its hosted pages).
//
// The listener streams request bodies, so an upload through the proxy has no size bound and is never
// held in memory whole. fasthttp (v1.78), with StreamRequestBody, does not refuse a body over
// MaxRequestBodySize: it streams it, having read at most 8 KiB ahead, and PostBody or PostArgs would
// then read all of it. So the bound for the handlers that do not stream is the server's own,
// [MaxBufferedBody], enforced in handle before they run. /healthz and /readyz read no body; fasthttp
// drops a little of an unread one or closes the connection. The read timeout covers the request head;
// a streamed body must keep moving instead (each read within the timeout).
type Server struct {
	ready    Readiness
	log      *slog.Logger
	srv      *fasthttp.Server
	handlers []Handler
	streams  []bool // per handler: is it a BodyStreamer that streams
}

// NewServer builds the edge listener. Handlers are tried in order; a [BodyStreamer] gets request
// bodies as streams, any other handler buffered and bounded by [MaxBufferedBody].
func NewServer(ready Readiness, log *slog.Logger, handlers ...Handler) *Server {
	s := &Server{ready: ready, log: log, handlers: handlers, streams: make([]bool, len(handlers))}
	for i, h := range handlers {
		if bs, ok := h.(BodyStreamer); ok && bs.StreamsRequestBody() {
			s.streams[i] = true
		}
	}
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		Name:                         "postern",
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		StreamRequestBody:            true,
		ReadTimeout:                  ReadTimeout,
		IdleTimeout:                  IdleTimeout,
	}
	return s
}

// The edge's timeouts for its clients (each costs the server two deadline updates per request, which
// the proxy benchmark gives its bare baseline too).
const (
	// ReadTimeout bounds reading a request head (slow-header clients) and, for a streamed body, each
	// read of it.
	ReadTimeout = 30 * time.Second
	// IdleTimeout bounds the wait for the next request on a keep-alive connection.
	IdleTimeout = 2 * time.Minute
)

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting and waits for requests in flight.
func (s *Server) Shutdown() error { return s.srv.Shutdown() }

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	// Handlers are tried in order, and one that declines leaves the body unread: it is made idle-timed
	// before the first streaming handler, and buffered before the first one that does not stream.
	buffered, idle := false, false
	for i, h := range s.handlers {
		switch {
		case s.streams[i] && !idle && !buffered:
			idle = true
			s.idleBody(ctx)
		case !s.streams[i] && !buffered:
			buffered = true
			if !BufferBody(ctx) {
				return
			}
		}
		if h.Handle(ctx) {
			return
		}
	}
	// Health answers last, so a routed host's own /healthz reaches its app through the proxy.
	switch string(ctx.Path()) {
	case "/healthz":
		Healthz(ctx)
	case "/readyz":
		Readyz(ctx, s.ready)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// BufferBody replaces a streamed request body by the same bytes in memory and reports whether it did,
// answering 413 (or 400 for a body cut short) when it did not. The server does it before any handler
// that is not a [BodyStreamer]; a streaming handler calls it for its own endpoints that parse a form.
//
// A body over [MaxBufferedBody] is refused without being kept: a declared length at once, a chunked
// body when the bound is passed. Up to [maxDiscardedBody] more of it is read and dropped so that the 413
// reaches a client still sending, which a reset of the connection would otherwise lose; past that
// fasthttp closes the connection.
func BufferBody(ctx *fasthttp.RequestCtx) bool {
	r := ctx.RequestBodyStream()
	if r == nil {
		return true
	}
	n := ctx.Request.Header.ContentLength()
	switch {
	case n == 0:
		ctx.Request.CloseBodyStream()
		return true
	case n > MaxBufferedBody:
		if n <= MaxBufferedBody+maxDiscardedBody {
			io.Copy(io.Discard, r)
		}
		tooLarge(ctx)
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r, MaxBufferedBody+1))
	switch {
	case err == nil && len(body) > MaxBufferedBody:
		io.CopyN(io.Discard, r, maxDiscardedBody)
		tooLarge(ctx)
		return false
	case err != nil || (n >= 0 && len(body) != n):
		ctx.Error("the request body could not be read\n", fasthttp.StatusBadRequest)
		return false
	}
	ctx.Request.SetBody(body) // also takes the stream off the request; fasthttp still drains it
	return true
}

// maxDiscardedBody bounds what the server reads and drops of a body it refuses as too large.
const maxDiscardedBody = 4 << 20

func tooLarge(ctx *fasthttp.RequestCtx) {
	ctx.Error("request body too large\n", fasthttp.StatusRequestEntityTooLarge)
}

// idleBody makes the read timeout an idle timeout for a body that a streaming handler reads: fasthttp
// arms the read deadline once, at the first byte of the request, which would cut any upload longer
// than that. Each read of the body now gets the whole timeout.
func (s *Server) idleBody(ctx *fasthttp.RequestCtx) {
	r := ctx.RequestBodyStream()
	if r == nil || ctx.Request.Header.ContentLength() == 0 {
		return
	}
	ctx.Request.SetBodyStream(&idleReader{ctx: ctx, r: r, timeout: s.srv.ReadTimeout}, ctx.Request.Header.ContentLength())
}

type idleReader struct {
	ctx     *fasthttp.RequestCtx
	r       io.Reader
	timeout time.Duration
}

func (b *idleReader) Read(p []byte) (int, error) {
	if err := b.ctx.SetReadDeadline(time.Now().Add(b.timeout)); err != nil {
		return 0, err
	}
	return b.r.Read(p)
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
