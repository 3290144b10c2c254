package proxy

import (
	"bufio"
	"bytes"
	"io"
	"sync"

	"github.com/valyala/fasthttp"
)

// The headers the proxy adds to a request (X-Forwarded-*, the identity) are rendered as header lines,
// "Name: value\r\n" each, and the identity's lines are rendered once per assertion. A bodiless GET or
// HEAD, nearly every request a proxied app gets, is sent with them written straight into its head:
// setting seven headers through fasthttp's header model copies each value twice and scans the
// headers for an earlier copy of each, which cost about 0.5 µs of the proxy's ~2 µs per request.
// Any other request has the lines set as headers and goes through fasthttp's own writer.

var linesPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getLines() *[]byte { return linesPool.Get().(*[]byte) }

func putLines(b *[]byte) {
	if cap(*b) <= 16<<10 { // a user with a huge group list should not pin big buffers
		linesPool.Put(b)
	}
}

// appendSafe appends a header value with every control character but HTAB replaced by a space, so a
// value from the directory or the client can never end its line early or start another.
func appendSafe(dst, v []byte) []byte {
	n := len(dst)
	dst = append(dst, v...)
	for i, c := range dst[n:] {
		if (c < ' ' && c != '\t') || c == 0x7f {
			dst[n+i] = ' '
		}
	}
	return dst
}

// appendLine appends one header line.
func appendLine(dst []byte, name string, v []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = appendSafe(dst, v)
	return append(dst, "\r\n"...)
}

// setLines sets each of the rendered header lines on h.
func setLines(h *fasthttp.RequestHeader, lines []byte) {
	for len(lines) > 0 {
		var line []byte
		line, lines, _ = bytes.Cut(lines, []byte("\r\n"))
		if k, v, ok := bytes.Cut(line, []byte(": ")); ok {
			h.SetCanonical(k, v)
		}
	}
}

// send forwards a prepared request with the proxy's header lines and reads the answer into resp.
func (up *upstream) send(req *fasthttp.Request, resp *fasthttp.Response, lines []byte) error {
	if !headOnly(req) {
		setLines(&req.Header, lines)
		return up.hc.Do(req, resp)
	}
	// What HostClient.Do does around its transport, for this kind of request: a fresh answer, and the
	// retry its RetryIfErr allows.
	for attempt := 1; ; attempt++ {
		resp.Reset()
		retry, err := roundTrip(up.hc, req, resp, lines)
		if err == nil {
			return nil
		}
		if !retry || !retryable(req, attempt, err) {
			if err == io.EOF {
				err = fasthttp.ErrConnectionClosed
			}
			return err
		}
	}
}

// headOnly reports a request that is its head alone, written by writeHead: a GET or HEAD without
// body, without credentials in its URI (fasthttp's writer turns those into an Authorization header).
func headOnly(req *fasthttp.Request) bool {
	h := &req.Header
	return (h.IsGet() || h.IsHead()) && !req.IsBodyStream() && len(req.Body()) == 0 &&
		len(req.URI().Username()) == 0 && len(req.URI().Password()) == 0
}

// writeHead writes a headOnly request with the proxy's header lines, as fasthttp's Request.Write
// would have written it with those headers set: Host and the request line from the rewritten URI.
func writeHead(w *bufio.Writer, req *fasthttp.Request, lines []byte) error {
	h := &req.Header
	uri := req.URI()
	if !req.UseHostHeader || len(h.Host()) == 0 {
		h.SetHostBytes(uri.Host())
	}
	h.SetRequestURIBytes(uri.RequestURI())
	// Rendered straight into the writer's free space, which Write then finds in place.
	b := h.AppendBytes(w.AvailableBuffer()) // ends with the empty line
	b = append(b[:len(b)-2], lines...)
	_, err := w.Write(append(b, "\r\n"...))
	return err
}

// retryable is the upstream pools' retry rule: only what cannot have had an effect twice, a bodiless
// idempotent request whose pooled connection turned out closed, and never after a timeout (the
// upstream is slow, not gone).
func retryable(req *fasthttp.Request, attempts int, err error) bool {
	m := req.Header.Method()
	safe := bytes.Equal(m, []byte("GET")) || bytes.Equal(m, []byte("HEAD")) || bytes.Equal(m, []byte("OPTIONS"))
	return safe && attempts < 2 && !req.IsBodyStream() && len(req.Body()) == 0 && !isTimeout(err)
}
