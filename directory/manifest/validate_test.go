package manifest

import (
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestValidTenantID(t *testing.T) {
	for _, id := range []string{"acme", "a1b", "my-shop", "000", strings.Repeat("a", 63), "adminx", "well-known-co"} {
		if err := ValidTenantID(id); err != nil {
			t.Errorf("ValidTenantID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "ab", "Acme", "-ab", "ab-", "a_b", "a.b", strings.Repeat("a", 64), "admin", "well-known", "oauth2", "robots-txt"} {
		if err := ValidTenantID(id); err == nil {
			t.Errorf("ValidTenantID(%q) = nil, want an error", id)
		}
	}
	if !Reserved("healthz") || Reserved("acme") {
		t.Errorf("Reserved is wrong")
	}
}

// valid is a small manifest that passes Validate; each case below breaks one rule of it.
func valid() *Manifest {
	return &Manifest{
		Tenant: "acme",
		Apps: []App{
			{Name: "web", Type: AppWeb, RedirectURIs: []string{"https://shop.example/cb"}},
			{Name: "cli", Type: AppNative, RedirectURIs: []string{"http://127.0.0.1/cb"}},
			{Name: "batch", Type: AppService},
		},
		Routes: []Route{{Host: "shop.example", Upstream: "http://10.0.0.1:8080", App: "web"}},
		IdentityProviders: []IdentityProvider{
			{ID: "google", Type: IdPOIDC, Issuer: "https://accounts.google.com", ClientID: "abc"},
		},
		Extensions: []Extension{{ID: "claims", Wasm: "claims.wasm", Events: []string{EventTokenIssuanceStart}}},
	}
}

func TestValidate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid manifest: %v", err)
	}
	tests := []struct {
		name   string
		change func(m *Manifest)
		want   []string // nil: valid
	}{
		// Tenant ids (CONTRACT.md, "URLs on the edge listener").
		{"tenant required", func(m *Manifest) { m.Tenant = "" }, []string{"tenant: required"}},
		{"tenant reserved", func(m *Manifest) { m.Tenant = "jwks" }, []string{`tenant: tenant id "jwks" is reserved: it collides with one of the edge's own paths`}},
		{"locale", func(m *Manifest) { m.DefaultLocale = "EN" }, []string{`default_locale: invalid locale "EN": use a language tag like en, fr or pt-BR`}},
		{"locale with region", func(m *Manifest) { m.DefaultLocale = "pt-BR" }, nil},

		// Sign-in methods.
		{"identity provider as a method", func(m *Manifest) { m.SignInMethods = []string{"passkey", "google"} }, nil},
		{"method misspelt", func(m *Manifest) { m.SignInMethods = []string{"pasword"} }, []string{`sign_in_methods[0]: unknown sign-in method "pasword" (did you mean password?)`}},
		{"method empty", func(m *Manifest) { m.SignInMethods = []string{""} }, []string{"sign_in_methods[0]: must not be empty"}},

		// Attributes and MFA.
		{"attribute name required", func(m *Manifest) { m.Flows.SignUp.Attributes = []Attribute{{}} }, []string{"flows.sign_up.attributes[0].name: required"}},
		{"attribute types", func(m *Manifest) {
			m.Flows.SignUp.Attributes = []Attribute{{Name: "a", Type: "date"}, {Name: "b", Type: "bool"}}
		}, []string{`flows.sign_up.attributes[1].type: unknown attribute type "bool": use string, number, boolean or date`}},
		{"mfa misspelt", func(m *Manifest) { m.Flows.MFA = MFA{Mode: "risk-based", Methods: []string{"totp", "totp"}} }, []string{
			`flows.mfa.methods[1]: "totp" is listed twice (also flows.mfa.methods[0])`,
			`flows.mfa.mode: unknown MFA mode "risk-based" (did you mean risk_based?)`,
		}},

		// Branding.
		{"short colors", func(m *Manifest) { m.Branding.Colors = map[string]string{"primary": "#1F6", "text": "#000000"} }, nil},
		{"bad colors", func(m *Manifest) {
			m.Branding.Colors = map[string]string{"primary": "#12345", "a;b": "#fff"}
		}, []string{
			`branding.colors.primary: invalid color "#12345": write "#rgb" or "#rrggbb"`,
			`branding.colors["a;b"]: invalid color name: use lower-case letters, digits, _ and -, starting with a letter`,
		}},
		{"strings", func(m *Manifest) {
			m.Branding.Strings = map[string]map[string]string{"pt-BR": {"title": "x"}, "fr": {"bad id": "x"}}
		}, []string{`branding.strings.fr["bad id"]: invalid message id "bad id": use letters, digits, _, . and -`}},
		{"logo url", func(m *Manifest) { m.Branding.Logo = "https://cdn.example/logo.svg" }, nil},
		{"logo data url", func(m *Manifest) { m.Branding.Logo = "data:image/png;base64,iVBORw0KGgo=" }, nil},
		{"logo windows path", func(m *Manifest) { m.Branding.Logo = `C:\brand\logo.png` }, nil},
		{"logo html data url", func(m *Manifest) { m.Branding.Logo = "data:text/html;base64,PHNjcmlwdD4=" }, []string{
			"branding.logo: a data: URL logo must be data:image/png, jpeg, gif, webp or svg+xml, base64-encoded",
		}},
		{"logo too large", func(m *Manifest) {
			m.Branding.Logo = "data:image/png;base64," + strings.Repeat("AAAA", int(MaxLogoSize)/3+1)
		}, []string{"branding.logo: the logo is 524289B; at most 512KiB is allowed"}},

		// Apps (RFC 6749, RFC 8252).
		{"app name and type required", func(m *Manifest) { m.Apps = append(m.Apps, App{}) }, []string{
			"apps[3].name: required",
			"apps[3].type: required: one of web, spa, native or service",
		}},
		{"app type misspelt", func(m *Manifest) { m.Apps[0].Type = "webb" }, []string{`apps[0].type: unknown app type "webb" (did you mean web?)`}},
		{"app name", func(m *Manifest) { m.Apps[0].Name = "Web App" }, []string{
			`apps[0].name: invalid app name "Web App": use 1 to 63 lower-case letters, digits, _ and -, starting with a letter or digit`,
			`routes[0].app: no app named "web" in apps`,
		}},
		{"client ids", func(m *Manifest) {
			m.Apps[0].ClientID = "shop"
			m.Apps[1].ClientID = "shop"
			m.Apps[2].ClientID = "a b"
		}, []string{
			`apps[1].client_id: duplicate client_id "shop" (also apps[0])`,
			`apps[2].client_id: invalid client_id "a b": use 3 to 128 letters, digits and . _ ~ -`,
		}},
		{"short secret", func(m *Manifest) { m.Apps[2].ClientSecret = strings.Repeat("x", 31) }, []string{
			"apps[2].client_secret: too short: at least 32 characters; client secrets are stored with a fast hash, so they must be long random strings (leave it out to have one generated)",
		}},
		{"long secret", func(m *Manifest) { m.Apps[0].ClientSecret = strings.Repeat("x", 32) }, nil},
		{"native secret", func(m *Manifest) { m.Apps[1].ClientSecret = strings.Repeat("x", 40) }, []string{
			"apps[1].client_secret: a native app is a public client and has no client_secret; remove it",
		}},
		{"redirect required", func(m *Manifest) { m.Apps[1].RedirectURIs = nil }, []string{
			"apps[1].redirect_uris: at least one redirect URI is required for a native app",
		}},
		{"routed app needs no redirect", func(m *Manifest) { m.Apps[0].RedirectURIs = nil }, nil},
		{"loopback redirects", func(m *Manifest) {
			m.Apps[0].RedirectURIs = []string{"http://localhost:3000/cb", "http://[::1]:3000/cb", "http://app.localhost/cb", "https://x.example/cb?a=1"}
		}, nil},
		{"native redirects", func(m *Manifest) {
			m.Apps[1].RedirectURIs = []string{"com.example.app:/cb", "https://app.example/cb", "myapp://cb"}
		}, []string{"apps[1].redirect_uris[2]: the private-use scheme myapp: must be a reverse domain name such as com.example.app (RFC 8252 §7.1)"}},
		{"bad redirects", func(m *Manifest) {
			m.Apps[0].RedirectURIs = []string{
				"/cb", "https://*.example/cb", "https://user:pw@x.example/cb", "data:text/html,x", "file:///etc/passwd",
				"https:///cb", "https://x.example/a b", "https://x.example/cb", "https://x.example/cb", "http://127.0.0.2/cb",
			}
		}, []string{
			"apps[0].redirect_uris[0]: must be an absolute URL",
			"apps[0].redirect_uris[1]: wildcards are not supported: redirect URIs are compared exactly",
			"apps[0].redirect_uris[2]: must not contain a user name or password",
			"apps[0].redirect_uris[3]: the data: scheme is not allowed",
			"apps[0].redirect_uris[4]: the file: scheme is not allowed",
			"apps[0].redirect_uris[5]: must have a host",
			"apps[0].redirect_uris[6]: must not contain spaces or control characters",
			`apps[0].redirect_uris[8]: "https://x.example/cb" is listed twice (also apps[0].redirect_uris[7])`,
			"apps[0].redirect_uris[9]: http is only allowed for a loopback host (localhost, *.localhost, 127.0.0.1, [::1]); use https",
		}},
		{"post logout", func(m *Manifest) {
			m.Apps[0].PostLogoutRedirectURIs = []string{"https://x.example/", "http://x.example/"}
			m.Apps[2].PostLogoutRedirectURIs = []string{"https://x.example/"}
		}, []string{
			"apps[0].post_logout_redirect_uris[1]: http is only allowed for a loopback host (localhost, *.localhost, 127.0.0.1, [::1]); use https",
			"apps[2].post_logout_redirect_uris: a service app has no redirect URIs: it signs in with client_credentials",
		}},
		{"grant types", func(m *Manifest) {
			m.Apps[0].GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
			m.Apps[1].GrantTypes = []string{GrantClientCredentials, "implicit"}
			m.Apps[2].GrantTypes = []string{GrantAuthorizationCode}
		}, []string{
			"apps[1].grant_types[0]: client_credentials is only for confidential clients (web and service apps)",
			`apps[1].grant_types[1]: unknown grant type "implicit": use authorization_code, refresh_token or client_credentials`,
			"apps[2].grant_types[0]: a service app only uses client_credentials",
		}},
		{"ttls", func(m *Manifest) {
			m.Apps[0].AccessTokenTTL = Duration(24 * time.Hour)
			m.Apps[0].IDTokenTTL = Duration(-time.Second)
			m.Apps[0].RefreshTokenTTL = Duration(366 * 24 * time.Hour)
			m.Apps[1].RefreshTokenTTL = Duration(365 * 24 * time.Hour)
		}, []string{
			"apps[0].id_token_ttl: must not be negative",
			"apps[0].refresh_token_ttl: too long: at most 365d",
		}},
		{"signing alg", func(m *Manifest) { m.Apps[0].SigningAlg = "HS256"; m.Apps[1].SigningAlg = AlgEdDSA }, []string{
			`apps[0].signing_alg: unsupported signing algorithm "HS256": use ES256, RS256 or EdDSA`,
		}},

		// Routes.
		{"route hosts", func(m *Manifest) {
			m.Routes = append(m.Routes,
				Route{Host: "shop.example", Upstream: "https://a.example", App: "web"},
				Route{Host: "Shop.example:8080", Upstream: "http://a.example?x=1", App: "cli"},
				Route{Host: "[::1]:8443", Upstream: "http://u:p@a.example", App: "web"},
				Route{Host: "10.0.0.1:99999", Upstream: "a.example", App: "batch"},
				Route{Host: "*.example.com", App: "web", Upstream: "http://a.example"},
				Route{Host: "a_b.example", App: "web", Upstream: "http://a.example/base/"},
			)
		}, []string{
			`routes[1].host: duplicate host "shop.example" (also routes[0])`,
			"routes[2].app: app \"cli\" is a native app; a route needs a web app",
			"routes[2].host: must be lower case",
			"routes[2].upstream: must not contain a query or fragment",
			"routes[3].upstream: must not contain a user name or password",
			`routes[4].app: app "batch" is a service app; a route needs a web app`,
			`routes[4].host: invalid port "99999"`,
			"routes[4].upstream: must be an absolute URL",
			"routes[5].host: wildcard hosts are not supported",
			`routes[6].host: invalid host name "a_b.example"`,
		}},
		{"unrouted web app needs a redirect", func(m *Manifest) { m.Routes = nil; m.Apps[0].RedirectURIs = nil }, []string{
			"apps[0].redirect_uris: at least one redirect URI is required for a web app",
		}},
		{"route required fields", func(m *Manifest) { m.Routes = []Route{{}} }, []string{
			"routes[0].app: required: the name of a web app in apps",
			"routes[0].host: required",
			"routes[0].upstream: required",
		}},
		{"route rules", func(m *Manifest) {
			m.Routes[0].Allow = Allow{Groups: []string{"a", "a"}, Paths: []PathRule{{Prefix: "/api/", Methods: []string{"DELETE"}, Groups: []string{""}}}}
			m.Routes[0].PublicPaths = []string{"/static/", "/favicon.ico"}
		}, []string{
			`routes[0].allow.groups[1]: "a" is listed twice (also routes[0].allow.groups[0])`,
			"routes[0].allow.paths[0].groups[0]: must not be empty",
		}},

		// Identity providers.
		{"identity providers", func(m *Manifest) {
			m.IdentityProviders = append(m.IdentityProviders,
				IdentityProvider{ID: "google", Type: IdPOAuth2, Issuer: "https://x.example"},
				IdentityProvider{ID: "corp", Type: IdPSAML, Issuer: "https://sso.corp.example/metadata", Scopes: []string{"a b"}},
				IdentityProvider{ID: "dev", Type: IdPOIDC, Issuer: "http://localhost:9000?x", ClientID: "c"},
				IdentityProvider{},
			)
		}, []string{
			`identity_providers[1].client_id: required for an oauth2 provider`,
			`identity_providers[1].id: duplicate id "google" (also identity_providers[0])`,
			`identity_providers[2].scopes[0]: invalid scope "a b": one scope per item, printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)`,
			"identity_providers[3].issuer: must not contain a query",
			"identity_providers[4].id: required",
			"identity_providers[4].issuer: required",
			"identity_providers[4].type: required: one of oidc, oauth2 or saml",
		}},

		// Extensions.
		{"extension shape", func(m *Manifest) {
			m.Extensions = append(m.Extensions,
				Extension{ID: "claims", Events: []string{"OnOtpSend"}},
				Extension{ID: "hook", URL: "http://hooks.example/x", MemoryLimit: MiB, AllowedHosts: []string{"a.example"}},
				Extension{ID: "limits", Wasm: "l.wasm", Events: []string{"onOtpSend"}, Timeout: Duration(time.Microsecond), MemoryLimit: 32 * KiB},
				Extension{ID: "ok", Wasm: "ok.wasm", Events: []string{"OnOtpSend"}, Timeout: Duration(10 * time.Second), MemoryLimit: 512 * MiB,
					OnError: OnErrorContinue, AllowedHosts: []string{"*.example.com", "api.example:443", "bad host"}},
			)
		}, []string{
			"extensions[1]: set one of wasm (a WebAssembly module) or url (an HTTP endpoint)",
			`extensions[1].id: duplicate id "claims" (also extensions[0])`,
			"extensions[2].allowed_hosts: applies to wasm extensions only",
			"extensions[2].events: at least one event is required: OnAttributeCollectionStart, OnAttributeCollectionSubmit, OnTokenIssuanceStart, OnOtpSend or OnProxyRequest",
			"extensions[2].memory_limit: applies to wasm extensions only",
			"extensions[2].url: http is only allowed for a loopback host (localhost, *.localhost, 127.0.0.1, [::1]); use https",
			`extensions[3].events[0]: unknown event "onOtpSend" (did you mean OnOtpSend?)`,
			"extensions[3].memory_limit: out of range: between 64KiB and 512MiB",
			"extensions[3].timeout: out of range: between 1ms and 10s",
			"extensions[4].allowed_hosts[2]: must be a host name or host:port",
		}},
		{"extension secrets", func(m *Manifest) {
			m.Extensions[0].Secrets = map[string]string{"api_key": "sk_live_1", "API_KEY": "x", "_private2": strings.Repeat("s", int(MaxExtensionSecretSize))}
		}, nil},
		{"extension secret names and values", func(m *Manifest) {
			m.Extensions[0].Secrets = map[string]string{"api-key": "sk_live_1", "2fa": "x", "": "x", strings.Repeat("k", 65): "x",
				"empty": "", "huge": "sk_live_" + strings.Repeat("s", int(MaxExtensionSecretSize))}
		}, []string{
			"extensions[0].secrets: a secret's name must not be empty",
			`extensions[0].secrets.2fa: invalid secret name "2fa": use 1 to 64 letters, digits and _, not starting with a digit`,
			`extensions[0].secrets.api-key: invalid secret name "api-key": use 1 to 64 letters, digits and _, not starting with a digit`,
			"extensions[0].secrets.empty: must not be empty: leave the secret out, or check that the environment variable it names is not empty",
			"extensions[0].secrets.huge: too long: 4104 bytes, at most 4KiB",
			`extensions[0].secrets.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: invalid secret name "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk": use 1 to 64 letters, digits and _, not starting with a digit`,
		}},
		{"too many extension secrets", func(m *Manifest) {
			m.Extensions[0].Secrets = map[string]string{}
			for i := range MaxExtensionSecrets + 1 {
				m.Extensions[0].Secrets["k"+strconv.Itoa(i)] = "v"
			}
		}, []string{"extensions[0].secrets: 33 secrets: at most 32"}},
		{"secrets of an http extension", func(m *Manifest) {
			m.Extensions = append(m.Extensions, Extension{ID: "hook", URL: "https://hooks.example/x", Events: []string{EventOtpSend},
				Secrets: map[string]string{"api_key": "sk_live_1"}})
		}, []string{"extensions[1].secrets: applies to wasm extensions only: an HTTP extension's service keeps its own secrets, and knows Postern's calls by their signed token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.change(m)
			err := m.Validate()
			var got []string
			if err != nil {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("error is %T", err)
				}
				got = strings.Split(errs.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestValidateLines checks that semantic errors found after decoding carry the line of the field, or of the
// nearest written ancestor for a missing field.
func TestValidateLines(t *testing.T) {
	src := `tenant: acme
apps:
  - name: web
    type: spa

  - type: web
    redirect_uris:
      - https://a.example/cb
      - "https://a.example/cb#x"
branding:
  colors:
    "a.b": "#fff"
`
	want := []string{
		"line 3: apps[0].redirect_uris: at least one redirect URI is required for a spa app",
		"line 6: apps[1].name: required",
		"line 9: apps[1].redirect_uris[1]: must not contain a fragment (#...) (RFC 6749 §3.1.2)",
		`line 12: branding.colors["a.b"]: invalid color name: use lower-case letters, digits, _ and -, starting with a letter`,
	}
	if got := problems(t, src, env(nil)); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Secrets in YAML: values from the environment, problems on their lines, and no value in any message.
func TestValidateExtensionSecretsYAML(t *testing.T) {
	src := `tenant: acme
extensions:
  - id: loyalty
    wasm: loyalty.wasm
    events: [OnAttributeCollectionSubmit]
    secrets:
      api_key: ${LOYALTY_KEY}
      webhook: ${EMPTY}
      bad-name: literal-value-0042
`
	vars := map[string]string{"LOYALTY_KEY": "sk_live_from_env_77", "EMPTY": ""}
	want := []string{
		"line 8: extensions[0].secrets.webhook: must not be empty: leave the secret out, or check that the environment variable it names is not empty",
		`line 9: extensions[0].secrets.bad-name: invalid secret name "bad-name": use 1 to 64 letters, digits and _, not starting with a digit`,
	}
	got := problems(t, src, env(vars))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range got {
		if strings.Contains(line, "sk_live_from_env_77") || strings.Contains(line, "literal-value-0042") {
			t.Errorf("a problem repeats a secret's value: %s", line)
		}
	}
	m, err := ParseYAML([]byte(strings.Replace(src, "      webhook: ${EMPTY}\n      bad-name: literal-value-0042\n", "", 1)), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Extensions[0].Secrets; !reflect.DeepEqual(got, map[string]string{"api_key": "sk_live_from_env_77"}) {
		t.Errorf("secrets = %v, want api_key from the environment", got)
	}
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"apps[1].redirect_uris[0]":   "apps[1].redirect_uris",
		"apps[1].redirect_uris":      "apps[1]",
		"apps[1]":                    "apps",
		"apps":                       "",
		`branding.colors["a.b[c"]`:   "branding.colors",
		`branding.strings["x"].y`:    `branding.strings["x"]`,
		`branding.strings.fr["a b"]`: "branding.strings.fr",
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields := []string{"name", "type", "client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris"}
	for in, want := range map[string]string{
		"redirect_uri":  "redirect_uris",
		"redirectUris":  "redirect_uris",
		"clientID":      "client_id",
		"client-secret": "client_secret",
		"nmae":          "name",
		"typo":          "type",
		"x":             "",
		"scopes":        "",
	} {
		if got := suggest(in, fields); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestImports keeps the package free of the rest of Postern and of everything but yaml.v3 (ARCHITECTURE.md:
// the manifest is read by the CLI, the admin API and tests alike).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && path != "gopkg.in/yaml.v3" {
				t.Errorf("%s imports %s: only the standard library and gopkg.in/yaml.v3 are allowed", name, path)
			}
		}
	}
}

func TestExtensionCallLimits(t *testing.T) {
	m := Manifest{Tenant: "acme", Extensions: []Extension{
		{ID: "a", Wasm: "a.wasm", Events: []string{"OnOtpSend"}, MaxInstances: 65, MaxInput: 512, MaxOutput: 2 * MiB},
		{ID: "b", Wasm: "b.wasm", Events: []string{"OnOtpSend"}, MaxInstances: 4, MaxInput: 64 * KiB, MaxOutput: MiB},
	}}
	err := m.Validate()
	if err == nil {
		t.Fatal("out-of-range limits accepted")
	}
	for _, field := range []string{"extensions[0].max_instances", "extensions[0].max_input", "extensions[0].max_output"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("no problem reported for %s in %v", field, err)
		}
	}
	if strings.Contains(err.Error(), "extensions[1]") {
		t.Errorf("limits within range refused: %v", err)
	}
}
