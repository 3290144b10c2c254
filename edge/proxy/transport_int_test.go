package proxy_test

import (
	"bufio"
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

// scriptedUpstream answers every request with the same raw bytes, closing the connection after it when
// closeAfter is set, and counts the connections it accepted: a second request on a reused pooled
// connection does not make another.
type scriptedUpstream struct {
	answer     string
	closeAfter bool
	conns      atomic.Int32
}

func (u *scriptedUpstream) serve(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					answer := u.answer
					if req.URL.Path == "/next" {
						answer = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
					}
					if _, err := io.WriteString(c, answer); err != nil || (u.closeAfter && req.URL.Path != "/next") {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestUpstreamAnswerFraming covers the proxy's round trip (transport.go) on every way an HTTP/1.1
// answer can be framed: the client gets the same body, and the upstream connection goes back to the
// pool only when the answer was read to its very end and the upstream did not close it.
func TestUpstreamAnswerFraming(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.token("acme", "ann")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	long := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB: over the size read whole

	tests := []struct {
		name       string
		method     string
		answer     string
		closeAfter bool
		status     int
		body       string
		reused     bool // the next request went over the same connection
	}{
		{"small, with a length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, "hello", true},
		{"empty, with a length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, "", true},
		{"long, with a length, streamed", "GET", "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(long)) + "\r\n\r\n" + long, false, 200, long, true},
		{"chunked, with trailers", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n", false, 200, "hello world", true},
		{"chunked, no trailers", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, 200, "abc", true},
		{"until the connection ends", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end", true, 200, "to the end", false},
		{"upstream says close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true, 200, "ok", false},
		{"early hints first", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", false, 200, "final", true},
		{"HEAD with a length has no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, 200, "", true},
		{"204 has no body", "GET", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", true},
		{"304 has no body", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false, 304, "", true},
		{"too many interim answers", "GET", strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 9) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 502, "", false},
		{"not HTTP", "GET", "SSH-2.0-OpenSSH_9.6\r\n", true, 502, "", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &scriptedUpstream{answer: tt.answer, closeAfter: tt.closeAfter}
			host := fmt.Sprintf("framing%d.acme.test", i)
			e.propose(directory.MakeOp(directory.OpRoutePut, directory.Route{Host: host, Tenant: "acme", Upstream: up.serve(t),
				App: "web", Allow: directory.Allow{Authenticated: true}}))

			resp := e.do(tt.method, host, "/", nil, auth)
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != tt.status || (tt.status != 502 && string(body) != tt.body) {
				t.Fatalf("HTTP %d, %d bytes %.40q, err %v; want %d, %d bytes %.40q", resp.StatusCode, len(body), body, err, tt.status, len(tt.body), tt.body)
			}
			next := e.do("GET", host, "/next", nil, auth)
			if b, _ := io.ReadAll(next.Body); next.StatusCode != 200 || string(b) != "next" {
				t.Fatalf("the next request: HTTP %d %q", next.StatusCode, b)
			}
			want := int32(2)
			if tt.reused {
				want = 1
			}
			if got := up.conns.Load(); got != want {
				t.Errorf("the upstream saw %d connections for two requests, want %d (reused: %v)", got, want, tt.reused)
			}
		})
	}
}

// TestUpstreamAnswerCutShort: an answer that ends before its promised length reaches the client cut
// short too (never padded or passed off as whole), and its connection is not pooled.
func TestUpstreamAnswerCutShort(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.token("acme", "ann")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	for i, n := range []int{10, 200 << 10} { // read whole, and streamed
		up := &scriptedUpstream{answer: fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nonly this", n), closeAfter: true}
		host := fmt.Sprintf("short%d.acme.test", i)
		e.propose(directory.MakeOp(directory.OpRoutePut, directory.Route{Host: host, Tenant: "acme", Upstream: up.serve(t),
			App: "web", Allow: directory.Allow{Authenticated: true}}))
		// A streamed answer fails after its head went out (the client sees the connection end); one
		// read whole fails before (the client gets a 502).
		req, _ := http.NewRequest("GET", e.base+"/", nil)
		req.Host = host
		req.Header.Set("Authorization", auth["Authorization"])
		if resp, err := client.Do(req); err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && err == nil {
				t.Errorf("length %d: the client got a whole-looking answer of %d bytes %q from a cut one", n, len(body), body)
			}
		}
		before := up.conns.Load()
		next := e.do("GET", host, "/next", nil, auth)
		io.Copy(io.Discard, next.Body)
		if got := up.conns.Load(); got != before+1 {
			t.Errorf("length %d: the next request made %d upstream connections, want 1 (the cut one not reused)", n, got-before)
		}
	}
}

// TestStalePooledConnection: a keep-alive connection the upstream closed while it sat in the pool is
// found dead by the next request; a GET is sent again on a fresh connection, a POST is not (it may have
// reached the upstream) and gets 502.
func TestStalePooledConnection(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.token("acme", "ann")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	for i, tt := range []struct {
		method string
		status int
	}{{"GET", 200}, {"POST", 502}} {
		// Every answer says keep-alive, and every connection is then closed.
		up := &scriptedUpstream{answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", closeAfter: true}
		host := fmt.Sprintf("stale%d.acme.test", i)
		e.propose(directory.MakeOp(directory.OpRoutePut, directory.Route{Host: host, Tenant: "acme", Upstream: up.serve(t),
			App: "web", Allow: directory.Allow{Authenticated: true}}))
		if resp := e.do("GET", host, "/", nil, auth); resp.StatusCode != 200 {
			t.Fatalf("first request: HTTP %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // the close reaches the edge's socket
		var body io.Reader
		if tt.method == "POST" {
			body = strings.NewReader("x")
		}
		resp := e.do(tt.method, host, "/", body, auth)
		if resp.StatusCode != tt.status {
			t.Errorf("%s on a stale pooled connection: HTTP %d, want %d", tt.method, resp.StatusCode, tt.status)
		}
	}
}
