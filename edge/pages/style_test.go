package pages

import (
	"strings"
	"testing"

	"postern.dev/postern/directory"
)

func TestSafeColor(t *testing.T) {
	for in, want := range map[string]string{
		"#1F6FEB": "#1f6feb", "#abc": "#abc", " #abcdef ": "#abcdef",
		"": "DEF", "red": "DEF", "#abcd": "DEF", "#abcdefa": "DEF", "#ggg": "DEF", "abc": "DEF",
		"#fff;}</style><script>": "DEF", "#fff\n": "#fff", "rgb(0,0,0)": "DEF", "var(--x)": "DEF",
		"#fff;background:url(x)": "DEF", "expression(alert(1))": "DEF",
	} {
		if got := safeColor(map[string]string{"primary": in}, "primary", "DEF"); got != want {
			t.Errorf("safeColor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStylesheetColors(t *testing.T) {
	css := stylesheet(map[string]string{"primary": "#ffdd00", "background": "#111", "text": "#EEE", "unknown": "#123456"})
	for _, want := range []string{"--primary:#ffdd00;", "--on-primary:#000000;", "--bg:#111;", "--fg:#eee;", "--error:#ff9492"} {
		if !strings.Contains(css, want) {
			t.Errorf("style sheet lacks %q", want)
		}
	}
	if strings.Contains(css, "#123456") {
		t.Error("an unknown colour key reached the style sheet")
	}
	if strings.ContainsAny(stylesheet(nil), "<&") {
		t.Error("the style sheet holds < or &")
	}
	if got := readableOn("#1f6feb"); got != "#ffffff" {
		t.Errorf("readableOn(#1f6feb) = %s", got)
	}
}

func TestStyleHash(t *testing.T) {
	a := Page{Kind: KindSignIn, Branding: directory.Branding{Colors: map[string]string{"primary": "#1f6feb"}}}
	b := Page{Kind: KindError, Branding: directory.Branding{Colors: map[string]string{"primary": "#1F6FEB", "x": "y"}}}
	c := Page{Kind: KindSignIn, Branding: directory.Branding{Colors: map[string]string{"primary": "#000"}}}
	if StyleHash(a) != StyleHash(b) {
		t.Error("the same colours hash differently")
	}
	if StyleHash(a) == StyleHash(c) {
		t.Error("different colours hash the same")
	}
	if h := StyleHash(a); !strings.HasPrefix(h, "sha256-") || len(h) != len("sha256-")+44 {
		t.Errorf("StyleHash = %q", h)
	}
}

func TestSafeLogo(t *testing.T) {
	for logo, keep := range map[string]bool{
		"https://cdn.acme.example/logo.png":                           true,
		"https://cdn.acme.example/logo.png?v=2#x":                     true,
		"HTTPS://cdn.acme.example/logo.png":                           true,
		"data:image/png;base64,iVBORw0KGgo=":                          true,
		"data:image/jpeg;base64,/9j/4AAQSkZJRg==":                     true,
		"data:image/gif;base64,R0lGODlhAQABAAAAACw=":                  true,
		"data:image/webp;base64,UklGRg==":                             true,
		"DATA:IMAGE/PNG;BASE64,iVBORw0KGgo=":                          true,
		"":                                                            false,
		"http://cdn.acme.example/logo.png":                            false,
		"//cdn.acme.example/logo.png":                                 false,
		"/logo.png":                                                   false,
		"logo.png":                                                    false,
		"https:///logo.png":                                           false,
		"https://user:pw@cdn.acme.example/logo.png":                   false,
		"https://cdn.acme.example/a b.png":                            false,
		"https://cdn.acme.example/\\evil":                             false,
		"javascript:alert(1)":                                         false,
		" javascript:alert(1)":                                        false,
		"JaVaScRiPt:alert(1)":                                         false,
		"vbscript:msgbox(1)":                                          false,
		"data:image/svg+xml;base64,PHN2Zz4=":                          false,
		"data:image/svg+xml,<svg onload=alert(1)>":                    false,
		"data:image/png,raw":                                          false,
		"data:image/png;base64,iVBOR\"><script>":                      false,
		"data:text/html;base64,PHNjcmlwdD4=":                          false,
		"data:image/png;charset=utf-8;base64,iVBO":                    false,
		"https://cdn.acme.example/" + strings.Repeat("a", maxLogoURL): false,
	} {
		if got := safeLogo(logo) != ""; got != keep {
			t.Errorf("safeLogo(%.60q) kept=%v, want %v", logo, got, keep)
		}
	}
}
