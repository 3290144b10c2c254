package manifest

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// env returns an Options whose Getenv reads only vars.
func env(vars map[string]string) Options {
	return Options{Getenv: func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}}
}

// problems runs ParseYAML and returns its error lines; it fails the test if the error is not an Errors.
func problems(t *testing.T, src string, opt Options) []string {
	t.Helper()
	m, err := ParseYAML([]byte(src), opt)
	if err == nil {
		return nil
	}
	if m != nil {
		t.Errorf("ParseYAML returned a manifest and an error")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	return strings.Split(errs.Error(), "\n")
}

func mustParse(t *testing.T, src string, opt Options) *Manifest {
	t.Helper()
	m, err := ParseYAML([]byte(src), opt)
	if err != nil {
		t.Fatalf("ParseYAML:\n%v", err)
	}
	return m
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var fullEnv = map[string]string{
	// A secret holding ": " and " #" must stay one plain string.
	"SHOP_SECRET":    "s3cr3t: value #not-a-comment 0123456789abcdef",
	"PARTNER_SECRET": "partner-secret",
	"CRM_TOKEN":      "crm-token-value",
}

// fullManifest is what testdata/full.yaml (CONTRACT.md's example, extended) decodes to.
var fullManifest = Manifest{
	Tenant:        "acme",
	DisplayName:   "Acme Shop",
	DefaultLocale: "en",
	SignInMethods: []string{"password", "email_otp", "partner"},
	Flows: Flows{
		SignUp: SignUp{
			EmailVerification: true,
			Attributes: []Attribute{
				{Name: "given_name", Required: true},
				{Name: "loyalty_id", Type: "string", Pattern: "^[0-9]{8}$", Label: "Loyalty number"},
			},
		},
		MFA: MFA{Mode: "optional", Methods: []string{"email_otp", "totp"}},
	},
	Branding: Branding{
		CompanyName: "Acme Shop",
		Colors:      map[string]string{"primary": "#1f6feb", "background": "#ffffff"},
		Logo:        "./logo.png",
		Strings:     map[string]map[string]string{"fr": {"sign_in_title": "Connexion à Acme"}},
	},
	Apps: []App{
		{
			Name:                   "shop-web",
			Type:                   "web",
			ClientID:               "shop-web",
			ClientSecret:           "s3cr3t: value #not-a-comment 0123456789abcdef",
			RedirectURIs:           []string{"http://127.0.0.1:9000/callback"},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:9000/"},
			AccessTokenTTL:         Duration(15 * time.Minute),
			RefreshTokenTTL:        Duration(30 * 24 * time.Hour),
			SigningAlg:             "ES256",
		},
		{
			Name:         "shop-ios",
			Type:         "native",
			RedirectURIs: []string{"com.acme.shop:/callback", "http://127.0.0.1/cb"},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
		},
		{Name: "reports", Type: "service", GrantTypes: []string{"client_credentials"}},
	},
	Routes: []Route{
		{
			Host:        "shop.localhost:8080",
			Upstream:    "http://127.0.0.1:9000",
			App:         "shop-web",
			Allow:       Allow{Groups: []string{"customers"}},
			PublicPaths: []string{"/static/"},
		},
		{
			Host:     "admin.acme.localhost",
			Upstream: "http://127.0.0.1:9001/",
			App:      "shop-web",
			Allow: Allow{
				Authenticated: true,
				Paths:         []PathRule{{Prefix: "/admin/", Methods: []string{"GET", "POST"}, Groups: []string{"staff"}}},
			},
		},
	},
	IdentityProviders: []IdentityProvider{{
		ID: "partner", Type: "oidc", Issuer: "https://idp.example", ClientID: "x", ClientSecret: "partner-secret",
		Scopes: []string{"openid", "email"},
	}},
	Extensions: []Extension{
		{
			ID:           "add-claims",
			Wasm:         "./add_claims.wasm",
			Events:       []string{"OnTokenIssuanceStart"},
			Timeout:      Duration(100 * time.Millisecond),
			MemoryLimit:  16 * MiB,
			OnError:      "fail",
			AllowedHosts: []string{"api.acme.example", "*.crm.example:8443"},
			Config:       map[string]string{"tier": "gold"},
			Secrets:      map[string]string{"crm_token": "crm-token-value"},
		},
		{
			ID:      "risk",
			URL:     "https://risk.acme.example/hook",
			Events:  []string{"OnAttributeCollectionSubmit", "OnProxyRequest"},
			OnError: "continue",
		},
	},
}

func TestParseYAMLFull(t *testing.T) {
	m, err := ParseYAML(readFile(t, "full.yaml"), env(fullEnv))
	if err != nil {
		t.Fatalf("ParseYAML:\n%v", err)
	}
	if !reflect.DeepEqual(*m, fullManifest) {
		got, _ := json.MarshalIndent(m, "", "  ")
		want, _ := json.MarshalIndent(fullManifest, "", "  ")
		t.Errorf("ParseYAML(full.yaml) =\n%s\nwant\n%s", got, want)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate of a parsed manifest: %v", err)
	}
}

func TestParseYAMLBadGolden(t *testing.T) {
	_, err := ParseYAML(readFile(t, "bad.yaml"), env(nil))
	if err == nil {
		t.Fatal("ParseYAML(bad.yaml) succeeded")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := string(readFile(t, "bad.golden"))
	if got != want {
		t.Errorf("errors differ from %s (run go test -update to rewrite it):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	// The file holds many kinds of problem; each must be found, at its line.
	for _, line := range []string{
		"line 1: tenant: tenant id \"admin\" is reserved",
		"line 2: display_name: expected a string, got a list",
		"line 6: flows.sign_up.email_verification: expected true or false, got \"maybe\"",
		"line 9: flows.sign_up.attributes[1].pattern: does not compile",
		"line 19: apps[0].client_secret: environment variable SHOP_SECRET is not set",
		"line 20: apps[0].redirect_uri: unknown field (did you mean redirect_uris?)",
		"line 21: apps[1].name: duplicate app name \"shop-web\"",
		"line 25: apps[1].redirect_uris[0]: http is only allowed for a loopback host",
		"line 38: routes[0].app: no app named \"nope\"",
		"line 46: extensions[0].url: set either wasm or url, not both",
		"line 51: extensions[0].extra: unknown field",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("missing %q", line)
		}
	}
	// The misspelt redirect_uri explains the missing redirect_uris: no second error for it.
	if strings.Contains(got, "apps[0].redirect_uris") {
		t.Errorf("reported apps[0].redirect_uris as well as the misspelling")
	}
}

func TestEnvSubstitution(t *testing.T) {
	vars := map[string]string{
		"SECRET":  "a: b # c, [d] {e} &f *g !h | > % @ `",
		"TRUE":    "true",
		"TILDE":   "~",
		"NUM":     "0123",
		"EMPTY":   "",
		"SIZE":    "16MiB",
		"TIMEOUT": "250ms",
		"REF":     "${SECRET}",
		"A":       "one",
		"B":       "two",
	}
	tests := []struct {
		name  string
		yaml  string
		check func(*Manifest) any
		want  any
	}{
		{"plain", "display_name: ${A}", func(m *Manifest) any { return m.DisplayName }, "one"},
		{"quoted", `display_name: "${A} and ${B}"`, func(m *Manifest) any { return m.DisplayName }, "one and two"},
		{"inside text", "display_name: x${A}y", func(m *Manifest) any { return m.DisplayName }, "xoney"},
		{"structure characters stay text", "display_name: ${SECRET}", func(m *Manifest) any { return m.DisplayName }, vars["SECRET"]},
		{"escape", "display_name: $${A} costs $5", func(m *Manifest) any { return m.DisplayName }, "${A} costs $5"},
		{"not re-expanded", "display_name: ${REF}", func(m *Manifest) any { return m.DisplayName }, "${SECRET}"},
		{"null-looking value is a string", "display_name: ${TILDE}", func(m *Manifest) any { return m.DisplayName }, "~"},
		{"number-looking value keeps its text", "display_name: ${NUM}", func(m *Manifest) any { return m.DisplayName }, "0123"},
		{"empty", "display_name: ${EMPTY}", func(m *Manifest) any { return m.DisplayName }, ""},
		{"bool", "flows:\n  sign_up:\n    email_verification: ${TRUE}", func(m *Manifest) any { return m.Flows.SignUp.EmailVerification }, true},
		{"quoted bool", `flows: {sign_up: {email_verification: "${TRUE}"}}`, func(m *Manifest) any { return m.Flows.SignUp.EmailVerification }, true},
		{"size and duration", "extensions: [{id: x, wasm: x.wasm, events: [OnOtpSend], memory_limit: \"${SIZE}\", timeout: \"${TIMEOUT}\"}]",
			func(m *Manifest) any {
				return [2]int64{int64(m.Extensions[0].MemoryLimit), int64(m.Extensions[0].Timeout)}
			},
			[2]int64{16 << 20, int64(250 * time.Millisecond)}},
		{"keys are not substituted", "extensions:\n  - id: x\n    wasm: x.wasm\n    events: [OnOtpSend]\n    config:\n      ${A}: ${B}",
			func(m *Manifest) any { return m.Extensions[0].Config }, map[string]string{"${A}": "two"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, "tenant: acme\n"+tt.yaml+"\n", env(vars))
			if got := tt.check(m); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}

	errTests := []struct {
		name string
		yaml string
		want []string
	}{
		{"missing", "tenant: acme\napps:\n  - name: web\n    type: web\n    client_secret: ${NOPE}\n    redirect_uris: [https://a.example/cb]\n",
			[]string{"line 5: apps[0].client_secret: environment variable NOPE is not set"}},
		{"two missing in one value", "tenant: acme\ndisplay_name: ${X1}-${X2}\n", []string{
			"line 2: display_name: environment variable X1 is not set",
			"line 2: display_name: environment variable X2 is not set",
		}},
		{"invalid name", "tenant: acme\ndisplay_name: ${1X}\n", []string{
			`line 2: display_name: invalid variable name "1X" in ${...}: use letters, digits and _, not starting with a digit (or $${ for a literal "${")`,
		}},
		{"unterminated", "tenant: acme\ndisplay_name: ${X\n", []string{
			`line 2: display_name: unterminated "${": write ${NAME}, or $${ for a literal "${"`,
		}},
		{"bad bool", "tenant: acme\nflows: {sign_up: {email_verification: \"${A}\"}}\n", []string{
			`line 2: flows.sign_up.email_verification: expected true or false, got "one"`,
		}},
		{"substituted value is still validated", "tenant: ${A}_x\n", []string{
			`line 1: tenant: invalid tenant id "one_x": use 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit`,
		}},
		{"unquoted in a flow mapping", "tenant: acme\nidentity_providers:\n  - {id: p, type: oidc, issuer: \"https://i.example\", client_id: x, client_secret: ${B}}\n", []string{
			`line 3: did not find expected ',' or '}'; inside [...] or {...} a ${NAME} must be quoted, like "${NAME}"`,
		}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problems(t, tt.yaml, env(vars)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestEnvDefaultsToOS(t *testing.T) {
	t.Setenv("POSTERN_MANIFEST_TEST_NAME", "From OS")
	m := mustParse(t, "tenant: acme\ndisplay_name: ${POSTERN_MANIFEST_TEST_NAME}\n", Options{})
	if m.DisplayName != "From OS" {
		t.Errorf("DisplayName = %q", m.DisplayName)
	}
}

func TestUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"top level", "tenant: acme\ntenent: acme\nfoo: 1\n", []string{
			"line 2: tenent: unknown field (did you mean tenant?)",
			"line 3: foo: unknown field",
		}},
		{"camel case", "tenant: acme\nsignInMethods: [password]\n", []string{
			"line 2: signInMethods: unknown field (did you mean sign_in_methods?)",
		}},
		{"nested in a list", `tenant: acme
flows:
  sign_up:
    attributes:
      - name: a
        requried: true
      - name: b
        lable: B
  mfa:
    mode: off
    method: [totp]
`, []string{
			"line 6: flows.sign_up.attributes[0].requried: unknown field (did you mean required?)",
			"line 8: flows.sign_up.attributes[1].lable: unknown field (did you mean label?)",
			"line 11: flows.mfa.method: unknown field (did you mean methods?)",
		}},
		{"deep", `tenant: acme
apps: [{name: web, type: web, redirect_uris: ["https://a.example/cb"]}]
routes:
  - host: a.example
    upstream: http://10.0.0.1
    app: web
    allow:
      paths:
        - prefix: /x
          method: [GET]
          roles: [a]
`, []string{
			"line 10: routes[0].allow.paths[0].method: unknown field (did you mean methods?)",
			"line 11: routes[0].allow.paths[0].roles: unknown field",
		}},
		{"every one of many", `tenant: acme
branding: {colour: {primary: "#fff"}, logo_url: x}
extensions:
  - {id: a, wasm: a.wasm, events: [OnOtpSend], timeout_ms: 5, memory: 1MiB}
`, []string{
			"line 2: branding.colour: unknown field (did you mean colors?)",
			"line 2: branding.logo_url: unknown field",
			"line 4: extensions[0].memory: unknown field",
			"line 4: extensions[0].timeout_ms: unknown field (did you mean timeout?)",
		}},
		{"merge key", "tenant: acme\napps:\n  - <<: {name: a}\n    type: web\n    redirect_uris: [https://a.example/cb]\n", []string{
			"line 3: apps[0].<<: merge keys (<<) are not supported in a manifest; write the fields out",
			"line 3: apps[0].name: required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problems(t, tt.yaml, env(nil)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestWrongTypes(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"list for a string", "tenant: [acme]\n", []string{"line 1: tenant: expected a string, got a list"}},
		{"mapping for a string", "tenant: acme\ndisplay_name: {a: b}\n", []string{"line 2: display_name: expected a string, got a mapping"}},
		{"string for a list", "tenant: acme\nsign_in_methods: password\n", []string{
			"line 2: sign_in_methods: expected a list, got a string; write [password] for a list of one",
		}},
		{"string for a bool", "tenant: acme\nflows:\n  sign_up:\n    email_verification: abc\n", []string{
			`line 4: flows.sign_up.email_verification: expected true or false, got "abc"`,
		}},
		{"yes is not a bool", "tenant: acme\nflows: {sign_up: {email_verification: yes}}\n", []string{
			`line 2: flows.sign_up.email_verification: expected true or false, got "yes"`,
		}},
		{"number for a bool", "tenant: acme\nflows: {sign_up: {email_verification: 1}}\n", []string{
			`line 2: flows.sign_up.email_verification: expected true or false, got a number`,
		}},
		{"list for a struct", "tenant: acme\nflows: [a]\n", []string{"line 2: flows: expected a mapping, got a list"}},
		{"string for a map", "tenant: acme\nbranding: {colors: red}\n", []string{"line 2: branding.colors: expected a mapping, got a string"}},
		{"list in a map", "tenant: acme\nbranding: {strings: {fr: [a]}}\n", []string{"line 2: branding.strings.fr: expected a mapping, got a list"}},
		{"duration without unit", "tenant: acme\nextensions: [{id: a, wasm: a.wasm, events: [OnOtpSend], timeout: 100}]\n", []string{
			`line 2: extensions[0].timeout: invalid duration "100": missing unit; write it like "100ms", "15m", "12h" or "30d"`,
		}},
		{"list for a duration", "tenant: acme\napps: [{name: a, type: service, access_token_ttl: [1h]}]\n", []string{
			`line 2: apps[0].access_token_ttl: expected a duration like "100ms", got a list`,
		}},
		{"bad size", "tenant: acme\nextensions: [{id: a, wasm: a.wasm, events: [OnOtpSend], memory_limit: lots}]\n", []string{
			`line 2: extensions[0].memory_limit: invalid size "lots": write a number of bytes or a size like "512KiB" or "16MiB"`,
		}},
		{"numbers are text for strings", "tenant: 1234\ndisplay_name: 2024-01-01\n", nil},
		{"null is absent", "tenant: acme\ndisplay_name: ~\nflows:\napps: null\n", nil},
		{"duplicate key", "tenant: acme\ndisplay_name: a\ndisplay_name: b\n", []string{"line 3: display_name: duplicate key (first at line 2)"}},
		{"duplicate map key", "tenant: acme\nbranding:\n  colors:\n    primary: \"#fff\"\n    primary: \"#000\"\n", []string{
			"line 5: branding.colors.primary: duplicate key (first at line 4)",
		}},
		{"non-string key", "tenant: acme\nbranding:\n  colors:\n    [a]: \"#fff\"\n", []string{"line 4: branding.colors: a key must be a string, got a list"}},
		{"alias", "tenant: acme\ndisplay_name: &n Acme\nbranding: {company_name: *n}\n", []string{
			"line 3: branding.company_name: aliases (*n) are not supported in a manifest; write the value out",
		}},
		{"custom tag", "tenant: acme\ndisplay_name: !foo x\n", []string{"line 2: display_name: expected a string, got a value tagged !foo"}},
		{"null document", "---\n", []string{"the manifest is empty"}},
		{"root is a list", "- tenant: acme\n", []string{"line 1: expected a mapping, got a list"}},
		{"empty", "# nothing\n", []string{"the manifest is empty"}},
		{"two documents", "tenant: acme\n---\ntenant: other\n", []string{
			`line 3: a manifest holds one YAML document; remove the "---" and what follows it, or split the file`,
		}},
		{"trailing empty document", "tenant: acme\n---\n# nothing more\n", nil},
		{"syntax", "tenant: acme\n  display_name: x\n", []string{"line 2: mapping values are not allowed in this context"}},
		{"type error and semantic error together", "tenant: Acme\ndisplay_name: [x]\n", []string{
			`line 1: tenant: invalid tenant id "Acme": use 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit`,
			"line 2: display_name: expected a string, got a list",
		}},
		{"a rejected value is not reported again", "tenant: acme\napps: [{name: [a], type: web, redirect_uris: https://a.example/cb}]\n", []string{
			"line 2: apps[0].name: expected a string, got a list",
			"line 2: apps[0].redirect_uris: expected a list, got a string; write [https://a.example/cb] for a list of one",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problems(t, tt.yaml, env(nil)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	m, err := ParseYAML(readFile(t, "full.yaml"), env(fullEnv))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseJSON(data)
	if err != nil {
		t.Fatalf("ParseJSON(json.Marshal(m)):\n%v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip changed the manifest:\n%s", data)
	}
	// encoding/json reads the same form.
	var plain Manifest
	if err := json.Unmarshal(data, &plain); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&plain, m) {
		t.Errorf("json.Unmarshal differs from ParseJSON")
	}
	// Empty and absent lists decode alike in both forms.
	y := mustParse(t, "tenant: acme\nsign_in_methods: []\nbranding: {colors: {}}\n", env(nil))
	j, err := ParseJSON([]byte(`{"tenant": "acme"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(y, j) {
		t.Errorf("empty YAML lists differ from absent JSON ones: %+v vs %+v", y, j)
	}
}

func TestParseJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string
	}{
		{"unknown fields, all of them", `{"tenant": "acme", "tenent": 1, "apps": [{"name": "a", "type": "service", "clientId": "abc"}], "flows": {"mfa": {"mode": "off", "x": 1}}}`, []string{
			"apps[0].clientId: unknown field (did you mean client_id?)",
			"flows.mfa.x: unknown field",
			"tenent: unknown field (did you mean tenant?)",
		}},
		{"number for a string", `{"tenant": 12345}`, []string{"tenant: expected a string, got a number"}},
		{"string for a bool", `{"tenant": "acme", "flows": {"sign_up": {"email_verification": "true"}}}`, []string{
			`flows.sign_up.email_verification: expected true or false, got "true"`,
		}},
		{"object for a list", `{"tenant": "acme", "apps": {}}`, []string{"apps: expected an array, got an object"}},
		{"number for a duration", `{"tenant": "acme", "extensions": [{"id": "a", "wasm": "a.wasm", "events": ["OnOtpSend"], "timeout": 100}]}`, []string{
			`extensions[0].timeout: expected a duration like "100ms", got a number`,
		}},
		{"integer size is fine", `{"tenant": "acme", "extensions": [{"id": "a", "wasm": "a.wasm", "events": ["OnOtpSend"], "memory_limit": 65536}]}`, nil},
		{"duplicate key", `{"tenant": "acme", "tenant": "acme"}`, []string{"tenant: duplicate key"}},
		{"semantic", `{"tenant": "api"}`, []string{`tenant: tenant id "api" is reserved: it collides with one of the edge's own paths`}},
		{"syntax", `{"tenant": "acme",}`, []string{"invalid JSON at byte offset 18: invalid character '}' looking for beginning of object key string"}},
		{"truncated", `{"tenant": "acme"`, []string{"invalid JSON: unexpected end of input"}},
		{"trailing data", `{"tenant": "acme"} {}`, []string{"invalid JSON: unexpected data after the manifest at byte offset 20"}},
		{"empty", ``, []string{"the manifest is empty"}},
		{"not an object", `[1]`, []string{"expected an object, got an array"}},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), []string{"invalid JSON at byte offset 33: nested too deeply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tt.json))
			var got []string
			if err != nil {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("error is %T", err)
				}
				for _, e := range errs {
					if e.Line != 0 {
						t.Errorf("JSON error with line %d: %v", e.Line, e)
					}
				}
				got = strings.Split(err.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDuration(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"100ms", 100 * time.Millisecond, "100ms"},
		{"15m", 15 * time.Minute, "15m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"24h", 24 * time.Hour, "24h"},
		{"48h", 48 * time.Hour, "2d"},
		{"30d", 30 * 24 * time.Hour, "30d"},
		{"1d12h", 36 * time.Hour, "36h"},
		{" 10s ", 10 * time.Second, "10s"},
		{"0", 0, "0s"},
		{"1.5s", 1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range good {
		d, err := ParseDuration(tt.in)
		if err != nil || time.Duration(d) != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, time.Duration(d), err, tt.want)
			continue
		}
		if d.String() != tt.out {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.want, d.String(), tt.out)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", d.String(), back, err, d)
		}
	}
	for _, in := range []string{"", "100", "abc", "15 minutes", "1d-1h", "d", "99999999999999999d", "1w"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"15m"`), &d); err != nil || d != Duration(15*time.Minute) {
		t.Errorf("json.Unmarshal = %v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`15`), &d); err == nil {
		t.Errorf("json.Unmarshal of a number succeeded")
	}
	if b, _ := json.Marshal(Duration(time.Hour)); string(b) != `"1h"` {
		t.Errorf("json.Marshal = %s", b)
	}
}

func TestByteSize(t *testing.T) {
	good := []struct {
		in   string
		want ByteSize
		out  string
	}{
		{"16MiB", 16 << 20, "16MiB"},
		{"512KiB", 512 << 10, "512KiB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"2TiB", 2 << 40, "2TiB"},
		{"1024", 1024, "1KiB"},
		{"1000", 1000, "1000B"},
		{"16 MiB", 16 << 20, "16MiB"},
		{"10B", 10, "10B"},
		{"1MB", 1000000, "1000000B"},
		{"64kB", 64000, "64000B"},
		{"0", 0, "0"},
	}
	for _, tt := range good {
		b, err := ParseByteSize(tt.in)
		if err != nil || b != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, b, err, tt.want)
			continue
		}
		if b.String() != tt.out {
			t.Errorf("ByteSize(%d).String() = %q, want %q", b, b.String(), tt.out)
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", b.String(), back, err, b)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "16M", "1.5MiB", "16mib", "99999999999999999999", "9999999TiB"} {
		if b, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, b)
		}
	}
	var b ByteSize
	for in, want := range map[string]ByteSize{`"16MiB"`: 16 << 20, `65536`: 65536} {
		if err := json.Unmarshal([]byte(in), &b); err != nil || b != want {
			t.Errorf("json.Unmarshal(%s) = %d, %v", in, b, err)
		}
	}
	if err := json.Unmarshal([]byte(`1.5`), &b); err == nil {
		t.Errorf("json.Unmarshal(1.5) succeeded")
	}
	if out, _ := json.Marshal(16 * MiB); string(out) != `"16MiB"` {
		t.Errorf("json.Marshal = %s", out)
	}
}

func TestErrorsFormat(t *testing.T) {
	errs := Errors{
		{Field: "b", Line: 3, Message: "m3"},
		{Field: "a", Line: 0, Message: "m0"},
		{Field: "", Line: 2, Message: "doc"},
		{Field: "c", Line: 2, Message: "m2"},
		{Field: "c", Line: 2, Message: "m2"},
	}.sorted()
	want := "a: m0\nline 2: doc\nline 2: c: m2\nline 3: b: m3"
	if got := errs.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	var one Error
	if !errors.As(error(errs), &one) || one.Field != "a" {
		t.Errorf("errors.As(Errors, *Error) = %v", one)
	}
	if (Errors{}).err() != nil {
		t.Errorf("no errors must be a nil error")
	}
}
