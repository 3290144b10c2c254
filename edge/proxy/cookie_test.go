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
