package pages

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name                      string
		uiLocales, accept, tenant string
		want                      string
	}{
		{"nothing at all", "", "", "", "en"},
		{"ui_locales", "fr", "", "", "fr"},
		{"ui_locales with region", "fr-CA", "", "", "fr"},
		{"ui_locales: first that matches", "de fr en", "", "", "fr"},
		{"ui_locales before Accept-Language", "en", "fr", "fr", "en"},
		{"ui_locales without a match: Accept-Language", "de", "fr-FR,fr;q=0.9", "", "fr"},
		{"ui_locales malformed: skipped", "!!! fr", "", "", "fr"},
		{"Accept-Language", "", "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "", "fr"},
		{"Accept-Language q-values, not order", "", "en;q=0.5, fr;q=0.9", "", "fr"},
		{"Accept-Language q=0 refuses", "", "fr;q=0, en", "", "en"},
		{"Accept-Language: a malformed entry costs only itself", "", "x_y_z_!!, fr", "", "fr"},
		{"Accept-Language: a malformed q costs only its entry", "", "fr;q=abc, en;q=0.1", "fr", "en"},
		{"Accept-Language case", "", "FR-be", "", "fr"},
		{"Accept-Language wildcard: tenant default", "", "*", "fr", "fr"},
		{"Accept-Language no match: tenant default", "", "de-DE,de;q=0.9,es;q=0.8", "fr", "fr"},
		{"Accept-Language no match, no default: English", "", "de-DE, es", "", "en"},
		{"tenant default", "", "", "fr", "fr"},
		{"tenant default with region", "", "", "fr-FR", "fr"},
		{"tenant default unsupported", "", "", "ja", "en"},
		{"tenant default malformed", "", "", "zz-!!", "en"},
		{"English variant", "en-GB", "", "fr", "en"},
	}
	for _, tt := range tests {
		if got := Negotiate(tt.uiLocales, tt.accept, tt.tenant); got != tt.want {
			t.Errorf("%s: Negotiate(%q, %q, %q) = %q, want %q", tt.name, tt.uiLocales, tt.accept, tt.tenant, got, tt.want)
		}
	}
}

// TestNegotiateHostile: huge or odd headers answer quickly with a supported tag, never a panic.
func TestNegotiateHostile(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("de,", 10000) + "fr",
		strings.Repeat("x-", 5000),
		strings.Repeat("a", 100000),
		"fr;q=1;q=0.5", "fr;q=2", ";;;,,,", "\x00fr", "en-u-ca-gregory-nu-arab",
	} {
		got := Negotiate(s, s, s)
		if _, ok := shipped.msgs[got]; !ok {
			t.Errorf("Negotiate(%.20q…) = %q, not a supported tag", s, got)
		}
	}
}

func TestDir(t *testing.T) {
	for locale, want := range map[string]string{
		"en": "ltr", "fr": "ltr", "de-CH": "ltr", "ja": "ltr", "sr-Cyrl": "ltr", "az": "ltr", "": "ltr", "!!": "ltr",
		"ar": "rtl", "ar-EG": "rtl", "he": "rtl", "fa": "rtl", "ur": "rtl", "dv": "rtl", "yi": "rtl", "ps": "rtl",
		"az-Arab": "rtl", "pa-Arab": "rtl", "ku-Arab": "rtl",
	} {
		if got := Dir(locale); got != want {
			t.Errorf("Dir(%q) = %q, want %q", locale, got, want)
		}
	}
}
