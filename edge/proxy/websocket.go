package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// WebSocket pass-through (RFC 6455 section 4): the opening handshake is decided like any request, then
// sent upstream on a connection of its own. When the upstream switches protocols, the client's
// connection is hijacked and bytes are relayed both ways until either side ends; any other answer goes
// back as an ordinary response.

// isWebSocket reports whether a request is a WebSocket opening handshake (RFC 6455 section 4.1): an
// HTTP/1.1 GET without a body whose Connection header has the token "upgrade" and whose Upgrade header
// names websocket. Anything else is forwarded as a plain request, with Upgrade stripped.
func isWebSocket(h *fasthttp.RequestHeader) bool {
	if !h.IsGet() || !h.IsHTTP11() {
		return false
	}
	if cl := h.ContentLength(); cl != 0 && cl != -2 { // -2: no Content-Length, not chunked
		return false
	}
	return hasToken(h.Peek(fasthttp.HeaderConnection), "upgrade") && hasToken(h.Peek(fasthttp.HeaderUpgrade), "websocket")
}

// hasToken reports whether a comma-separated header value lists token, compared case-insensitively.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}

// serveWebSocket forwards an allowed WebSocket handshake: prepared like any request (identity attached,
// hop-by-hop headers stripped), with Connection and Upgrade put back.
func (p *Proxy) serveWebSocket(ctx *fasthttp.RequestCtx, rt *directory.Route, up *upstream, id *identity) {
	lines, err := p.prepare(ctx, rt, up, id)
	if err != nil {
		ref := p.fail(rt, "signing the assertion", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
		return
	}
	h := &ctx.Request.Header
	setLines(h, *lines)
	putLines(lines)
	h.Set(fasthttp.HeaderConnection, "Upgrade")
	h.Set(fasthttp.HeaderUpgrade, "websocket")
	ctx.Request.CloseBodyStream() // bodiless (isWebSocket); what the server streamed is its to drain

	conn, err := p.dialUpstream(up)
	if err != nil {
		p.upstreamFailed(ctx, rt, err)
		return
	}
	// The handshake runs under the upstream's idle timeout; the relayed stream does not (see relay).
	ic := &idleConn{Conn: conn, timeout: p.cfg.UpstreamTimeout}
	br := bufio.NewReader(ic)
	bw := bufio.NewWriter(ic)
	err = ctx.Request.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		conn.Close()
		p.upstreamFailed(ctx, rt, err)
		return
	}
	resp := fasthttp.AcquireResponse()
	resp.StreamBody = true
	if err := resp.Read(br); err != nil {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		p.upstreamFailed(ctx, rt, err)
		return
	}

	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// Refused (wrong path, failed origin check, ...): an ordinary response, streamed back; the
		// connection closes when the body has been written (or abandoned).
		resp.Header.CopyTo(&ctx.Response.Header)
		stripHopByHop(&ctx.Response.Header)
		body := &upstreamBody{resp: resp, conn: conn}
		if resp.BodyStream() == nil {
			body.Close()
			return
		}
		n := resp.Header.ContentLength()
		if n < -1 {
			n = -1 // read until close upstream: re-framed as chunked
		}
		ctx.Response.SetBodyStream(body, n)
		return
	}

	if !hasToken(resp.Header.Peek(fasthttp.HeaderUpgrade), "websocket") {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		p.upstreamFailed(ctx, rt, errors.New("the upstream switched to a protocol other than websocket"))
		return
	}
	stripHopByHop(&resp.Header)
	resp.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	resp.Header.Set(fasthttp.HeaderUpgrade, "websocket")
	resp.Header.SetNoDefaultContentType(true)
	head := append([]byte(nil), resp.Header.Header()...)
	fasthttp.ReleaseResponse(resp)
	// Frames the upstream sent right behind its 101 are already in br: they go first.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		head = append(head, b...)
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { relay(c, conn, head) })
}

// upstreamFailed answers a handshake the upstream could not take: 504 when it timed out, 502 otherwise,
// as for any forwarded request.
func (p *Proxy) upstreamFailed(ctx *fasthttp.RequestCtx, rt *directory.Route, err error) {
	ctx.Response.Reset()
	ref := p.fail(rt, "forwarding a websocket handshake", err)
	if isTimeout(err) {
		page(ctx, fasthttp.StatusGatewayTimeout, "Gateway timeout", "The app behind this address did not answer in time.", ref)
		return
	}
	page(ctx, fasthttp.StatusBadGateway, "Bad gateway", "The app behind this address cannot be reached.", ref)
}

// dialUpstream opens a connection of its own to the upstream (a hijacked stream cannot go back to the
// keep-alive pool): TCP, then TLS for an https upstream, both within the dial timeout.
func (p *Proxy) dialUpstream(up *upstream) (net.Conn, error) {
	addr := up.hc.Addr
	conn, err := fasthttp.DialTimeout(addr, p.cfg.DialTimeout)
	if err != nil || !up.hc.IsTLS {
		return conn, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		conn.Close()
		return nil, err
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host})
	hctx, cancel := context.WithTimeout(context.Background(), p.cfg.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fasthttp.ErrDialTimeout
		}
		return nil, err
	}
	return tc, nil
}

// upstreamBody is the body of an upstream's non-101 answer to a handshake; closing it closes the
// connection dialled for that handshake.
type upstreamBody struct {
	resp *fasthttp.Response
	conn net.Conn
}

func (b *upstreamBody) Read(p []byte) (int, error) { return b.resp.BodyStream().Read(p) }

// Close is called by fasthttp once the response is written or dropped.
func (b *upstreamBody) Close() error {
	if b.resp == nil {
		return nil
	}
	b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	b.resp = nil
	return b.conn.Close()
}

// relay writes the upstream's 101 head to the client, then copies bytes both ways until either side
// ends, and closes both. The relayed stream has no idle timeout: WebSocket apps keep quiet connections
// open for long and watch them with their own pings; TCP keep-alive finds peers that vanished.
func relay(client, up net.Conn, head []byte) {
	up.SetDeadline(time.Time{})
	if _, err := client.Write(head); err != nil {
		up.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, client)
		up.Close() // ends the copy below
	}()
	io.Copy(client, up)
	up.Close()
	// The hijacked connection's Close is fasthttp's to do once this returns; an expired read deadline
	// ends the copy above first.
	client.SetReadDeadline(time.Unix(1, 0))
	<-done
}
