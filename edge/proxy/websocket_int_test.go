package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

// The go.mod has no WebSocket library, so these tests carry a minimal RFC 6455 client and echo server:
// the opening handshake (section 4), and single-frame messages (section 5.2), masked from the client.

const (
	wsHost = "ws.acme.test"
	wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" // RFC 6455 section 1.3
)

const (
	opText  = 0x1
	opClose = 0x8
)

// wsUpstream is a net/http app with a WebSocket echo at /ws; every other path answers 404.
type wsUpstream struct {
	url      string
	requests atomic.Int64                // every request that reached it
	hdr      atomic.Pointer[http.Header] // the last accepted handshake's headers, stored before user is sent
	user     chan string                 // X-Forwarded-User of each accepted handshake
	ended    chan error                  // why each echo loop ended (nil: a close frame)
}

func newWSUpstream(t *testing.T) *wsUpstream {
	t.Helper()
	u := &wsUpstream{user: make(chan string, 8), ended: make(chan error, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Version") != "13" {
			http.Error(w, "not a websocket handshake", http.StatusBadRequest)
			return
		}
		h := r.Header.Clone()
		u.hdr.Store(&h)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		// A frame sent right behind the 101 must reach the client too.
		writeFrame(brw.Writer, opText, []byte("welcome"), false)
		if err := brw.Flush(); err != nil {
			u.ended <- err
			return
		}
		u.user <- r.Header.Get("X-Forwarded-User")
		for {
			op, msg, err := readFrame(brw.Reader)
			if err != nil {
				u.ended <- err
				return
			}
			writeFrame(brw.Writer, op, msg, false)
			if err := brw.Flush(); err != nil {
				u.ended <- err
				return
			}
			if op == opClose {
				u.ended <- nil
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		http.Error(w, "no socket here", http.StatusNotFound)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	u.url = "http://" + ln.Addr().String()
	return u
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// writeFrame writes one final frame; a client masks it (RFC 6455 section 5.3).
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op}
	var m byte
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, m|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, m|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, m|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	body := payload
	if mask {
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		body = make([]byte, len(payload))
		for i, c := range payload {
			body[i] = c ^ key[i%4]
		}
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// readFrame reads one frame, unmasking it when it is masked. Fragmented messages are not used here.
func readFrame(r io.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 {
		return 0, nil, errors.New("fragmented frame")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	if n > 1<<24 {
		return 0, nil, errors.New("frame too large for this test")
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0F, payload, nil
}

// wsDial sends an opening handshake for path to the edge and returns the connection, a reader past the
// response head, and the response (its body unread unless it is a 101).
func (e *env) wsDial(host, path string, header map[string]string) (net.Conn, *bufio.Reader, *http.Response) {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.base, "http://"), 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n", path, host)
	fmt.Fprintf(&b, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: echo\r\n", key)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		e.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	req, _ := http.NewRequest("GET", path, nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols && resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		e.t.Fatalf("Sec-WebSocket-Accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), wsAccept(key))
	}
	return conn, br, resp
}

// routeWS routes wsHost to a WebSocket upstream, for the staff group as acme's app route is.
func (e *env) routeWS(upstream string) {
	e.t.Helper()
	e.propose(directory.MakeOp(directory.OpRoutePut, directory.Route{Host: wsHost, Tenant: "acme", Upstream: upstream, App: "web",
		Allow: directory.Allow{Groups: []string{"staff"}}}))
}

func TestWebSocketEchoThroughTheProxy(t *testing.T) {
	e := newEnv(t)
	up := newWSUpstream(t)
	e.routeWS(up.url)
	tok, _ := e.token("acme", "ann")

	conn, br, resp := e.wsDial(wsHost, "/ws", map[string]string{"Authorization": "Bearer " + tok, "X-Forwarded-User": "mallory"})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("handshake: %d %s", resp.StatusCode, b)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Errorf("101 without the upgrade headers: %v", resp.Header)
	}
	select {
	case u := <-up.user:
		if u != "ann" {
			t.Errorf("upstream saw X-Forwarded-User %q, want ann", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never accepted the handshake")
	}
	h := *up.hdr.Load()
	if h.Get("Sec-WebSocket-Protocol") != "echo" || h.Get("Sec-WebSocket-Key") == "" || len(h.Values("X-Forwarded-User")) != 1 {
		t.Errorf("upstream handshake headers: %v", h)
	}

	if op, msg, err := readFrame(br); err != nil || op != opText || string(msg) != "welcome" {
		t.Fatalf("frame sent behind the 101: %d %q %v", op, msg, err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 70000/16) // a 64-bit length frame
	for _, m := range [][]byte{[]byte("hello"), bytes.Repeat([]byte("x"), 300), big, []byte("bye")} {
		if err := writeFrame(conn, opText, m, true); err != nil {
			t.Fatal(err)
		}
		op, got, err := readFrame(br)
		if err != nil || op != opText || !bytes.Equal(got, m) {
			t.Fatalf("echo of a %d-byte message: op %d, %d bytes, err %v", len(m), op, len(got), err)
		}
	}
	// Close handshake (RFC 6455 section 5.5.1): the upstream echoes it and closes; so does the proxy.
	if err := writeFrame(conn, opClose, []byte{0x03, 0xE8}, true); err != nil {
		t.Fatal(err)
	}
	if op, _, err := readFrame(br); err != nil || op != opClose {
		t.Fatalf("close: op %d, err %v", op, err)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the upstream closed, the client read %d bytes, err %v; want EOF", n, err)
	}
	if err := <-up.ended; err != nil {
		t.Errorf("upstream echo loop: %v", err)
	}
}

func TestWebSocketClientCloseEndsUpstream(t *testing.T) {
	e := newEnv(t)
	up := newWSUpstream(t)
	e.routeWS(up.url)
	tok, _ := e.token("acme", "ann")
	conn, br, resp := e.wsDial(wsHost, "/ws", map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d", resp.StatusCode)
	}
	<-up.user
	readFrame(br) // welcome
	conn.Close()
	select {
	case err := <-up.ended:
		if err == nil {
			t.Error("the upstream saw a close frame; want the connection to end")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection outlived the client's")
	}
}

func TestWebSocketRefused(t *testing.T) {
	e := newEnv(t)
	up := newWSUpstream(t)
	e.routeWS(up.url)

	// No token: 401 from the proxy, and the upstream never hears of it.
	conn, _, resp := e.wsDial(wsHost, "/ws", nil)
	conn.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="ws.acme.test"` {
		t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Signed in but not allowed: 403, upstream untouched too.
	bob, _ := e.token("acme", "bob")
	conn, _, resp = e.wsDial(wsHost, "/ws", map[string]string{"Authorization": "Bearer " + bob})
	conn.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("not in staff: %d, want 403", resp.StatusCode)
	}
	if n := up.requests.Load(); n != 0 {
		t.Errorf("refused handshakes reached the upstream %d times", n)
	}

	// The upstream declines (no socket at that path): its answer comes back as an ordinary response.
	ann, _ := e.token("acme", "ann")
	conn, _, resp = e.wsDial(wsHost, "/nope", map[string]string{"Authorization": "Bearer " + ann})
	body, _ := io.ReadAll(resp.Body)
	conn.Close()
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("no socket here")) {
		t.Errorf("declined upgrade: %d %q", resp.StatusCode, body)
	}

	// The upstream is down: 502, without the dial error's text.
	e.routeWS(deadUpstream(t))
	conn, _, resp = e.wsDial(wsHost, "/ws", map[string]string{"Authorization": "Bearer " + ann})
	body, _ = io.ReadAll(resp.Body)
	conn.Close()
	if resp.StatusCode != http.StatusBadGateway || bytes.Contains(body, []byte("refused")) || bytes.Contains(body, []byte("127.0.0.1")) {
		t.Errorf("upstream down: %d %q", resp.StatusCode, body)
	}

	// The upstream takes the connection but never answers: 504 after the upstream timeout.
	e.routeWS(silentUpstream(t))
	conn, _, resp = e.wsDial(wsHost, "/ws", map[string]string{"Authorization": "Bearer " + ann})
	conn.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("silent upstream: %d, want 504", resp.StatusCode)
	}
}

// silentUpstream is the URL of a listener that accepts connections and never writes to them.
func silentUpstream(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16)
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	return "http://" + ln.Addr().String()
}

// deadUpstream is the URL of a port nothing listens on.
func deadUpstream(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}
