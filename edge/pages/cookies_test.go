package pages

import "testing"

func TestCookies(t *testing.T) {
	tests := []struct {
		secure          bool
		wantName, attrs string
	}{
		{true, "__Host-postern_session", "Path=/; HttpOnly; SameSite=Lax; Secure"},
		{false, "postern_session", "Path=/; HttpOnly; SameSite=Lax"},
	}
	for _, tt := range tests {
		if got := CookieName("postern_session", tt.secure); got != tt.wantName {
			t.Errorf("CookieName(secure=%v) = %q, want %q", tt.secure, got, tt.wantName)
		}
		if got := CookieAttrs(tt.secure); got != tt.attrs {
			t.Errorf("CookieAttrs(%v) = %q, want %q", tt.secure, got, tt.attrs)
		}
	}
}
