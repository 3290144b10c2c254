package wasm

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

func TestAllowedURL(t *testing.T) {
	for _, tc := range []struct {
		allowed []string
		url     string
		ok      bool
	}{
		{[]string{"api.acme.test"}, "https://api.acme.test/x", true},
		{[]string{"api.acme.test"}, "http://API.acme.test:8080/x", true},
		{[]string{"api.acme.test"}, "https://api.acme.test./x", true},
		{[]string{"api.acme.test"}, "https://evil.test/?u=api.acme.test", false},
		{[]string{"api.acme.test"}, "https://api.acme.test.evil.test/", false},
		{[]string{"api.acme.test:8443"}, "https://api.acme.test:8443/", true},
		{[]string{"api.acme.test:8443"}, "https://api.acme.test/", false},
		{[]string{"api.acme.test:443"}, "https://api.acme.test/", true},
		{[]string{"*.acme.test"}, "https://eu.api.acme.test/", true},
		{[]string{"*.acme.test"}, "https://acme.test/", false},
		{[]string{"*.acme.test"}, "https://evilacme.test/", false},
		{[]string{"127.0.0.1"}, "http://127.0.0.1:9999/", true},
		{[]string{"[::1]:80"}, "http://[::1]/", true},
		{[]string{"::1"}, "http://[::1]:81/", true},
		{[]string{"api.acme.test"}, "ftp://api.acme.test/", false},
		{[]string{"api.acme.test"}, "file:///etc/passwd", false},
		{[]string{"api.acme.test"}, "https://user:pw@api.acme.test/", false},
		{nil, "https://api.acme.test/", false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if err := allowedURL(tc.allowed, u); (err == nil) != tc.ok {
			t.Errorf("allowedURL(%q, %s) = %v, want ok %v", tc.allowed, tc.url, err, tc.ok)
		}
	}
}

func TestRefusePrivate(t *testing.T) {
	for addr, public := range map[string]bool{
		"127.0.0.1:80": false, "10.1.2.3:443": false, "172.16.0.1:443": false, "192.168.1.1:443": false,
		"169.254.169.254:80": false, "100.64.0.1:80": false, "0.0.0.0:80": false, "[::1]:443": false,
		"[fe80::1]:443": false, "[fd00::1]:443": false, "[::ffff:127.0.0.1]:80": false, "224.0.0.1:80": false,
		"93.184.216.34:443": true, "[2606:2800:220:1::]:443": true, "8.8.8.8:53": true,
	} {
		if err := refusePrivate("tcp", addr, nil); (err == nil) != public {
			t.Errorf("refusePrivate(%s) = %v, want public %v", addr, err, public)
		}
	}
}

// fetchAs runs one http_fetch as ext would, outside a guest.
func fetchAs(h *harness, cs *callState, req string) map[string]any {
	ctx := context.WithValue(context.Background(), callKey{}, cs)
	var out map[string]any
	_ = json.Unmarshal(h.fetch(ctx, cs, []byte(req)), &out)
	return out
}

func TestFetchPolicy(t *testing.T) {
	hits := make(chan string, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		switch r.URL.Path {
		case "/ok":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Echo", r.Header.Get("X-Test"))
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			w.WriteHeader(http.StatusTeapot)
			w.Write(body)
		case "/big":
			w.Write(make([]byte, 2<<20))
		case "/slow":
			<-release
		case "/redirect":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the slow handler
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- "other" + r.URL.Path
	}))
	t.Cleanup(other.Close)

	h := newHarness(t, func(c *Config) { c.Fetch.Timeout = 200 * time.Millisecond; c.Fetch.MaxPerCall = 3 })
	ext := directory.Extension{Tenant: "acme", ID: "f", AllowedHosts: []string{srv.Listener.Addr().String()}}
	cs := h.newCallState(ext)

	got := fetchAs(h, cs, `{"method":"post","url":"`+srv.URL+`/ok","headers":{"X-Test":"yes"},"body":"ping"}`)
	if got["status"] != float64(418) || got["body"] != "ping" {
		t.Errorf("fetch: %v", got)
	}
	if hd, _ := got["headers"].(map[string]any); hd["X-Echo"] != "yes" || hd["X-Multi"] != "a, b" {
		t.Errorf("headers: %v", got["headers"])
	}
	<-hits

	for _, tc := range []struct{ req, want string }{
		{`{"url":"` + srv.URL + `/big"}`, "response larger than 1048576 bytes"},
		{`{"url":"` + srv.URL + `/slow"}`, "timed out"},
		{`{"url":"` + srv.URL + `/redirect?to=` + url.QueryEscape(other.URL+"/x") + `"}`, "is not in the extension's allowed_hosts"},
	} {
		cs := h.newCallState(ext)
		got := fetchAs(h, cs, tc.req)
		if e, _ := got["error"].(string); !strings.Contains(e, tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.req, got, tc.want)
		}
	}
	for _, tc := range []struct{ req, want string }{
		{`not json`, "not JSON"},
		{`{"url":"http://example.test/"}`, "is not in the extension's allowed_hosts"},
		{`{"url":"file:///etc/passwd"}`, "scheme"},
	} {
		got := fetchAs(h, h.newCallState(ext), tc.req)
		if e, _ := got["error"].(string); !strings.Contains(e, tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.req, got, tc.want)
		}
	}

	// At most MaxPerCall fetches per call.
	cs = h.newCallState(ext)
	for range 3 {
		fetchAs(h, cs, `{"url":"`+srv.URL+`/ok"}`)
	}
	if e, _ := fetchAs(h, cs, `{"url":"`+srv.URL+`/ok"}`)["error"].(string); !strings.Contains(e, "more than 3 fetches") {
		t.Errorf("fourth fetch: %q", e)
	}

	for len(hits) > 0 {
		if p := <-hits; strings.HasPrefix(p, "other") {
			t.Errorf("a redirect reached a host not allowed: %s", p)
		}
	}
}

// TestFetchPrivateAddresses: by default an allowed host name that resolves to a loopback address is
// still refused, so an extension cannot reach the node's own services.
func TestFetchPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a fetch reached a loopback server")
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t, func(c *Config) { c.Fetch.AllowPrivateAddresses = false })
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	ext := directory.Extension{Tenant: "acme", ID: "f", AllowedHosts: []string{"localhost", "127.0.0.1"}}
	for _, u := range []string{"http://localhost:" + port + "/", srv.URL} {
		got := fetchAs(h, h.newCallState(ext), `{"url":"`+u+`"}`)
		if e, _ := got["error"].(string); !strings.Contains(e, "is not public") {
			t.Errorf("%s: %v, want refused as not public", u, got)
		}
	}
}
