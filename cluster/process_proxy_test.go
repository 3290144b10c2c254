package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A token revoked through one edge is refused by the proxy of that edge at once and by another edge's
// proxy as soon as the revocation has replicated there: each edge drops what it cached of the token when
// its own replica applies the revocation.
func TestProxyHonoursARevocationOnEveryEdge(t *testing.T) {
	skipUnlessLong(t)
	c := startClusterEdgeFlags(t, 1, 2, []string{"--public-url", oidcPublicURL})
	e1, e2 := c.proc("e1"), c.proc("e2")

	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%s", r.Header.Get("X-Forwarded-User"))
	})}
	go srv.Serve(up)
	t.Cleanup(func() { srv.Close() })

	const host = "app.acme.test"
	manifest := map[string]any{
		"tenant": "acme",
		"apps":   []any{map[string]any{"name": "web", "type": "web", "redirect_uris": []string{oidcRedirect}}},
		"routes": []any{map[string]any{"host": host, "upstream": "http://" + up.Addr().String(), "app": "web",
			"allow": map[string]any{"authenticated": true}}},
	}
	var applied struct {
		Apps []struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		} `json:"apps"`
	}
	resp := c.mustCall(e1, "PUT", "/admin/v1/tenants/acme/manifest", manifest, nil, http.StatusOK)
	if err := json.Unmarshal(resp.body, &applied); err != nil || len(applied.Apps) != 1 || applied.Apps[0].ClientSecret == "" {
		t.Fatalf("applying the manifest: %v %s", err, resp.body)
	}
	app := applied.Apps[0]
	const email = "proxied@example.com"
	c.mustCall(e1, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": email, "password": oidcPassword,
		"email_verified": true}, nil, http.StatusCreated)

	issuer := oidcPublicURL + "/acme"
	verifier, challenge := pkcePair()
	code := signInForCode(t, c, e1, issuer, app.ClientID, email, challenge)
	tok := postToken(c, e1, app.ClientID, app.ClientSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {oidcRedirect}, "code_verifier": {verifier}})
	if tok.err != nil || tok.status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("redeeming the code: %v", &tok)
	}
	get := func(p *proc) int {
		req, _ := http.NewRequest("GET", "http://"+p.edgeAddr+"/", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("GET through %s: %v", p.id, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && !strings.HasPrefix(string(body), "user=") || string(body) == "user=" {
			t.Fatalf("through %s: the upstream saw no identity: %s", p.id, body)
		}
		return resp.StatusCode
	}
	// Both edges take the token (the second once the session has replicated: it catches up on a miss).
	for _, p := range []*proc{e1, e2} {
		if status := get(p); status != http.StatusOK {
			t.Fatalf("before revocation, through %s: HTTP %d", p.id, status)
		}
	}

	form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}
	req, _ := http.NewRequest("POST", "http://"+e1.edgeAddr+"/acme/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(app.ClientID), url.QueryEscape(app.ClientSecret))
	rr, err := c.http.Do(req)
	if err != nil || rr.StatusCode != http.StatusOK {
		t.Fatalf("revoking through e1: %v %v", err, rr)
	}
	rr.Body.Close()
	revoked := time.Now()
	if status := get(e1); status != http.StatusUnauthorized {
		t.Fatalf("through e1, right after revoking there: HTTP %d, want 401", status)
	}
	for {
		status := get(e2)
		if status == http.StatusUnauthorized {
			t.Logf("e2 refused the revoked token %v after e1 answered the revocation", time.Since(revoked))
			return
		}
		if time.Since(revoked) > 5*time.Second {
			t.Fatalf("e2 still answers HTTP %d five seconds after the revocation", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
