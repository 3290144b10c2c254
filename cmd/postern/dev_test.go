package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	csrfField  = regexp.MustCompile(`name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"`)
	secretLine = regexp.MustCompile(`client_id demo-web, client_secret (\S+),`)
	userLine   = regexp.MustCompile(`demo@example.com, password (\S+)`)
	sixDigits  = regexp.MustCompile(`\b\d{6}\b`)
)

func postForm(t *testing.T, b *http.Client, pageURL string, fields url.Values) *http.Response {
	t.Helper()
	resp, err := b.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form at %s: %d\n%s", pageURL, resp.StatusCode, page)
	}
	fields.Set("csrf", string(m[1])+string(m[2]))
	resp, err = b.PostForm(resp.Request.URL.String(), fields)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// postern dev, as `make run` starts it: the printed sample client and user sign in, and a sign-up's code
// lands in DIR/outbox.
func TestDevSampleTenantSignsIn(t *testing.T) {
	d := startDev(t)
	out := strings.Join(d.printed, "\n")
	sec, pw := secretLine.FindStringSubmatch(out), userLine.FindStringSubmatch(out)
	if sec == nil || pw == nil {
		t.Fatalf("the start-up message lacks the sample client or user:\n%s", out)
	}
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "127.0.0.1:9000" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	iss := d.edgeURL + "/demo"
	auth := iss + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"demo-web"},
		"redirect_uri": {"http://127.0.0.1:9000/callback"}, "scope": {"openid email"}}.Encode()
	resp := postForm(t, b, auth, url.Values{"email": {"demo@example.com"}, "password": {pw[1]}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in with the printed password: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tr, err := http.PostForm(iss+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:9000/callback"}, "client_id": {"demo-web"}, "client_secret": {sec[1]}})
	if err != nil || tr.StatusCode != 200 {
		t.Fatalf("token with the printed secret: %v %v", tr, err)
	}
	tr.Body.Close()

	// A sign-up in a fresh browser: the demo tenant verifies email, and dev mail goes to the outbox.
	jar2, _ := cookiejar.New(nil)
	b2 := &http.Client{Jar: jar2, CheckRedirect: b.CheckRedirect}
	r0, err := b2.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	r0.Body.Close()
	signUp := strings.Replace(r0.Request.URL.String(), "/sign-in?", "/sign-up?", 1)
	resp = postForm(t, b2, signUp, url.Values{"email": {"new@example.com"}, "password": {"a-fresh-uncommon-passphrase-9"}, "given_name": {"New"}})
	verify := resp.Request.URL.String()
	var code string
	deadline := time.Now().Add(5 * time.Second)
	for code == "" && time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(d.data, "outbox", "*.eml"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "new@example.com") {
				code = sixDigits.FindString(string(b))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code == "" {
		t.Fatalf("no code in %s/outbox", d.data)
	}
	resp = postForm(t, b2, verify, url.Values{"code": {code}})
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("verifying the mailed code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
