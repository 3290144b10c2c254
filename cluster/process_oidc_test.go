package cluster_test

// The OpenID Connect provider on real processes. An authorization code is sealed with the cluster's KEK,
// so any edge can open it, and whether it was used is decided by one raft write (code.redeem), so however
// many edges a client's retries or a load balancer spread its redemption over, it is redeemed once.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// oidcPublicURL is the --public-url of both edges: behind one load balancer they are one issuer, and a
	// token endpoint refuses nothing for having been reached through the other edge. Nothing listens
	// there; requests go to an edge's own address with the same path.
	oidcPublicURL = "http://login.postern.test"
	oidcRedirect  = "http://127.0.0.1:9/callback"
	oidcPassword  = "race-Harbour-Violet-7-Kettle"
)

// Two edges receive the same authorization code at the same moment, twenty times over, each time with a
// fresh code: exactly one answers with tokens, the other with invalid_grant (RFC 6749 section 4.1.2: a
// code is used once), and the loser revokes what the winner issued.
func TestCodeRedeemedOnceAcrossTwoEdges(t *testing.T) {
	skipUnlessLong(t)
	c := startClusterEdgeFlags(t, 1, 2, []string{"--public-url", oidcPublicURL})
	e1, e2 := c.proc("e1"), c.proc("e2")
	c.createTenant(e1, "acme")
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	resp := c.mustCall(e1, "POST", "/admin/v1/tenants/acme/apps", map[string]any{"name": "web", "type": "web",
		"redirect_uris": []string{oidcRedirect}}, nil, http.StatusCreated)
	if err := json.Unmarshal(resp.body, &app); err != nil || app.ClientID == "" || app.ClientSecret == "" {
		t.Fatalf("creating the app: %v %s", err, resp.body)
	}
	const email = "racer@example.com"
	last := c.mustCall(e1, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": email, "password": oidcPassword,
		"email_verified": true}, nil, http.StatusCreated).index()

	// Both edges are the one issuer.
	issuer := oidcPublicURL + "/acme"
	for _, p := range []*proc{e1, e2} {
		c.waitApplied(p, last)
		var d struct {
			Issuer        string `json:"issuer"`
			TokenEndpoint string `json:"token_endpoint"`
		}
		if status := getEdgeJSON(t, c, p, "/acme/.well-known/openid-configuration", &d); status != http.StatusOK {
			t.Fatalf("discovery on %s: HTTP %d", p.id, status)
		}
		if d.Issuer != issuer || d.TokenEndpoint != issuer+"/token" {
			t.Fatalf("discovery on %s: issuer %q, token endpoint %q; want the issuer %q on every edge", p.id, d.Issuer, d.TokenEndpoint, issuer)
		}
	}

	const rounds = 20
	wins := map[string]int{}
	for round := 1; round <= rounds; round++ {
		verifier, challenge := pkcePair()
		code := signInForCode(t, c, e1, issuer, app.ClientID, email, challenge)
		// The other edge must hold the session and user the code names, or it would refuse the code for
		// lagging behind rather than for losing the race.
		applied, err := c.appliedIndex(e1)
		if err != nil {
			t.Fatal(err)
		}
		c.waitApplied(e2, applied)

		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcRedirect},
			"code_verifier": {verifier}}
		edges := []*proc{e1, e2}
		answers := make([]tokenAnswer, len(edges))
		startGun := make(chan struct{})
		var wg sync.WaitGroup
		for i, p := range edges {
			wg.Go(func() {
				<-startGun
				answers[i] = postToken(c, p, app.ClientID, app.ClientSecret, form)
			})
		}
		close(startGun)
		wg.Wait()

		var winner, loser *tokenAnswer
		for i := range answers {
			a := &answers[i]
			switch {
			case a.err != nil:
				t.Fatalf("round %d: redeeming on %s: %v", round, a.via, a.err)
			case a.status == http.StatusOK && a.AccessToken != "" && a.IDToken != "" && a.RefreshToken != "" && winner == nil:
				winner = a
			case a.status == http.StatusBadRequest && a.Error == "invalid_grant" && loser == nil:
				loser = a
			}
		}
		if winner == nil || loser == nil {
			t.Fatalf("round %d: %v and %v; want exactly one 200 with tokens and one 400 invalid_grant", round, &answers[0], &answers[1])
		}
		wins[winner.via]++
		if round == 1 {
			t.Logf("round 1: %s redeemed the code; %s answered %v", winner.via, loser.via, loser)
		}
		// The second use revoked the refresh-token family of the first (decided in raft, so whichever
		// edge is asked).
		refresh := postToken(c, c.proc(winner.via), app.ClientID, app.ClientSecret,
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {winner.RefreshToken}})
		if refresh.err != nil || refresh.status != http.StatusBadRequest || refresh.Error != "invalid_grant" {
			t.Errorf("round %d: the winner's refresh token after the code's second use: %v, want 400 invalid_grant", round, &refresh)
		}
	}
	t.Logf("%d codes, each sent to both edges at once: redeemed by e1 %d times, by e2 %d times, never twice",
		rounds, wins["e1"], wins["e2"])

	// A code is good on another edge at once, even before that edge's replica has the session: a miss
	// waits for a barrier and reads again.
	for round := 1; round <= 15; round++ {
		verifier, challenge := pkcePair()
		code := signInForCode(t, c, e1, issuer, app.ClientID, email, challenge)
		a := postToken(c, e2, app.ClientID, app.ClientSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {oidcRedirect}, "code_verifier": {verifier}})
		if a.err != nil || a.status != http.StatusOK || a.RefreshToken == "" {
			t.Fatalf("round %d: a fresh code redeemed at once on the other edge: %v", round, &a)
		}
		// And its refresh token at once back on the first.
		r := postToken(c, e1, app.ClientID, app.ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}})
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("round %d: refreshing at once on the first edge: %v", round, &r)
		}
	}
}

// waitApplied waits until p's replica has applied index: the admin API's read-your-writes header makes a
// read wait for it.
func (c *testCluster) waitApplied(p *proc, index uint64) {
	c.t.Helper()
	c.mustCall(p, "GET", "/admin/v1/tenants", nil, map[string]string{"X-Postern-Min-Index": strconv.FormatUint(index, 10)}, http.StatusOK)
}

// edgeURL is where a URL under the public URL is served by edge p.
func edgeURL(t *testing.T, p *proc, public string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(public, oidcPublicURL+"/")
	if !ok {
		t.Fatalf("%q is not under the public URL %s", public, oidcPublicURL)
	}
	return "http://" + p.edgeAddr + "/" + rest
}

func getEdgeJSON(t *testing.T, c *testCluster, p *proc, path string, out any) int {
	t.Helper()
	resp, err := c.http.Get("http://" + p.edgeAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s on %s: %v", path, p.id, err)
		}
	}
	return resp.StatusCode
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

var (
	csrfInput  = regexp.MustCompile(`name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"`)
	formAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// signInForCode signs in with a password through edge p's hosted page, in a new browser, as the
// authorization request asks (PKCE S256), and returns the code from the redirect to the client.
func signInForCode(t *testing.T, c *testCluster, p *proc, issuer, clientID, email, challenge string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: c.http.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	state := "st-" + challenge[:8]
	authorize := issuer + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID},
		"redirect_uri": {oidcRedirect}, "scope": {"openid"}, "state": {state}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}}.Encode()
	resp, body := browse(t, b, "GET", edgeURL(t, p, authorize), nil)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), issuer+"/") {
		t.Fatalf("authorize on %s: HTTP %d to %q, want a redirect to the sign-in page:\n%s", p.id, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = browse(t, b, "GET", edgeURL(t, p, resp.Header.Get("Location")), nil)
	csrf, action := csrfInput.FindSubmatch(body), formAction.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || csrf == nil || action == nil {
		t.Fatalf("sign-in page on %s: HTTP %d without a form and its CSRF field:\n%s", p.id, resp.StatusCode, body)
	}
	form := url.Values{"csrf": {string(csrf[1]) + string(csrf[2])}, "email": {email}, "password": {oidcPassword}}
	resp, body = browse(t, b, "POST", edgeURL(t, p, html.UnescapeString(string(action[1]))), form)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), oidcRedirect+"?") {
		t.Fatalf("signing in on %s: HTTP %d to %q, want a redirect to the client:\n%s", p.id, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	q := loc.Query()
	if q.Get("code") == "" || q.Get("state") != state || q.Get("iss") != issuer {
		t.Fatalf("signing in on %s: authorization response %v", p.id, q)
	}
	return q.Get("code")
}

func browse(t *testing.T, b *http.Client, method, u string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if form != nil {
		r = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp, body
}

// tokenAnswer is a token endpoint's answer: tokens, or an RFC 6749 section 5.2 error.
type tokenAnswer struct {
	via    string
	status int
	err    error

	AccessToken      string `json:"access_token"`
	IDToken          string `json:"id_token"`
	RefreshToken     string `json:"refresh_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (a *tokenAnswer) String() string {
	switch {
	case a.err != nil:
		return fmt.Sprintf("%s: %v", a.via, a.err)
	case a.Error != "":
		return fmt.Sprintf("%s: HTTP %d %s (%s)", a.via, a.status, a.Error, a.ErrorDescription)
	}
	return fmt.Sprintf("%s: HTTP %d", a.via, a.status)
}

// postToken sends a token request to edge p with client_secret_basic.
func postToken(c *testCluster, p *proc, clientID, secret string, form url.Values) tokenAnswer {
	a := tokenAnswer{via: p.id}
	req, err := http.NewRequest("POST", "http://"+p.edgeAddr+"/acme/token", strings.NewReader(form.Encode()))
	if err != nil {
		a.err = err
		return a
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := c.http.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		err = json.Unmarshal(body, &a)
	}
	if err != nil {
		a.err = fmt.Errorf("HTTP %d %s: %v", resp.StatusCode, body, err)
	}
	return a
}
