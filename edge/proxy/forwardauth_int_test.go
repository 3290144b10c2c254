package proxy_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Forward-auth gives the reverse proxy's decisions as answers, with the identity in response headers,
// for each way the proxies in front describe the original request.
func TestForwardAuthDecisions(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.token("acme", "ann")
	bob, _ := e.token("acme", "bob")
	const postern = "postern.internal:8080" // the address the proxy in front calls: not a route
	cases := []struct {
		name       string
		host, path string
		header     map[string]string
		want       int
		user       string // X-Forwarded-User expected on 200
		location   string
	}{
		{"nginx: allowed", postern, "/.postern/auth_request",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Original-URI": "/private", "X-Original-Method": "GET", "Authorization": "Bearer " + ann},
			http.StatusOK, "ann", ""},
		{"nginx: not in the route's group", postern, "/.postern/auth_request",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Original-URI": "/private", "Authorization": "Bearer " + bob},
			http.StatusForbidden, "", ""},
		{"nginx: browser not signed in gets 401 with the sign-in address", postern, "/.postern/auth_request",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Original-URI": "/private?a=1", "Accept": "text/html"},
			http.StatusUnauthorized, "", "/.postern/sign_in?rd=%2Fprivate%3Fa%3D1"},
		{"nginx: API client not signed in", postern, "/.postern/auth_request",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Original-URI": "/private"},
			http.StatusUnauthorized, "", ""},
		{"traefik: method rule", postern, "/.postern/auth",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Forwarded-Uri": "/ro/x", "X-Forwarded-Method": "POST", "Authorization": "Bearer " + ann},
			http.StatusForbidden, "", ""},
		{"traefik: method allowed", postern, "/.postern/auth",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Forwarded-Uri": "/ro/x", "X-Forwarded-Method": "GET", "Authorization": "Bearer " + ann},
			http.StatusOK, "ann", ""},
		{"caddy: browser redirected", postern, "/.postern/auth",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Forwarded-Uri": "/shop", "Accept": "text/html"},
			http.StatusFound, "", "/.postern/sign_in?rd=%2Fshop"},
		{"envoy: original path after the prefix, host kept", acmeHost, "/.postern/auth/admin/x",
			map[string]string{"Authorization": "Bearer " + ann}, http.StatusForbidden, "", ""},
		{"envoy: public path", acmeHost, "/.postern/auth/static/app.css", nil, http.StatusOK, "", ""},
		{"path decided normalised", postern, "/.postern/auth",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Forwarded-Uri": "/static/../admin/x", "Authorization": "Bearer " + ann},
			http.StatusForbidden, "", ""},
		{"tenant beta's token on acme's host", postern, "/.postern/auth",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Forwarded-Uri": "/", "Authorization": "Bearer " + mustToken(e, "beta", "ann")},
			http.StatusUnauthorized, "", ""},
		{"nginx: a client's X-Forwarded-Uri means nothing there", postern, "/.postern/auth_request",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Original-URI": "/private", "X-Forwarded-Uri": "/static/x"},
			http.StatusUnauthorized, "", ""},
		{"nginx: no X-Original-URI is a misconfiguration", postern, "/.postern/auth_request",
			map[string]string{"X-Forwarded-Host": acmeHost, "Authorization": "Bearer " + ann}, http.StatusBadRequest, "", ""},
		{"traefik: X-Original-URI means nothing there", postern, "/.postern/auth",
			map[string]string{"X-Forwarded-Host": acmeHost, "X-Forwarded-Uri": "/private", "X-Original-URI": "/static/x"},
			http.StatusUnauthorized, "", ""},
		{"no route for the host", postern, "/.postern/auth",
			map[string]string{"X-Forwarded-Host": "nowhere.test", "Authorization": "Bearer " + ann}, http.StatusNotFound, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := e.do("GET", c.host, c.path, nil, c.header)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if got := resp.Header.Get("X-Forwarded-User"); got != c.user {
				t.Errorf("X-Forwarded-User = %q, want %q", got, c.user)
			}
			if c.user != "" {
				if resp.Header.Get("X-Postern-Assertion") == "" || !sameSet(resp.Header.Get("X-Forwarded-Groups"), "staff,ops") {
					t.Errorf("identity headers: assertion %q groups %q", resp.Header.Get("X-Postern-Assertion"), resp.Header.Get("X-Forwarded-Groups"))
				}
			}
			if got := resp.Header.Get("Location"); got != c.location {
				t.Errorf("Location = %q, want %q", got, c.location)
			}
			if c.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func mustToken(e *env, tenant, sub string) string {
	tok, _ := e.token(tenant, sub)
	return tok
}

func sameSet(a, b string) bool {
	x, y := strings.Split(a, ","), strings.Split(b, ",")
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
