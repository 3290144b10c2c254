package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// auditEvent is an event of GET /admin/v1/tenants/{tenant}/audit.
type auditEvent struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Source  string    `json:"source"`
	Node    string    `json:"node"`
}

// TestExtensionLogInAudit: what a Wasm guest logs in a real node reaches its tenant's audit, through
// raft, with the node that ran it; so does the runtime's word when it ends a call. The blocklist guest
// logs each sign-up it blocks. Two extensions run it at sign-up: "blocklist" blocks @spam.test;
// "limited" blocks @big.test with a block page over its own max_output, so its call logs and then the
// runtime ends it (ErrLimit).
func TestExtensionLogInAudit(t *testing.T) {
	mods := exampleGuests(t, "blocklist")
	d := startExtDev(t)
	applyDemoWith(t, d, `
extensions:
  - id: blocklist
    wasm: blocklist.wasm
    events: [OnAttributeCollectionSubmit]
    config: {blocked: "@spam.test", message: "Sign-ups from this domain are closed."}
  - id: limited
    wasm: blocklist.wasm
    events: [OnAttributeCollectionSubmit]
    max_output: 1KiB
    config: {blocked: "@big.test", message: "`+strings.Repeat("closed ", 300)+`"}
`, mods)

	b := extBrowser(60 * time.Second)
	_, challenge := pkcePair()
	auth := d.issuer + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"demo-web"},
		"redirect_uri": {extRedirectURI}, "scope": {"openid email"}, "state": {"st-log"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	// signUp submits the sign-up form with email and returns the answer's status.
	signUp := func(email string) int {
		t.Helper()
		resp, _ := fetch(t, b, auth, nil)
		form := strings.Replace(resp.Request.URL.String(), "/sign-in?", "/sign-up?", 1)
		resp, body := fetch(t, b, form, nil)
		m := csrfField.FindSubmatch(body)
		if m == nil {
			t.Fatalf("no sign-up form at %s: %d\n%s", form, resp.StatusCode, body)
		}
		resp, err := b.PostForm(resp.Request.URL.String(), url.Values{"csrf": {string(m[1]) + string(m[2])},
			"email": {email}, "password": {"a-long-unusual-passphrase-73"}, "given_name": {"Some"}})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := signUp("someone@spam.test"); code != http.StatusForbidden {
		t.Errorf("a sign-up from a blocked domain: %d, want 403", code)
	}
	if code := signUp("someone@big.test"); code/100 == 2 {
		t.Errorf("a sign-up through an extension the runtime stopped: %d, want a failure", code)
	}

	// The lines are shipped within about a second; raft and the admin API take a little more.
	want := []struct{ target, level, source, text string }{
		{"blocklist", "info", "log", "blocked a sign-up from @spam.test"},
		{"limited", "info", "log", "blocked a sign-up from @big.test"},
		{"limited", "error", "host", "over the 1024-byte limit"},
	}
	var evs []auditEvent
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs = nil
		if code := d.get(t, "/admin/v1/tenants/demo/audit", &evs); code != http.StatusOK {
			t.Fatalf("GET audit: %d", code)
		}
		found := 0
		for _, w := range want {
			for _, e := range evs {
				if e.Action == "extension.log" && e.Target == w.target && e.Level == w.level && e.Source == w.source &&
					strings.Contains(e.Message, w.text) {
					found++
					if e.Actor != "extension:"+w.target || e.Node != "dev" || e.Time.IsZero() || time.Since(e.Time) > time.Minute {
						t.Errorf("event %+v: want actor extension:%s, node dev, and the time it was written", e, w.target)
					}
					break
				}
			}
		}
		if found == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit lacks the extensions' lines %+v; it holds:\n%+v", want, evs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The tenant's changes are still there beside them.
	changes := 0
	for _, e := range evs {
		if e.Action == "extension.put" {
			changes++
		}
	}
	if changes < 2 {
		t.Errorf("the audit holds %d extension.put events, want the two of the manifest:\n%+v", changes, evs)
	}
}
