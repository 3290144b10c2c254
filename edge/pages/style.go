package pages

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// StyleHash is the CSP source expression of the page's one <style> element, "sha256-<base64>", for a
// Content-Security-Policy header such as `style-src 'sha256-…'` (quotes added by the caller). The style
// depends only on the tenant's colours, so it is the same for every page of a tenant.
//
// # Notes
//
//   - Hash sources: https://www.w3.org/TR/CSP3/#grammardef-hash-source
func StyleHash(p Page) string {
	sum := sha256.Sum256([]byte(stylesheet(p.Branding.Colors)))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Colour keys a tenant may set in branding.colors. Others are ignored.
const (
	ColorPrimary     = "primary"      // buttons, links, focus rings
	ColorPrimaryText = "primary_text" // text on buttons; by default black or white, whichever contrasts more
	ColorBackground  = "background"   // the page
	ColorText        = "text"         // body text; by default near-black or near-white after the background
	ColorError       = "error"        // error messages and the borders of fields in error
)

var hexColor = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// safeColor returns colors[key] when it is #rgb or #rrggbb (lowercased), else def. Nothing else a tenant
// wrote ever reaches the style sheet.
func safeColor(colors map[string]string, key, def string) string {
	if c := strings.TrimSpace(colors[key]); hexColor.MatchString(c) {
		return strings.ToLower(c)
	}
	return def
}

// stylesheet is the text of the pages' <style> element. It is built from validated colours only and never
// holds '<' or '&', so it is safe as raw text inside <style>.
func stylesheet(colors map[string]string) string {
	bg := safeColor(colors, ColorBackground, "#ffffff")
	dark := luminance(bg) < 0.18
	fg, errc := "#1f2328", "#b42318"
	if dark {
		fg, errc = "#f0f3f6", "#ff9492"
	}
	fg = safeColor(colors, ColorText, fg)
	errc = safeColor(colors, ColorError, errc)
	primary := safeColor(colors, ColorPrimary, "#1f6feb")
	onPrimary := safeColor(colors, ColorPrimaryText, readableOn(primary))
	return fmt.Sprintf(css, primary, onPrimary, bg, fg, errc)
}

// css uses logical properties (margin-inline, text-align: start) so that right-to-left pages lay out too.
const css = `:root{--primary:%s;--on-primary:%s;--bg:%s;--fg:%s;--error:%s}
*,*::before,*::after{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;text-align:start}
.brand,main{max-width:28rem;margin-inline:auto;padding-inline:1rem}
.brand{display:flex;align-items:center;gap:.75rem;padding-block:1.5rem 0}
.brand img{max-height:3rem;max-width:12rem;width:auto;height:auto}
.company{font-weight:600;font-size:1.125rem}
main{padding-block:1rem 3rem}
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 1rem}
form{margin:0 0 1.5rem}
.field{margin:0 0 1.25rem}
label{display:block;font-weight:600;margin:0 0 .25rem}
.check{display:flex;gap:.5rem;align-items:flex-start;flex-wrap:wrap}
.check label{font-weight:400;margin:0;flex:1}
.optional{font-weight:400;opacity:.8}
.hint{margin:0 0 .25rem;font-size:.875rem;opacity:.85}
input{font:inherit;color:inherit}
.field input:not([type=checkbox]){display:block;width:100%%;padding:.625rem .75rem;background:transparent;border:1px solid currentColor;border-radius:.375rem}
input[type=checkbox]{width:1.25rem;height:1.25rem;margin:.125rem 0 0;accent-color:var(--primary)}
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--primary);outline-offset:2px}
.invalid input:not([type=checkbox]){border:2px solid var(--error)}
.field-error{margin:0 0 .25rem;color:var(--error);font-weight:600}
.form-error{margin:0 0 1.25rem;padding:.75rem 1rem;border:2px solid var(--error);border-radius:.375rem}
.form-error p{margin:0;color:var(--error);font-weight:600}
button{display:block;width:100%%;padding:.75rem 1rem;font:inherit;font-weight:600;color:var(--on-primary);background:var(--primary);border:1px solid var(--primary);border-radius:.375rem;cursor:pointer}
.secondary button{color:var(--primary);background:transparent}
a{color:var(--primary)}
.reference{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:1.125rem}
`

// luminance is the WCAG relative luminance of a validated #rgb or #rrggbb colour.
// https://www.w3.org/TR/WCAG22/#dfn-relative-luminance
func luminance(hex string) float64 {
	h := hex[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var l [3]float64
	for i := range l {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

// readableOn is black or white, whichever has the higher WCAG contrast ratio against bg.
func readableOn(bg string) string {
	l := luminance(bg)
	if (l+0.05)/0.05 >= 1.05/(l+0.05) {
		return "#000000"
	}
	return "#ffffff"
}

// maxLogoURL bounds the logo's URL; a data: URL is inlined in every page, so it should stay small.
const maxLogoURL = 256 << 10

var dataImage = regexp.MustCompile(`^(?i:data:image/(?:png|jpeg|gif|webp);base64),[A-Za-z0-9+/]+={0,2}$`)

// safeLogo returns the logo URL when it is an https: URL with a host and no credentials, or a base64
// data: URL of a PNG, JPEG, GIF or WebP image, and "" otherwise. SVG is refused even as an image: it is a
// document that can carry script and links, and the CSP is the only thing that would stop them.
func safeLogo(logo string) template.URL {
	logo = strings.TrimSpace(logo)
	if logo == "" || len(logo) > maxLogoURL {
		return ""
	}
	if len(logo) > 5 && strings.EqualFold(logo[:5], "data:") {
		if dataImage.MatchString(logo) {
			return template.URL(logo)
		}
		return ""
	}
	if strings.ContainsFunc(logo, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return ""
	}
	u, err := url.Parse(logo)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	return template.URL(logo)
}

// brandingOf is the tenant's branding as a page shows it.
func brandingOf(p Page) (company string, logo template.URL) {
	company = strings.TrimSpace(p.Branding.CompanyName)
	if company == "" {
		company = p.Tenant
	}
	return company, safeLogo(p.Branding.Logo)
}
