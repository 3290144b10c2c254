package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http/httputil"
	"syscall"

	"github.com/valyala/fasthttp"
)

// transport is the upstream pools' round trip. It differs from fasthttp's own in one choice made per
// answer, once its head is read: an answer of known length up to smallBody is read whole, so the
// connection goes back to the pool at once and the edge writes a plain body; anything longer, chunked
// or delimited by the connection's end is streamed to the client as it arrives. fasthttp's client
// can only stream all answers or none, and streaming a small one costs four allocations and a copy
// through the stream on every request of the proxy's hot path.
//
// Deadlines are the connection's own (idleConn), so the transport sets none.
type transport struct{}

// maxInterim bounds the 1xx answers (103 Early Hints, 100 Continue) read before the final one.
const maxInterim = 8

func (transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	return roundTrip(hc, req, resp, nil)
}

// roundTrip is RoundTrip for a request written as fasthttp writes it (lines nil), or a headOnly one
// written with the proxy's header lines (head.go).
func roundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, lines []byte) (retry bool, err error) {
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	bw := hc.AcquireWriter(conn)
	if lines == nil {
		err = req.Write(bw)
	} else {
		err = writeHead(bw, req, lines)
	}
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return true, err
	}

	br := hc.AcquireReader(conn)
	// Before any answer a retry may be right (a pooled connection the upstream had closed; RetryIfErr
	// decides); once it answered, the request has had its effect.
	fail := func(retry bool, err error) (bool, error) {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return retry, err
	}
	if err := resp.Header.Read(br); err != nil {
		return fail(closedEarly(err), err)
	}
	for n := 0; interim(resp.StatusCode()); n++ {
		if n == maxInterim {
			return fail(false, errors.New("upstream sent too many interim (1xx) answers"))
		}
		if err := resp.Header.Read(br); err != nil {
			return fail(false, err)
		}
	}
	reuse := !req.ConnectionClose() && !resp.ConnectionClose() && resp.StatusCode() != fasthttp.StatusSwitchingProtocols

	n := resp.Header.ContentLength()
	switch {
	case resp.SkipBody || req.Header.IsHead() || bodiless(resp.StatusCode()):
		resp.SkipBody = true
	case n >= 0 && n <= smallBody:
		resp.StreamBody = false
		if err := resp.ReadBody(br, 0); err != nil {
			return fail(false, err)
		}
	default:
		// Only a streamed answer pays for this closure: the connection's type is fasthttp's own.
		b := &pooledBody{br: br, reuse: reuse, release: func(reuse bool) {
			hc.ReleaseReader(br)
			if reuse {
				hc.ReleaseConn(cc)
			} else {
				hc.CloseConn(cc)
			}
		}}
		switch n {
		case -1: // chunked: trailers are read and dropped, and the client's copy is chunked afresh
			b.r, b.chunked = httputil.NewChunkedReader(br), true
		case -2: // until the connection ends: never reused
			b.r, b.reuse = br, false
			n = -1
		default:
			b.r = io.LimitReader(br, int64(n))
		}
		resp.SetBodyStream(b, n)
		return false, nil
	}
	hc.ReleaseReader(br)
	if reuse {
		hc.ReleaseConn(cc)
	} else {
		hc.CloseConn(cc)
	}
	return false, nil
}

// closedEarly reports an answer that never began because the connection was closed or reset: a pooled
// connection the upstream had closed while idle. Anything else it sent is its answer, not a reason to
// ask again.
func closedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// interim reports a 1xx status other than 101, which is an answer of its own.
func interim(status int) bool {
	return status >= 100 && status < 200 && status != fasthttp.StatusSwitchingProtocols
}

// bodiless reports the statuses whose answers never have a body (RFC 9110 section 6.4.1).
func bodiless(status int) bool {
	return status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified
}

// pooledBody streams an upstream answer to the client and gives the connection back to the pool
// when the server is done with it: reused only when the body was read to its very end.
type pooledBody struct {
	r       io.Reader
	br      *bufio.Reader
	chunked bool
	reuse   bool
	ended   bool // read to the end, framing included
	closed  bool
	release func(reuse bool)
}

func (b *pooledBody) Read(p []byte) (int, error) {
	if b.ended {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		if b.chunked {
			if terr := skipTrailers(b.br); terr != nil {
				return n, terr
			}
		}
		b.ended = true
	}
	return n, err
}

// Close is called by fasthttp once the answer is written, or abandoned.
func (b *pooledBody) Close() error {
	if !b.closed {
		b.closed = true
		b.release(b.reuse && b.ended)
	}
	return nil
}

// maxTrailers bounds the trailer section of a chunked answer, which is read and dropped.
const maxTrailers = 16 << 10

// skipTrailers reads the trailer section after a chunked body's last chunk, up to its empty line
// (RFC 9112 section 7.1.2), so the connection is left at the start of the next answer.
func skipTrailers(br *bufio.Reader) error {
	read := 0
	for {
		line, err := br.ReadSlice('\n')
		read += len(line)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errors.New("upstream trailer line too long")
			}
			return err
		}
		if read > maxTrailers {
			return errors.New("upstream trailers too long")
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return nil
		}
	}
}
