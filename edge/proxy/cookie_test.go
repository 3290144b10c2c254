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
// read), and everything else, the app's cookies included, stays as sent.
func TestStripRequestHeaders(t *testing.T) {
	spoofs := "X_Forwarded_User: mallory\r\nx-forwarded-EMAIL: m@evil.test\r\nX-Forwarded-Groups: admins\r\n" +
		"x_postern_assertion: forged\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
		"Forwarded: for=6.6.6.6\r\nProxy-Authorization: Basic eA==\r\n"
	for _, cookie := range []string{"", "theme=\"dark\"; sid=abc"} {
		raw := "GET / HTTP/1.1\r\nHost: app.test\r\nAccept: text/html\r\nX-App: kept\r\n" + spoofs
		if cookie != "" {
			raw += "Cookie: " + cookie + "\r\n"
		}
		var req fasthttp.Request
		if err := req.Header.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
			t.Fatal(err)
		}
		stripRequestHeaders(&req.Header)
		// The app's cookies are as sent, not parsed and written afresh (which drops quotes).
		for k, want := range map[string]string{"Accept": "text/html", "X-App": "kept", "Cookie": cookie} {
			if got := string(req.Header.Peek(k)); got != want {
				t.Errorf("cookie %q: %s = %q, want %q", cookie, k, got, want)
			}
		}
		for k, v := range req.Header.All() {
			if spoofable(k) || hopByHopName(k) || strings.EqualFold(string(k), "X-Hop") || strings.EqualFold(string(k), "Forwarded") {
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
	stripRequestHeaders(&req.Header)
	if v := req.Header.Peek("X_Forwarded_User"); len(v) > 0 {
		t.Errorf("X_Forwarded_User: %s reached the upstream", v)
	}
	if v := req.Header.Peek("Keep-Alive"); len(v) > 0 {
		t.Errorf("Keep-Alive: %s reached the upstream", v)
	}
	if v := string(req.Header.Peek("X-App")); v != "kept" {
		t.Errorf("X-App = %q, want kept", v)
	}
}
