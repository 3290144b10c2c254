package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestStripPosternCookiesKeepsTheApps(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postern_proxy=abc", ""},
		{"a=1; postern_proxy=abc; b=2", "a=1; b=2"},
		{"__Host-postern_proxy=abc;a=1", "a=1"},
		{"postern_proxy_state=s; postern_proxy=x", ""},
		{"postern_proxy_other=keep; b=2", "postern_proxy_other=keep; b=2"},
		{"a=\"q v\"", "a=\"q v\""}, // none of ours: untouched
		{"postern_proxy=x; a=\"q\"", "a=q"},
		{"a=1", "a=1"},
	}
	for _, c := range cases {
		// As a server reads it: the Cookie header raw, not parsed.
		var req fasthttp.Request
		if err := req.Header.Read(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\nCookie: " + c.in + "\r\n\r\n"))); err != nil {
			t.Fatal(err)
		}
		h := &req.Header
		stripPosternCookies(h)
		if got := string(h.Peek("Cookie")); got != c.want {
			t.Errorf("%q: Cookie %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCookieValue(t *testing.T) {
	cases := []struct{ raw, name, want string }{
		{"postern_proxy=abc", "postern_proxy", "abc"},
		{"a=1; postern_proxy=abc; b=2", "postern_proxy", "abc"},
		{"xpostern_proxy=no; postern_proxy_state=no", "postern_proxy", ""},
		{"__Host-postern_proxy=tls", "__Host-postern_proxy", "tls"},
		{"__Host-postern_proxy=tls", "postern_proxy", ""},
	}
	for _, c := range cases {
		if got := string(cookieValue([]byte(c.raw), c.name)); got != c.want {
			t.Errorf("cookieValue(%q, %q) = %q, want %q", c.raw, c.name, got, c.want)
		}
	}
}

// TestStripRequestHeaders: spoofed identity headers in any spelling, hop-by-hop headers and those the
// Connection header names go, with or without a Cookie header (which changes how the headers are
// read), and everything else, the app's cookies included, stays as sent. The X-Forwarded-* headers go
// too (the proxy writes its own), and the X-Forwarded-For values sent, in every line, are returned in
// order for the proxy to extend.
func TestStripRequestHeaders(t *testing.T) {
	spoofs := "X_Forwarded_User: mallory\r\nx-forwarded-EMAIL: m@evil.test\r\nX-Forwarded-Groups: admins\r\n" +
		"x_postern_assertion: forged\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
		"Forwarded: for=6.6.6.6\r\nProxy-Authorization: Basic eA==\r\n" +
		"X-Forwarded-For: 10.0.0.1 \r\nx-forwarded-proto: https\r\nX-Forwarded-Host: evil.test\r\nx-forwarded-for: 10.0.0.2,\r\n 10.0.0.3\r\n"
	for _, cookie := range []string{"", "theme=\"dark\"; sid=abc"} {
		raw := "GET / HTTP/1.1\r\nHost: app.test\r\nAccept: text/html\r\nX-App: kept\r\n" + spoofs
		if cookie != "" {
			raw += "Cookie: " + cookie + "\r\n"
		}
		var req fasthttp.Request
		if err := req.Header.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
			t.Fatal(err)
		}
		xff := string(stripRequestHeaders(&req.Header, []byte("XFF: ")))
		if want := "XFF: 10.0.0.1, 10.0.0.2, 10.0.0.3"; xff != want {
			t.Errorf("cookie %q: X-Forwarded-For values %q, want %q", cookie, xff, want)
		}
		// The app's cookies are as sent, not parsed and written afresh (which drops quotes).
		for k, want := range map[string]string{"Accept": "text/html", "X-App": "kept", "Cookie": cookie} {
			if got := string(req.Header.Peek(k)); got != want {
				t.Errorf("cookie %q: %s = %q, want %q", cookie, k, got, want)
			}
		}
		for k, v := range req.Header.All() {
			if spoofable(k) || hopByHopName(k) || strings.EqualFold(string(k), "X-Hop") || strings.EqualFold(string(k), "Forwarded") ||
				strings.HasPrefix(strings.ToLower(string(k)), "x-forwarded-") {
				t.Errorf("cookie %q: %s: %s reached the upstream", cookie, k, v)
			}
		}
	}
}

// TestStripRequestHeadersNotFromTheWire: a request made in process (no header block as received) is
// checked through its parsed headers instead.
func TestStripRequestHeadersNotFromTheWire(t *testing.T) {
	var req fasthttp.Request
	req.Header.Set("X_Forwarded_User", "mallory")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("X-App", "kept")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	if xff := string(stripRequestHeaders(&req.Header, nil)); xff != "10.0.0.1" {
		t.Errorf("X-Forwarded-For values %q, want 10.0.0.1", xff)
	}
	for _, k := range []string{"X_Forwarded_User", "Keep-Alive", "X-Forwarded-For"} {
		if v := req.Header.Peek(k); len(v) > 0 {
			t.Errorf("%s: %s reached the upstream", k, v)
		}
	}
	if v := string(req.Header.Peek("X-App")); v != "kept" {
		t.Errorf("X-App = %q, want kept", v)
	}
}

// TestHeaderLines: values the proxy writes into a request's head cannot end their line or start
// another, whatever the directory or the client holds; and the lines set as headers (any request but
// a bodiless GET or HEAD) give the same values.
func TestHeaderLines(t *testing.T) {
	lines := appendLine(nil, headerEmail, []byte("a@b.test\r\nX-Forwarded-User: admin\x00\x7f"))
	lines = appendLine(lines, headerGroups, []byte("staff,\tops"))
	if want := "X-Forwarded-Email: a@b.test  X-Forwarded-User: admin  \r\nX-Forwarded-Groups: staff,\tops\r\n"; string(lines) != want {
		t.Fatalf("lines = %q, want %q", lines, want)
	}
	var h fasthttp.RequestHeader
	setLines(&h, lines)
	if got := string(h.Peek(headerEmail)); got != "a@b.test  X-Forwarded-User: admin  " {
		t.Errorf("set as a header: %s = %q", headerEmail, got)
	}
	if got := h.Peek(headerUser); len(got) > 0 {
		t.Errorf("a value started a header line of its own: %s = %q", headerUser, got)
	}
}
