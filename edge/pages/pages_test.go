package pages

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"postern.dev/postern/directory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// acme is a tenant as the manifest example of CONTRACT.md sets it up.
var acme = directory.Branding{
	CompanyName: "Acme Shop",
	Colors:      map[string]string{"primary": "#1f6feb", "background": "#ffffff"},
	Logo:        "https://cdn.acme.example/logo.png",
	Strings:     map[string]map[string]string{"fr": {"sign_in_title": "Connexion à Acme"}},
}

var acmeAttributes = []directory.AttributeDef{
	{Name: "given_name", Required: true},
	{Name: "family_name"},
	{Name: "phone_number"},
	{Name: "loyalty_id", Type: "string", Pattern: "^[0-9]{8}$", Label: "Loyalty card number"},
	{Name: "shoe_size", Type: "number"},
	{Name: "birthday", Type: "date"},
	{Name: "newsletter", Type: "boolean"},
}

// fullPage is a page of the given kind with everything that kind can show.
func fullPage(kind, locale string) Page {
	p := Page{
		Kind: kind, Locale: locale, Tenant: "acme", Branding: acme,
		Action: "/acme/sign-up?j=J0urney&step=2", CSRF: "csrf-token-123",
		Email: "jane@example.com",
		Links: map[string]string{"sign_in": "/acme/sign-in?j=J0urney", "sign_up": "/acme/sign-up?j=J0urney",
			"back": "https://shop.acme.example/", "resend": "/acme/verify/resend?j=J0urney"},
		CorrelationID: "c0ffee123456",
	}
	switch kind {
	case KindSignIn:
		p.FormErrorID = "invalid_credentials"
	case KindSignUp:
		p.FormErrorID = "email_taken"
		p.PasswordError = "password_common"
		p.Fields = AttributeFields(acmeAttributes,
			map[string]string{"given_name": "Jane", "loyalty_id": "12ab", "newsletter": "true"},
			map[string]string{"loyalty_id": "pattern_mismatch"})
	case KindVerifyCode:
		p.CodeError = "code_invalid"
		p.FormErrorID = "too_many_attempts"
	case KindError:
		p.Message = "journey_expired"
	}
	return p
}

func render1(t *testing.T, p Page) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, p); err != nil {
		t.Fatalf("Render(%s, %s): %v", p.Kind, p.Locale, err)
	}
	return b.String()
}

func TestSignUpGolden(t *testing.T) {
	got := render1(t, fullPage(KindSignUp, "en"))
	golden := filepath.Join("testdata", "sign_up.en.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading the golden file (go test -update to write it): %v", err)
	}
	if got != string(want) {
		t.Errorf("sign_up.en differs from %s (go test -update to accept):\n%s", golden, got)
	}
}

var kinds = []string{KindSignIn, KindSignUp, KindVerifyCode, KindSignedOut, KindError}

var titleID = map[string]string{KindSignIn: "sign_in_title", KindSignUp: "sign_up_title",
	KindVerifyCode: "verify_code_title", KindSignedOut: "signed_out_title", KindError: "error_title"}

// TestEveryPageInEveryLanguage renders each page in each shipped language, full and bare, and holds it to
// the hosted-page rules.
func TestEveryPageInEveryLanguage(t *testing.T) {
	for _, locale := range Locales() {
		for _, kind := range kinds {
			t.Run(kind+"."+locale, func(t *testing.T) {
				p := fullPage(kind, locale)
				doc := render1(t, p)
				root := checkPage(t, p, doc)
				if got := root.all("html")[0].attrs["lang"]; got != locale {
					t.Errorf("lang = %q, want %q", got, locale)
				}
				wantTitle := shipped.msgs[locale][titleID[kind]]
				if s, ok := acme.Strings[locale][titleID[kind]]; ok {
					wantTitle = s
				}
				if h1 := root.all("h1"); len(h1) != 1 || h1[0].textContent() != wantTitle {
					t.Errorf("h1 = %v, want %q", h1, wantTitle)
				}
				if kind != KindSignedOut && kind != KindError && !strings.Contains(doc, `role="alert"`) {
					t.Errorf("form error not shown")
				}

				bare := Page{Kind: kind, Locale: locale, CSRF: "t"}
				checkPage(t, bare, render1(t, bare))
			})
		}
	}
}

func TestSignUpFields(t *testing.T) {
	root := parseHTML(t, render1(t, fullPage(KindSignUp, "en")))
	inputs := map[string]*element{}
	var order []string
	for _, in := range root.all("input") {
		inputs[in.attrs["name"]] = in
		order = append(order, in.attrs["name"])
	}
	wantOrder := []string{"csrf", "email", "password", "given_name", "family_name", "phone_number", "loyalty_id",
		"shoe_size", "birthday", "newsletter"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("inputs in order %v, want %v", order, wantOrder)
	}
	tests := []struct {
		name  string
		attrs map[string]string // "" value: the attribute must be absent
	}{
		{"email", map[string]string{"type": "email", "autocomplete": "email", "value": "jane@example.com", "required": "required"}},
		{"password", map[string]string{"type": "password", "autocomplete": "new-password", "minlength": "8", "value": "",
			"aria-invalid": "true", "aria-describedby": "password-hint password-error"}},
		{"given_name", map[string]string{"type": "text", "autocomplete": "given-name", "required": "required", "value": "Jane"}},
		{"family_name", map[string]string{"type": "text", "autocomplete": "family-name", "required": ""}},
		{"phone_number", map[string]string{"type": "tel", "autocomplete": "tel"}},
		{"loyalty_id", map[string]string{"type": "text", "autocomplete": "off", "pattern": "^[0-9]{8}$", "value": "12ab",
			"aria-invalid": "true", "aria-describedby": "attr-loyalty_id-error"}},
		{"shoe_size", map[string]string{"type": "number", "inputmode": "numeric", "autocomplete": "off", "pattern": ""}},
		{"birthday", map[string]string{"type": "date", "autocomplete": "off"}},
		{"newsletter", map[string]string{"type": "checkbox", "checked": "checked", "value": "true", "autocomplete": ""}},
	}
	for _, tt := range tests {
		in := inputs[tt.name]
		if in == nil {
			t.Errorf("no input %s", tt.name)
			continue
		}
		for a, want := range tt.attrs {
			got, ok := in.attrs[a]
			if want == "" && ok {
				t.Errorf("input %s: %s=%q, want none", tt.name, a, got)
			}
			if want != "" && got != want {
				t.Errorf("input %s: %s=%q, want %q", tt.name, a, got, want)
			}
		}
	}
	for _, l := range root.all("label") {
		if l.attrs["for"] == "attr-loyalty_id" && !strings.HasPrefix(l.textContent(), "Loyalty card number") {
			t.Errorf("the flow's label is not used: %q", l.textContent())
		}
	}
}

func TestVerifyCodeInput(t *testing.T) {
	root := parseHTML(t, render1(t, fullPage(KindVerifyCode, "en")))
	for _, in := range root.all("input") {
		if in.attrs["name"] != FieldCode {
			continue
		}
		if in.attrs["autocomplete"] != "one-time-code" || in.attrs["inputmode"] != "numeric" || in.attrs["type"] != "text" {
			t.Errorf("code input %v", in.attrs)
		}
		return
	}
	t.Error("no code input")
}

func TestRenderRefuses(t *testing.T) {
	for _, p := range []Page{
		{Kind: "consent"},
		{Kind: KindSignUp, Fields: []Field{{Name: "password"}}},
		{Kind: KindSignUp, Fields: []Field{{Name: "csrf"}}},
		{Kind: KindSignUp, Fields: []Field{{Name: "x"}, {Name: "x"}}},
		{Kind: KindSignUp, Fields: []Field{{Name: ""}}},
	} {
		var b bytes.Buffer
		if err := Render(&b, p); err == nil || b.Len() != 0 {
			t.Errorf("Render(%+v) = %v with %d bytes written, want an error and nothing written", p, err, b.Len())
		}
	}
}

// TestEscaping: whatever a tenant configured or a person typed is text, never markup.
func TestEscaping(t *testing.T) {
	const xss = `"><script>alert(1)</script>`
	b := directory.Branding{
		CompanyName: "<script>alert('co')</script>",
		Colors:      map[string]string{"primary": "red;}</style><script>alert(1)</script>", "background": "expression(alert(1))", "text": "#12345g", "error": "#fff;"},
		Logo:        "javascript:alert(1)",
		Strings:     map[string]map[string]string{"en": {"sign_up_intro": xss, "attr_nickname": xss}},
	}
	for _, kind := range kinds {
		p := Page{Kind: kind, Locale: "en", Tenant: "t", Branding: b, Action: "javascript:alert(1)", CSRF: xss,
			Email: xss, EmailError: xss, FormError: xss, Message: xss, CorrelationID: xss,
			Links: map[string]string{"back": "javascript:alert(1)", "sign_in": "data:text/html,<script>", "sign_up": xss, "resend": "javascript:x"},
			Fields: []Field{{Name: "nickname", Value: xss, Error: xss}, {Name: "loyalty", Label: xss, Pattern: xss, Value: xss},
				{Name: `x"><script>`, Type: "boolean"}}}
		doc := render1(t, p)
		checkPage(t, p, doc)
		if strings.Contains(doc, "<img") {
			t.Errorf("%s: a javascript: logo was kept", kind)
		}
		if !strings.Contains(doc, "--primary:#1f6feb;") || !strings.Contains(doc, "--bg:#ffffff;") {
			t.Errorf("%s: invalid colours did not fall back to the defaults", kind)
		}
		if strings.Contains(doc, "</style><script") || strings.Contains(doc, "expression(") {
			t.Errorf("%s: a colour reached the style sheet", kind)
		}
	}
	for _, logo := range []string{
		"data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=",
		"data:image/svg+xml,<svg onload=alert(1)>",
		"data:text/html;base64,PHNjcmlwdD4=",
		"http://cdn.acme.example/logo.png",
		"//cdn.acme.example/logo.png",
		`https://cdn.acme.example/logo.png" onerror="alert(1)`,
	} {
		p := Page{Kind: KindSignedOut, Branding: directory.Branding{Logo: logo}}
		if doc := render1(t, p); strings.Contains(doc, "<img") {
			t.Errorf("logo %q was kept", logo)
		}
	}
	p := Page{Kind: KindSignedOut, Branding: directory.Branding{Logo: "data:image/png;base64,iVBORw0KGgo="}}
	if doc := render1(t, p); !strings.Contains(doc, `<img src="data:image/png;base64,iVBORw0KGgo=" alt="">`) {
		t.Errorf("a PNG data: logo was not kept")
	}
}

func TestTenantStrings(t *testing.T) {
	b := directory.Branding{CompanyName: "Acme", Strings: map[string]map[string]string{
		"fr-CA": {"sign_in_title": "Ouvrir une session", "attr_loyalty_id": "Numéro de fidélité"},
		"en":    {"sign_in_intro": "Welcome back to {company}."},
	}}
	for _, tt := range []struct{ locale, kind, want string }{
		{"fr", KindSignIn, "<h1>Ouvrir une session</h1>"},
		{"fr", KindSignUp, "Numéro de fidélité"},
		{"en", KindSignIn, "<p>Welcome back to Acme.</p>"},
		{"en", KindSignIn, "<h1>Sign in</h1>"},
		{"en", KindSignUp, "Loyalty id"},
	} {
		p := Page{Kind: tt.kind, Locale: tt.locale, Branding: b, Fields: []Field{{Name: "loyalty_id"}}}
		if doc := render1(t, p); !strings.Contains(doc, tt.want) {
			t.Errorf("%s/%s: no %q in\n%s", tt.kind, tt.locale, tt.want, doc)
		}
	}
}

func TestFormErrorArgs(t *testing.T) {
	b := directory.Branding{Strings: map[string]map[string]string{"en": {"too_many_attempts": "Wait {minutes} minutes."}}}
	p := Page{Kind: KindSignIn, Locale: "en", Branding: b, FormErrorID: "too_many_attempts",
		FormErrorArgs: map[string]string{"minutes": "5", "company": "ignored"}}
	if doc := render1(t, p); !strings.Contains(doc, "<p>Wait 5 minutes.</p>") {
		t.Errorf("FormErrorArgs not applied:\n%s", doc)
	}
}

// TestRightToLeft proves the mechanism with a stand-in Arabic catalog: a language written right to left
// gets dir="rtl".
func TestRightToLeft(t *testing.T) {
	en, err := fs.ReadFile(localeFiles, "locales/en.json")
	if err != nil {
		t.Fatal(err)
	}
	cats, err := loadCatalogs(fstest.MapFS{"l/en.json": {Data: en}, "l/ar.json": {Data: en}}, "l")
	if err != nil {
		t.Fatal(err)
	}
	if got := cats.negotiate("", "ar-EG,en;q=0.5", ""); got != "ar" {
		t.Fatalf("negotiate = %q, want ar", got)
	}
	var b bytes.Buffer
	if err := render(&b, Page{Kind: KindSignIn, Locale: "ar", CSRF: "t"}, cats); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<html lang="ar" dir="rtl">`) {
		t.Errorf("no rtl <html>:\n%s", b.String())
	}
}

// TestCatalogsComplete: every shipped catalog has exactly English's ids, no empty text, and the same
// placeholders in each text.
func TestCatalogsComplete(t *testing.T) {
	en := shipped.msgs[fallbackLocale]
	placeholder := regexp.MustCompile(`\{[a-z_]+\}`)
	for _, locale := range Locales() {
		msgs := shipped.msgs[locale]
		if got, want := slices.Sorted(maps.Keys(msgs)), slices.Sorted(maps.Keys(en)); !slices.Equal(got, want) {
			t.Errorf("%s.json ids differ from en.json:\n got %v\nwant %v", locale, got, want)
		}
		for id, text := range msgs {
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s.json: %s is empty", locale, id)
			}
			got, want := placeholder.FindAllString(text, -1), placeholder.FindAllString(en[id], -1)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s.json: %s has placeholders %v, en.json %v", locale, id, got, want)
			}
		}
	}
	if len(Locales()) < 2 || Locales()[0] != "en" || !slices.Contains(Locales(), "fr") {
		t.Errorf("Locales() = %v, want en first and fr", Locales())
	}
}

// TestMessageIDsKnown: every id the templates and the renderer use, and every error id the journey may
// pass, is in the catalogs.
func TestMessageIDsKnown(t *testing.T) {
	used := map[string]bool{}
	tmpl := regexp.MustCompile(`\.T "([a-z_]+)"`)
	files, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, f := range files {
		b, _ := fs.ReadFile(templateFiles, f)
		for _, m := range tmpl.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	src, err := os.ReadFile("pages.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`loc\.text\("([a-z_]+)"\)`).FindAllStringSubmatch(string(src), -1) {
		used[m[1]] = true
	}
	for _, id := range []string{"invalid_credentials", "email_taken", "email_invalid", "password_too_short",
		"password_too_long", "password_common", "password_personal", "required", "pattern_mismatch",
		"number_invalid", "date_invalid", "code_invalid", "code_expired", "too_many_attempts", "csrf",
		"session_expired", "generic_error", "journey_expired"} {
		used[id] = true
	}
	for id := range builtinAutocomplete {
		if id != "email" {
			used["attr_"+id] = true
		}
	}
	if len(used) < 40 {
		t.Fatalf("found only %d ids in use: is the scan broken?", len(used))
	}
	for id := range used {
		if _, ok := shipped.msgs[fallbackLocale][id]; !ok {
			t.Errorf("message id %q is used but not in en.json", id)
		}
	}
	// Password errors from CheckPassword are ids too.
	for _, pw := range []string{"x", strings.Repeat("x", 300), "password", "jane@example.com"} {
		if id := CheckPassword(pw, "jane@example.com"); !used[id] {
			t.Errorf("CheckPassword returns %q, not a known id", id)
		}
	}
}

func TestLoadCatalogsErrors(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no english":   {"l/fr.json": {Data: []byte(`{}`)}},
		"not a tag":    {"l/en.json": {Data: []byte(`{}`)}, "l/not_a_tag!.json": {Data: []byte(`{}`)}},
		"not flat":     {"l/en.json": {Data: []byte(`{"a": {"b": "c"}}`)}},
		"invalid json": {"l/en.json": {Data: []byte(`{`)}},
	} {
		if _, err := loadCatalogs(fsys, "l"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	// And the shipped ones are valid JSON objects of strings.
	b, _ := fs.ReadFile(localeFiles, "locales/fr.json")
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Error(err)
	}
}

func BenchmarkRenderSignUp(b *testing.B) {
	p := fullPage(KindSignUp, "fr")
	var buf bytes.Buffer
	if err := Render(&buf, p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		buf.Reset()
		if err := Render(&buf, p); err != nil {
			b.Fatal(err)
		}
	}
}
