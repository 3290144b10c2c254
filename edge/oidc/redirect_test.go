package oidc

import (
	"testing"

	"postern.dev/postern/directory"
)

func TestRedirectURIExactMatch(t *testing.T) {
	web := directory.App{Type: directory.AppWeb, RedirectURIs: []string{"https://shop.example.com/callback"}}
	native := directory.App{Type: directory.AppNative, RedirectURIs: []string{"http://127.0.0.1/callback", "com.example.app:/cb"}}
	tests := []struct {
		name string
		app  directory.App
		uri  string
		ok   bool
	}{
		{"exact", web, "https://shop.example.com/callback", true},
		{"suffix", web, "https://shop.example.com/callback/evil", false},
		{"suffix on host", web, "https://shop.example.com.evil.com/callback", false},
		{"query added", web, "https://shop.example.com/callback?x=1", false},
		{"fragment", web, "https://shop.example.com/callback#x", false},
		{"path parameter traversal", web, "https://shop.example.com/callback/..;/evil", false},
		{"encoded dot-dot", web, "https://shop.example.com/callback/%2e%2e/evil", false},
		{"userinfo", web, "https://shop.example.com@evil.com/callback", false},
		{"userinfo before host", web, "https://evil.com@shop.example.com/callback", false},
		{"scheme-relative", web, "//evil.com/callback", false},
		{"backslash", web, "https://shop.example.com/\\evil.com", false},
		{"slash backslash", web, "/\\evil.com", false},
		{"other case", web, "https://SHOP.example.com/callback", false},
		{"other case path", web, "https://shop.example.com/Callback", false},
		{"trailing dot", web, "https://shop.example.com./callback", false},
		{"http downgrade", web, "http://shop.example.com/callback", false},
		{"default port spelled out", web, "https://shop.example.com:443/callback", false},
		{"empty", web, "", false},
		{"javascript", web, "javascript:alert(1)", false},
		{"native exact", native, "com.example.app:/cb", true},
		{"native loopback any port", native, "http://127.0.0.1:51234/callback", true},
		{"native loopback no port", native, "http://127.0.0.1/callback", true},
		{"native loopback other path", native, "http://127.0.0.1:51234/other", false},
		{"native loopback query", native, "http://127.0.0.1:51234/callback?x", false},
		{"native loopback userinfo", native, "http://127.0.0.1:1@evil.com/callback", false},
		{"native localhost name", native, "http://localhost:51234/callback", false},
		{"native other loopback family", native, "http://[::1]:51234/callback", false},
		{"web app gets no port freedom", directory.App{Type: directory.AppWeb, RedirectURIs: []string{"http://127.0.0.1:9000/cb"}}, "http://127.0.0.1:9001/cb", false},
	}
	for _, tc := range tests {
		if got := redirectAllowed(tc.app, tc.uri); got != tc.ok {
			t.Errorf("%s: redirectAllowed(%q) = %v, want %v", tc.name, tc.uri, got, tc.ok)
		}
	}
}

func TestPKCEVerifier(t *testing.T) {
	// RFC 7636 appendix B.
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if !verifyPKCE(challenge, verifier) {
		t.Error("the RFC 7636 example does not verify")
	}
	for _, bad := range []string{"", "short", verifier + "x", verifier[:42], "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX!"} {
		if verifyPKCE(challenge, bad) {
			t.Errorf("verifier %q accepted", bad)
		}
	}
	if verifyPKCE(verifier, verifier) {
		t.Error("plain (verifier as challenge) accepted")
	}
}
