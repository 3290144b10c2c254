package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// upstream is one upstream URL and its keep-alive pool.
type upstream struct {
	hc     *fasthttp.HostClient
	scheme string
	prefix string // the upstream URL's path, without its trailing slash; "" for none
}

// upstream returns the pool of an upstream URL, made on first use and shared by every route to it.
func (p *Proxy) upstream(raw string) (*upstream, error) {
	if u, ok := p.clients.Load(raw); ok {
		return u.(*upstream), nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("parsing upstream %q: not an absolute http or https URL", raw)
	}
	tls := u.Scheme == "https"
	idle, dial := p.cfg.UpstreamTimeout, p.cfg.DialTimeout
	up := &upstream{scheme: u.Scheme, prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
	up.hc = &fasthttp.HostClient{
		Addr:  fasthttp.AddMissingPort(u.Host, tls),
		IsTLS: tls,
		Dial: func(addr string) (net.Conn, error) {
			c, err := fasthttp.DialTimeout(addr, dial)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c, timeout: idle}, nil
		},
		NoDefaultUserAgentHeader: true,
		Transport:                transport{}, // streams long answers, reads short ones whole
		MaxConnWaitTimeout:       idle,
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			return false, retryable(req, attempts, err)
		},
	}
	if prev, loaded := p.clients.LoadOrStore(raw, up); loaded {
		return prev.(*upstream), nil
	}
	return up, nil
}

// idleConn gives reads and writes on an upstream connection a moving deadline, so the upstream timeout
// is an idle timeout rather than a bound on the whole exchange. Setting a deadline is not free, so it is
// moved only once a quarter of the timeout has passed (by the coarse clock): a read or write may wait
// between 3/4 and all of the timeout. Reads and writes each have one user at a time (the pool's, or one relay direction).
type idleConn struct {
	net.Conn
	timeout         time.Duration
	readBy, writeBy time.Time
}

func (c *idleConn) Read(b []byte) (int, error) {
	if now := coarse.Now(); c.readBy.Sub(now) < c.timeout*3/4 {
		c.readBy = now.Add(c.timeout)
		if err := c.Conn.SetReadDeadline(c.readBy); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	if now := coarse.Now(); c.writeBy.Sub(now) < c.timeout*3/4 {
		c.writeBy = now.Add(c.timeout)
		if err := c.Conn.SetWriteDeadline(c.writeBy); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &ne) && ne.Timeout())
}

// serve decides a request of a routed host and forwards it when allowed.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx, e *routeEntry) {
	rt := e.route
	if reserved(b2s(ctx.Path())) {
		p.reservedPath(ctx, rt, string(ctx.Path()))
		return
	}
	// check reads the method and path as strings over the request's own bytes: it keeps neither, and
	// nothing changes the request before it returns. A copy of a path longer than 32 bytes would be an
	// allocation per request.
	id, ok := p.check(ctx, rt, b2s(ctx.Method()), b2s(ctx.Path()), nil, redirectBrowsers)
	if !ok {
		return
	}
	added, ok := p.runProxyExtensions(ctx, e, ctx.Method(), ctx.Path(), id)
	if !ok {
		return
	}
	for k, v := range added { // names flows accepted: never identity, hop-by-hop or forwarding headers
		ctx.Request.Header.Set(k, v)
	}
	if e.up == nil {
		ref := p.fail(rt, "forwarding", errors.New("the route's upstream is unusable"))
		page(ctx, fasthttp.StatusBadGateway, "Bad gateway", "The app behind this address cannot be reached.", ref)
		return
	}
	if isWebSocket(&ctx.Request.Header) {
		p.serveWebSocket(ctx, rt, e.up, id)
		return
	}
	lines, err := p.prepare(ctx, rt, e.up, id)
	if err != nil {
		ref := p.fail(rt, "signing the assertion", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
		return
	}
	err = e.up.send(&ctx.Request, &ctx.Response, *lines)
	putLines(lines)
	if err != nil {
		ctx.Response.Reset()
		if isTimeout(err) {
			ref := p.fail(rt, "forwarding", err)
			page(ctx, fasthttp.StatusGatewayTimeout, "Gateway timeout", "The app behind this address did not answer in time.", ref)
			return
		}
		ref := p.fail(rt, "forwarding", err)
		page(ctx, fasthttp.StatusBadGateway, "Bad gateway", "The app behind this address cannot be reached.", ref)
		return
	}
	stripHopByHop(&ctx.Response.Header)
}

// b2s is b as a string without a copy, for a string that must not outlive b nor see it change.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// smallBody is the largest upstream answer of known length that is read whole rather than streamed
// (transport.go): it is in memory already or nearly, and taking it gives the upstream connection back
// at once and lets the server write a plain body.
const smallBody = 64 << 10

// fail logs an internal error under a fresh reference, which the error page shows.
func (p *Proxy) fail(rt *directory.Route, doing string, err error) string {
	var b [8]byte
	rand.Read(b[:])
	ref := hex.EncodeToString(b[:])
	p.cfg.Log.Warn("proxy: "+doing, "host", rt.Host, "tenant", rt.Tenant, "upstream", rt.Upstream, "ref", ref, "err", err)
	return ref
}

// page writes a small plain-text error page. Internal error text never goes into it; ref links it to
// the log line.
func page(ctx *fasthttp.RequestCtx, status int, title, text, ref string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	body := fmt.Sprintf("%d %s\n\n%s\n", status, title, text)
	if ref != "" {
		body += "Reference: " + ref + "\n"
	}
	ctx.SetBodyString(body)
}

// Identity headers the upstream trusts: only the proxy sets them.
const (
	headerUser      = "X-Forwarded-User"
	headerEmail     = "X-Forwarded-Email"
	headerGroups    = "X-Forwarded-Groups"
	headerAssertion = "X-Postern-Assertion"
)

// hopByHop are the headers of one connection (RFC 9110 section 7.6.1), never forwarded. Upgrade goes
// too: a plain request cannot switch protocols through the pool, and a WebSocket handshake puts it back
// on a connection of its own (websocket.go).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"}

// spoofable reports whether a header name, lower-cased and with '_' read as '-', is one of the identity
// headers (a server or framework behind the proxy may fold x_forwarded_user into X-Forwarded-User).
func spoofable(name []byte) bool {
	if len(name) != len("x-forwarded-user") && len(name) != len("x-forwarded-email") &&
		len(name) != len("x-forwarded-groups") && len(name) != len("x-postern-assertion") {
		return false
	}
	var buf [32]byte
	n := buf[:0]
	for _, c := range name {
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		n = append(n, c)
	}
	switch string(n) {
	case "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-postern-assertion":
		return true
	}
	return false
}

// prepare rewrites the request for the upstream: its scheme and path prefix, hop-by-hop and identity
// headers removed. It returns the header lines the proxy adds (X-Forwarded-For, -Proto, -Host and the
// identity when there is one), rendered once: send writes them into the head of a bodiless request as
// they are, and sets them as headers of any other. The caller gives them back with putLines.
func (p *Proxy) prepare(ctx *fasthttp.RequestCtx, rt *directory.Route, up *upstream, id *identity) (*[]byte, error) {
	req := &ctx.Request
	h := &req.Header
	lines := getLines()
	b := append((*lines)[:0], headerXForwardedFor+": "...)
	mark := len(b)
	b = stripRequestHeaders(h, b)
	stripPosternCookies(h)
	if len(b) > mark {
		b = append(b, ", "...)
	}
	if ip := ctx.RemoteIP(); ip.To4() != nil {
		b = fasthttp.AppendIPv4(b, ip)
	} else {
		b = append(b, ip.String()...)
	}
	b = append(b, "\r\n"...)
	proto := []byte("http")
	if ctx.IsTLS() {
		proto = []byte("https")
	}
	b = appendLine(b, headerXForwardedProto, proto)
	*lines = appendLine(b, headerXForwardedHost, ctx.Host())

	uri := req.URI()
	uri.SetScheme(up.scheme)
	if up.prefix != "" {
		uri.SetPath(up.prefix + string(uri.Path()))
	}
	if id == nil {
		return lines, nil
	}
	a, err := p.assertion(rt, id)
	if err != nil {
		putLines(lines)
		return nil, err
	}
	*lines = append(*lines, a.lines...)
	return lines, nil
}

// setIdentity sets the identity headers, on the upstream request or the forward-auth answer.
func setIdentity(set func(k, v []byte), id *identity, assertion []byte) {
	set(keyUser, id.subB)
	if len(id.emailB) > 0 {
		set(keyEmail, id.emailB)
	}
	if len(id.joinedB) > 0 {
		set(keyGroups, id.joinedB)
	}
	set(keyAssertion, assertion)
}

// Header names as canonical bytes, for SetCanonical.
var (
	keyUser      = []byte(headerUser)
	keyEmail     = []byte(headerEmail)
	keyGroups    = []byte(headerGroups)
	keyAssertion = []byte(headerAssertion)
)

// The forwarding headers, which only the proxy sets.
const (
	headerXForwardedFor   = fasthttp.HeaderXForwardedFor
	headerXForwardedProto = fasthttp.HeaderXForwardedProto
	headerXForwardedHost  = fasthttp.HeaderXForwardedHost
)

// connectionTokens lists the header names a Connection header value names (RFC 9110 section 7.6.1),
// leaving out close and keep-alive; the usual values ("close", "keep-alive") cost no allocation.
func connectionTokens(v []byte) []string {
	var out []string
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		t = bytes.TrimSpace(t)
		if len(t) > 0 && !bytes.EqualFold(t, []byte("close")) && !bytes.EqualFold(t, []byte("keep-alive")) {
			out = append(out, string(t))
		}
	}
	return out
}

// stripRequestHeaders removes, in one pass over the headers, what must not reach the upstream: the
// identity headers in any spelling, hop-by-hop headers (with those the Connection header names),
// Forwarded (the proxy states the client's address in X-Forwarded-For; a Forwarded sent by the client
// would contradict it) and the X-Forwarded-* headers the proxy writes itself. It appends to xff the
// X-Forwarded-For values the client sent, comma-joined in order, which the proxy extends. The common
// request has none of them and costs no allocation.
func stripRequestHeaders(h *fasthttp.RequestHeader, xff []byte) []byte {
	var drop [][]byte
	given := len(xff)
	connection := h.ConnectionClose()
	inXFF := false // the last line was an X-Forwarded-For, so a folded line continues its value
	check := func(k, v []byte) {
		inXFF = false
		switch {
		case spoofable(k) || hopByHopName(k) || bytes.EqualFold(k, []byte("Forwarded")) ||
			bytes.EqualFold(k, []byte(headerXForwardedProto)) || bytes.EqualFold(k, []byte(headerXForwardedHost)):
			connection = connection || bytes.EqualFold(k, []byte(fasthttp.HeaderConnection))
			drop = append(drop, k)
		case bytes.EqualFold(k, []byte(headerXForwardedFor)):
			if v = bytes.TrimSpace(v); len(v) > 0 {
				if len(xff) > given {
					xff = append(xff, ", "...)
				}
				xff = appendSafe(xff, v)
			}
			drop, inXFF = append(drop, k), true
		}
	}
	// The names are read from the header block as it came (fasthttp keeps it): h.All would parse the
	// Cookie header into pairs, which fasthttp then writes upstream afresh, and AllInOrder parses every
	// line again. prepare runs before any header of its own is set. A request that was not read from
	// the wire has no such block.
	if raw := h.RawHeaders(); len(raw) > 0 {
		for len(raw) > 0 {
			line := raw
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				line, raw = raw[:i], raw[i+1:]
			} else {
				raw = nil
			}
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) == 0 {
				continue
			}
			if line[0] == ' ' || line[0] == '\t' { // a folded line: the rest of the one before
				if v := bytes.TrimSpace(line); inXFF && len(v) > 0 {
					xff = appendSafe(append(xff, ' '), v)
				}
				continue
			}
			if name, v, ok := bytes.Cut(line, []byte(":")); ok {
				check(bytes.TrimRight(name, " \t"), v)
			}
		}
	} else {
		for k, v := range h.All() {
			check(append([]byte(nil), k...), v)
		}
	}
	if connection {
		for _, t := range connectionTokens(h.Peek(fasthttp.HeaderConnection)) {
			if !spoofable([]byte(t)) {
				drop = append(drop, []byte(t))
			}
		}
	}
	for _, k := range drop {
		h.DelBytes(k)
	}
	if connection {
		h.Del(fasthttp.HeaderConnection) // kept by fasthttp as a flag as well as a header
	}
	return xff
}

func hopByHopName(k []byte) bool {
	for _, n := range hopByHop {
		if len(n) == len(k) && bytes.EqualFold(k, []byte(n)) {
			return true
		}
	}
	return false
}

// stripHopByHop removes the upstream's hop-by-hop headers from its response, in one pass (Transfer-
// Encoding stays: it is framing, and fasthttp re-frames the streamed body itself).
func stripHopByHop(h *fasthttp.ResponseHeader) {
	found := false // the usual answer has none: looked for first, since removing one costs a search
	for k := range h.All() {
		if hopByHopName(k) && !bytes.EqualFold(k, []byte("Transfer-Encoding")) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var drop [][]byte
	for k := range h.All() {
		if hopByHopName(k) && !bytes.EqualFold(k, []byte("Transfer-Encoding")) && !bytes.EqualFold(k, []byte("Connection")) {
			drop = append(drop, append([]byte(nil), k...))
		}
	}
	if c := h.Peek(fasthttp.HeaderConnection); len(c) > 0 {
		for _, t := range connectionTokens(c) {
			drop = append(drop, []byte(t))
		}
		h.Del(fasthttp.HeaderConnection)
	}
	for _, k := range drop {
		h.DelBytes(k)
	}
}

// stripPosternCookies keeps the proxy's own cookies from the upstream: the app has no use for them, and
// a session cookie that reaches an app's logs is a session that can be replayed. A request without them
// keeps its Cookie header untouched.
func stripPosternCookies(h *fasthttp.RequestHeader) {
	raw := h.Peek(fasthttp.HeaderCookie)
	if !bytes.Contains(raw, []byte(sessionCookie)) {
		return
	}
	var buf [512]byte
	kept := buf[:0]
	for rest := raw; len(rest) > 0; {
		var pair []byte
		pair, rest, _ = bytes.Cut(rest, []byte(";"))
		pair = bytes.TrimSpace(pair)
		name, _, _ := bytes.Cut(pair, []byte("="))
		if len(pair) == 0 || posternCookie(name) {
			continue
		}
		if len(kept) > 0 {
			kept = append(kept, "; "...)
		}
		kept = append(kept, pair...)
	}
	h.Del(fasthttp.HeaderCookie)
	if len(kept) > 0 {
		// fasthttp parses a Cookie header it is given and writes the pairs back: a quoted value loses
		// its quotes (RFC 6265 servers read it the same).
		h.SetCanonical([]byte(fasthttp.HeaderCookie), kept)
	}
}

func posternCookie(name []byte) bool {
	name = bytes.TrimPrefix(name, []byte("__Host-"))
	return string(name) == sessionCookie || string(name) == stateCookie
}

// cookieValue finds one cookie in a raw Cookie header (RFC 6265 section 4.2.1: name=value pairs
// separated by ";"), without parsing the others: on the proxy's path the app's cookies are only
// passed along.
func cookieValue(raw []byte, name string) []byte {
	for len(raw) > 0 {
		var pair []byte
		pair, raw, _ = bytes.Cut(raw, []byte(";"))
		pair = bytes.TrimLeft(pair, " ")
		if len(pair) > len(name) && pair[len(name)] == '=' && string(pair[:len(name)]) == name {
			return bytes.TrimSpace(pair[len(name)+1:])
		}
	}
	return nil
}
