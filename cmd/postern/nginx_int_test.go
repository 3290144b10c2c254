package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxPath is Debian's nginx (package nginx), which .ci/run installs.
const nginxPath = "/usr/sbin/nginx"

// The placeholders of the README's nginx block, each replaced by what the test runs. The server_name
// line goes first: nginx wants the host there without its port.
var nginxPlaceholders = []string{"listen 80;", "server_name app.example.com;", "app.example.com", "postern:8080", "app:3000"}

var sampleAppLine = regexp.MustCompile(`Sample app:\s+(http://[0-9.:]+)\s`)

// echoed is what the test's upstream app saw of a request.
type echoed struct {
	URI       string `json:"uri"`
	Host      string `json:"host"`
	User      string `json:"user"`
	Email     string `json:"email"`
	Groups    string `json:"groups"`
	Assertion string `json:"assertion"`
	Proto     string `json:"proto"`
	Spoofed   string `json:"spoofed"` // any underscore variant of the identity headers that got through
}

func echoUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := echoed{URI: r.RequestURI, Host: r.Host, User: r.Header.Get("X-Forwarded-User"),
			Email: r.Header.Get("X-Forwarded-Email"), Groups: r.Header.Get("X-Forwarded-Groups"),
			Assertion: r.Header.Get("X-Postern-Assertion"), Proto: r.Header.Get("X-Forwarded-Proto")}
		for k := range r.Header {
			if strings.Contains(k, "_") {
				e.Spoofed += k + " "
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(s.Close)
	return s
}

// readmeNginx is the nginx server block of the README, with its placeholders filled in.
func readmeNginx(t *testing.T, values map[string]string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```nginx\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```nginx block")
	}
	var pairs []string
	for _, p := range nginxPlaceholders {
		if !strings.Contains(block, p) {
			t.Fatalf("README.md's nginx block lacks the placeholder %q", p)
		}
		pairs = append(pairs, p, values[p])
	}
	return strings.NewReplacer(pairs...).Replace(block)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startNginx runs nginx in the foreground with its prefix, pid file, logs and temporary files in a
// directory of the test, serving the given server block on 127.0.0.1:port.
func startNginx(t *testing.T, server, port string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "temp"), 0o700); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // the workers use the test's directory; as nobody they could not
	}
	conf := user + `pid nginx.pid;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log access.log;
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
` + server + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(nginxPath, "-p", dir, "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // fast shutdown: the master stops its workers
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			access, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			t.Logf("nginx.conf:\n%s\nnginx stderr:\n%s\naccess.log:\n%s", conf, stderr.String(), access)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("nginx exited: %s\nnginx.conf:\n%s", stderr.String(), conf)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %v\n%s", port, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// browserClient is an HTTP client with a cookie jar that reaches *.localhost on the loopback address (Go
// does not resolve those names) and never uses a proxy from the environment. follow=false stops at the
// first redirect; html=true sends Accept: text/html as a browser does.
func browserClient(jar http.CookieJar, follow, html bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: tr}
	if html {
		c.Transport = acceptHTML{tr}
	}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

type acceptHTML struct{ rt http.RoundTripper }

func (a acceptHTML) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Accept") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	return a.rt.RoundTrip(r)
}

// fetch sends a GET with the given headers and returns the response with its body read.
func fetch(t *testing.T, c *http.Client, rawURL string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// fetchEcho fetches from the upstream app, through nginx, and returns what the app saw.
func fetchEcho(t *testing.T, c *http.Client, rawURL string, header map[string]string) echoed {
	t.Helper()
	resp, body := fetch(t, c, rawURL, header)
	return decodeEcho(t, resp, body)
}

func decodeEcho(t *testing.T, resp *http.Response, body []byte) echoed {
	t.Helper()
	var e echoed
	if resp.StatusCode != 200 || json.Unmarshal(body, &e) != nil {
		t.Fatalf("want the upstream's 200, got %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	return e
}

// jwtClaims reads a JWT's payload; the signature is the upstream's to check, not this test's.
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("a JWT payload that does not decode: %q", parts[1])
	}
	return c
}

// signInForm answers the hosted sign-in page at pageURL (following redirects to it) and returns where the
// browser ends up after posting it, with that page's body.
func signInForm(t *testing.T, b *http.Client, pageURL, email, password string) (*http.Response, []byte) {
	t.Helper()
	resp, page := fetch(t, b, pageURL, nil)
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form at %s: %d\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	form := url.Values{"csrf": {string(m[1]) + string(m[2])}, "email": {email}, "password": {password}}
	resp, err := b.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// accessToken signs the sample user in to demo-web with a real authorization-code flow (the redirect URI
// needs no server: the browser stops at it) and redeems the code with the printed client secret.
func accessToken(t *testing.T, d *devServer, secret, password string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "127.0.0.1:9000" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	iss := d.edgeURL + "/demo"
	auth := iss + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"demo-web"},
		"redirect_uri": {"http://127.0.0.1:9000/callback"}, "scope": {"openid email"}, "state": {"st"}}.Encode()
	resp, _ := signInForm(t, b, auth, "demo@example.com", password)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("signing in to demo-web: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tr, err := http.PostForm(iss+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:9000/callback"}, "client_id": {"demo-web"}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Body.Close()
	var ts struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(tr.Body).Decode(&ts); err != nil || tr.StatusCode != 200 || ts.AccessToken == "" {
		t.Fatalf("redeeming the code: %d %v", tr.StatusCode, err)
	}
	return ts.AccessToken
}

// addRoute applies the sample manifest again with one more route (apply replaces what a manifest made,
// so the sample's app and route stay in it): host app.localhost:<port> to the upstream, /admin/ only for
// the group admins (which the sample user is not in), /public/ open to all.
func addRoute(t *testing.T, d *devServer, host, upstream string) {
	t.Helper()
	m := sampleAppLine.FindStringSubmatch(strings.Join(d.printed, "\n") + "\n")
	if m == nil {
		t.Fatalf("the start-up message lacks the sample app:\n%s", strings.Join(d.printed, "\n"))
	}
	edge, _ := url.Parse(d.edgeURL)
	text := strings.NewReplacer("${SAMPLE_UPSTREAM}", m[1], "${EDGE_PORT}", edge.Port()).Replace(string(sampleManifest))
	route := "  - host: " + host + "\n    upstream: " + upstream + "\n    app: demo-web\n" +
		"    allow: {authenticated: true, paths: [{prefix: /admin/, groups: [admins]}]}\n    public_paths: [/public/]\n"
	if !strings.Contains(text, "\nroutes:\n") {
		t.Fatal("sample-tenant.yaml has no routes: list to add to")
	}
	text = strings.Replace(text, "\nroutes:\n", "\nroutes:\n"+route, 1)
	file := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, r, stderr := applyFile(t, d, file)
	if code != 0 {
		t.Fatalf("apply failed (%d): %s", code, stderr)
	}
	for _, c := range r.Changes {
		if !strings.Contains(c, host) {
			t.Errorf("apply changed more than the new route: %q", c)
		}
	}
}

// TestNginxAuthRequest runs Debian's nginx with the README's auth_request configuration in front of a
// real app, asking a real `postern dev` about each request: a bearer token and a signed-in browser reach
// the app with the identity headers (and the client's forged ones gone), a person without the group gets
// 403, no credentials 401 or, for a browser, the way to sign in, which works through nginx end to end.
func TestNginxAuthRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts postern dev and nginx")
	}
	if _, err := os.Stat(nginxPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("needs Debian's nginx at /usr/sbin/nginx (apt-get install nginx); .ci/run installs it")
		}
		t.Fatalf("CI is set and nginx is missing: %v", err)
	}
	d := startDev(t)
	out := strings.Join(d.printed, "\n")
	sec, pw := secretLine.FindStringSubmatch(out), userLine.FindStringSubmatch(out)
	if sec == nil || pw == nil {
		t.Fatalf("the start-up message lacks the sample client or user:\n%s", out)
	}
	var user struct {
		ID string `json:"id"`
	}
	if code := d.get(t, "/admin/v1/tenants/demo/users/demo@example.com", &user); code != 200 || user.ID == "" {
		t.Fatalf("reading the sample user: %d %+v", code, user)
	}

	app := echoUpstream(t)
	port := freePort(t)
	host := "app.localhost:" + port
	addRoute(t, d, host, app.URL)
	edge, _ := url.Parse(d.edgeURL)
	startNginx(t, readmeNginx(t, map[string]string{
		"listen 80;":                   "listen 127.0.0.1:" + port + ";",
		"server_name app.example.com;": "server_name app.localhost;",
		"app.example.com":              host,
		"postern:8080":                 edge.Host,
		"app:3000":                     strings.TrimPrefix(app.URL, "http://"),
	}), port)
	base := "http://" + host
	token := accessToken(t, d, sec[1], pw[1])
	api := browserClient(nil, false, false)
	forged := map[string]string{"X-Forwarded-User": "mallory", "X-Forwarded-Email": "mallory@example.com",
		"X-Forwarded-Groups": "admins", "X-Postern-Assertion": "forged"}
	with := func(extra map[string]string) map[string]string {
		h := maps.Clone(forged)
		maps.Copy(h, extra)
		return h
	}

	t.Run("public path", func(t *testing.T) {
		e := fetchEcho(t, api, base+"/public/logo.svg", forged)
		if e.User != "" || e.Email != "" || e.Groups != "" || e.Assertion != "" {
			t.Errorf("the upstream got identity headers on a public path: %+v", e)
		}
	})

	t.Run("bearer token allowed", func(t *testing.T) {
		e := fetchEcho(t, api, base+"/dashboard?x=1", with(map[string]string{"Authorization": "Bearer " + token}))
		if e.User != user.ID || e.Email != "demo@example.com" || e.URI != "/dashboard?x=1" || e.Proto != "http" {
			t.Errorf("upstream saw %+v, want user %s, email demo@example.com, URI /dashboard?x=1", e, user.ID)
		}
		if e.Groups != "" {
			t.Errorf("X-Forwarded-Groups = %q: the client's forged value got through for a user in no group", e.Groups)
		}
		c := jwtClaims(t, e.Assertion)
		if c["sub"] != user.ID || c["aud"] != host || c["iss"] != d.edgeURL+"/demo" {
			t.Errorf("X-Postern-Assertion claims = %v", c)
		}
	})

	t.Run("forged underscore headers", func(t *testing.T) {
		e := fetchEcho(t, api, base+"/dashboard", map[string]string{"Authorization": "Bearer " + token,
			"X_Forwarded_User": "mallory", "X_Forwarded_Groups": "admins"})
		if e.Spoofed != "" || e.User != user.ID {
			t.Errorf("upstream saw %+v", e)
		}
	})

	t.Run("not signed in", func(t *testing.T) {
		resp, body := fetch(t, api, base+"/dashboard", forged)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="`+host+`"`) {
			t.Fatalf("want 401 with WWW-Authenticate: Bearer realm=%q, got %d %v\n%s", host, resp.StatusCode, resp.Header, body)
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			t.Errorf("a non-browser got Location %q", loc)
		}
		resp, _ = fetch(t, api, base+"/dashboard", map[string]string{"Authorization": "Bearer not-a-token"})
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("a bad token: want 401 with error=\"invalid_token\", got %d %v", resp.StatusCode, resp.Header)
		}
		// The original URI comes from nginx, never from the client's own X-Forwarded-Uri.
		resp, _ = fetch(t, api, base+"/dashboard", map[string]string{"X-Forwarded-Uri": "/public/x", "X-Original-URI": "/public/x"})
		if resp.StatusCode != 401 {
			t.Errorf("a forged X-Forwarded-Uri of a public path: want 401, got %d", resp.StatusCode)
		}
	})

	t.Run("signed in but not allowed", func(t *testing.T) {
		bearer := map[string]string{"Authorization": "Bearer " + token, "X-Forwarded-Groups": "admins"}
		resp, body := fetch(t, api, base+"/admin/users", bearer)
		if resp.StatusCode != 403 {
			t.Fatalf("the sample user (no group admins) at /admin/: want 403, got %d\n%s", resp.StatusCode, body)
		}
		bearer["X-Forwarded-Uri"] = "/dashboard"
		bearer["X-Forwarded-Method"] = "GET"
		if resp, _ := fetch(t, api, base+"/admin/users", bearer); resp.StatusCode != 403 {
			t.Errorf("a forged X-Forwarded-Uri: want 403, got %d", resp.StatusCode)
		}
	})

	t.Run("browser signs in through nginx", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		stop := browserClient(jar, false, true)
		resp, body := fetch(t, stop, base+"/dashboard?x=1", nil)
		loc, err := resp.Location()
		if resp.StatusCode != 302 || err != nil {
			t.Fatalf("a browser without a session: want 302 to sign in, got %d %v\n%s", resp.StatusCode, resp.Header, body)
		}
		if loc.Host != host || loc.Path != "/.postern/sign_in" || loc.Query().Get("rd") != "/dashboard?x=1" {
			t.Fatalf("Location = %s, want /.postern/sign_in?rd=%%2Fdashboard%%3Fx%%3D1 on %s", loc, host)
		}

		// The browser follows it: Postern's sign-in on the app's host (through nginx), the tenant's
		// hosted page, then back through nginx to /.postern/callback, which sets the host's cookie and
		// returns to the original URL, served by the app.
		browser := browserClient(jar, true, true)
		resp, body = signInForm(t, browser, loc.String(), "demo@example.com", pw[1])
		if resp.Request.URL.String() != base+"/dashboard?x=1" {
			t.Fatalf("after signing in the browser is at %s (%d), want %s/dashboard?x=1\n%s", resp.Request.URL, resp.StatusCode, base, body)
		}
		e := decodeEcho(t, resp, body)
		if e.User != user.ID || e.Email != "demo@example.com" || e.Assertion == "" {
			t.Errorf("upstream saw %+v", e)
		}
		var cookie bool
		for _, c := range jar.Cookies(&url.URL{Scheme: "http", Host: host, Path: "/"}) {
			cookie = cookie || c.Name == "postern_proxy"
		}
		if !cookie {
			t.Fatalf("no postern_proxy cookie for %s", host)
		}

		// The cookie alone is enough now, with any Accept; the path rules still hold.
		withCookie := browserClient(jar, false, false)
		e = fetchEcho(t, withCookie, base+"/reports", forged)
		if e.User != user.ID || e.Groups != "" {
			t.Errorf("with the cookie the upstream saw %+v", e)
		}
		if resp, _ := fetch(t, withCookie, base+"/admin/", nil); resp.StatusCode != 403 {
			t.Errorf("with the cookie at /admin/: want 403, got %d", resp.StatusCode)
		}

		// Sign-out through nginx ends the session: the next request is refused again.
		resp, body = fetch(t, withCookie, base+"/.postern/sign_out", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("sign-out: %d\n%s", resp.StatusCode, body)
		}
		if resp, _ := fetch(t, withCookie, base+"/reports", nil); resp.StatusCode != 401 {
			t.Errorf("after sign-out: want 401, got %d", resp.StatusCode)
		}
	})

	t.Run("auth endpoint is internal", func(t *testing.T) {
		if resp, _ := fetch(t, api, base+"/.postern/auth_request", nil); resp.StatusCode != 404 {
			t.Errorf("GET /.postern/auth_request from outside: want nginx's 404, got %d", resp.StatusCode)
		}
	})
}
