package pages

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCSRF(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	c := NewCSRF(key)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const binding, maxAge = "pre-session-cookie-value", 30 * time.Minute
	tok := c.Token(binding, now)

	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(tok) {
		t.Errorf("token %q is not URL-safe", tok)
	}
	if tok2 := c.Token(binding, now); tok2 != tok {
		t.Errorf("same binding and time gave two tokens")
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name    string
		c       *CSRF
		token   string
		binding string
		now     time.Time
		want    bool
	}{
		{"valid", c, tok, binding, now, true},
		{"valid later", c, tok, binding, now.Add(maxAge - time.Second), true},
		{"valid at max age", c, tok, binding, now.Add(maxAge), true},
		{"clock a little behind the issuer", c, tok, binding, now.Add(-time.Minute), true},
		{"expired", c, tok, binding, now.Add(maxAge + time.Second), false},
		{"issued in the future", c, tok, binding, now.Add(-10 * time.Minute), false},
		{"wrong binding", c, tok, "another-browser", now, false},
		{"empty binding", c, c.Token("", now), "", now, false},
		{"binding prefix", c, tok, binding[:10], now, false},
		{"other key", NewCSRF([]byte("fedcba9876543210fedcba9876543210")), tok, binding, now, false},
		{"tampered MAC", c, flip(tok, len(tok)-5), binding, now, false},
		{"tampered time", c, flip(tok, 6), binding, now, false},
		{"tampered version", c, flip(tok, 0), binding, now, false},
		{"truncated", c, tok[:len(tok)-1], binding, now, false},
		{"extended", c, tok + "A", binding, now, false},
		{"empty", c, "", binding, now, false},
		{"not base64", c, strings.Repeat("*", len(tok)), binding, now, false},
	}
	for _, tt := range tests {
		if got := tt.c.Check(tt.token, tt.binding, tt.now, maxAge); got != tt.want {
			t.Errorf("%s: Check = %v, want %v", tt.name, got, tt.want)
		}
	}

	// A token moved to a later time by rewriting its clear-text time fails: the time is under the MAC.
	later := c.Token(binding, now.Add(time.Hour))
	forged := later[:12] + tok[12:]
	if c.Check(forged, binding, now.Add(time.Hour), maxAge) {
		t.Error("a token with another token's time checked")
	}

	key[0] ^= 0xff // NewCSRF copied the key
	if !c.Check(tok, binding, now, maxAge) {
		t.Error("changing the caller's key slice changed the CSRF")
	}
}

func TestNewCSRFShortKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewCSRF with a 15-byte key did not panic")
		}
	}()
	NewCSRF(make([]byte, 15))
}
