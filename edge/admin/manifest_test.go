package admin

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
)

// acmeManifest is the manifest the apply tests start from: a confidential and a public app.
func acmeManifest() manifest.Manifest {
	return manifest.Manifest{
		Tenant:        "acme",
		DisplayName:   "Acme Shop",
		SignInMethods: []string{manifest.MethodPassword, manifest.MethodEmailOTP},
		Flows: manifest.Flows{
			SignUp: manifest.SignUp{EmailVerification: true, Attributes: []manifest.Attribute{{Name: "given_name", Required: true}}},
			MFA:    manifest.MFA{Mode: manifest.MFAOptional, Methods: []string{manifest.FactorEmailOTP, manifest.FactorTOTP}},
		},
		Branding: manifest.Branding{CompanyName: "Acme Shop", Colors: map[string]string{"primary": "#1f6feb"}},
		Apps: []manifest.App{
			{Name: "shop-web", Type: manifest.AppWeb, ClientID: "shop-web",
				RedirectURIs: []string{"http://127.0.0.1:9000/callback"}, PostLogoutRedirectURIs: []string{"http://127.0.0.1:9000/"}},
			{Name: "shop-spa", Type: manifest.AppSPA, RedirectURIs: []string{"https://shop.example/cb"}},
		},
	}
}

func (e *testEnv) apply(t *testing.T, m manifest.Manifest) (ApplyReport, response) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var rep ApplyReport
	r := e.must(t, 200, "PUT", "/admin/v1/tenants/"+m.Tenant+"/manifest", b, &rep)
	return rep, r
}

func TestManifestApply(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	m := acmeManifest()

	first, r := e.apply(t, m)
	if !first.Changed || first.Tenant != "acme" || first.Issuer != testPublicURL+"/acme" || first.Index != r.index(t) {
		t.Errorf("first apply = %+v", first)
	}
	for _, want := range []string{"create tenant acme", "create app shop-web", "create app shop-spa"} {
		if !slices.Contains(first.Changes, want) {
			t.Errorf("changes %q lack %q", first.Changes, want)
		}
	}
	if len(first.Apps) != 2 {
		t.Fatalf("apps = %+v", first.Apps)
	}
	web, spa := first.Apps[0], first.Apps[1]
	if web.Name != "shop-web" || web.ClientID != "shop-web" || len(web.ClientSecret) < 32 {
		t.Errorf("web app = %+v, want client_id shop-web and a generated secret", web)
	}
	if spa.Name != "shop-spa" || spa.ClientID == "" || spa.ClientSecret != "" {
		t.Errorf("spa app = %+v, want a generated client_id and no secret", spa)
	}
	stored, err := e.store.AppByClientID("acme", "shop-web")
	if err != nil {
		t.Fatal(err)
	}
	if !directory.AppSecretMatches(stored, web.ClientSecret) || stored.ManagedBy != directory.ManagedByManifest {
		t.Errorf("stored web app = %+v", stored)
	}
	tenant, err := e.store.Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	if tenant.DisplayName != "Acme Shop" || tenant.Settings.MFA.Mode != "optional" || !tenant.Settings.SignUp.EmailVerification {
		t.Errorf("stored tenant = %+v", tenant)
	}
	if keys, _ := e.store.SigningKeys("acme"); len(keys) != 1 || keys[0].State != directory.KeyActive {
		t.Errorf("signing keys = %+v", keys)
	}

	t.Run("again changes nothing", func(t *testing.T) {
		before := e.store.AppliedIndex()
		again, r := e.apply(t, m)
		if again.Changed || len(again.Changes) != 0 || again.Index != 0 {
			t.Errorf("second apply = %+v, want unchanged", again)
		}
		if !bytes.Contains(r.body, []byte(`"changes": []`)) {
			t.Errorf("changes is not an empty list: %s", r.body)
		}
		if h := r.header.Get("X-Postern-Index"); h != "" {
			t.Errorf("an apply that wrote nothing has X-Postern-Index %s", h)
		}
		if got := e.store.AppliedIndex(); got != before {
			t.Errorf("applied index moved from %d to %d", before, got)
		}
		if len(again.Apps) != 2 || again.Apps[0].ClientID != "shop-web" || again.Apps[0].ClientSecret != "" {
			t.Errorf("apps = %+v, want the client_ids and no secret", again.Apps)
		}
	})

	t.Run("one change", func(t *testing.T) {
		m.DisplayName = "Acme Shop Europe"
		rep, _ := e.apply(t, m)
		if !rep.Changed || !slices.Equal(rep.Changes, []string{"update tenant acme"}) {
			t.Errorf("apply = %+v, want exactly one change", rep)
		}
		if tn, _ := e.store.Tenant("acme"); tn.DisplayName != "Acme Shop Europe" {
			t.Errorf("display name = %q", tn.DisplayName)
		}
	})

	t.Run("removed apps go, API apps stay", func(t *testing.T) {
		var own appOut
		e.must(t, 201, "POST", "/admin/v1/tenants/acme/apps", map[string]any{"name": "ops-tool", "type": "service"}, &own)
		m.Apps = m.Apps[:1]
		rep, _ := e.apply(t, m)
		if !slices.Equal(rep.Changes, []string{"delete app shop-spa"}) {
			t.Errorf("changes = %q, want the spa deleted", rep.Changes)
		}
		e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/acme/apps/shop-spa", nil)
		e.must(t, 200, "GET", "/admin/v1/tenants/acme/apps/ops-tool", nil, nil)
		rep, _ = e.apply(t, m)
		if rep.Changed {
			t.Errorf("an app made through the API counts as a change: %q", rep.Changes)
		}
		e.must(t, 200, "GET", "/admin/v1/tenants/acme/apps/ops-tool", nil, nil)
		if a, _ := e.store.AppByClientID("acme", "shop-web"); !directory.AppSecretMatches(a, web.ClientSecret) {
			t.Errorf("re-applying changed the web app's secret")
		}
	})

	t.Run("yaml", func(t *testing.T) {
		doc := `tenant: acme
display_name: Acme from YAML
sign_in_methods: [password, email_otp]
flows:
  sign_up:
    email_verification: true
    attributes:
      - {name: given_name, required: true}
  mfa: {mode: optional, methods: [email_otp, totp]}
branding:
  company_name: Acme Shop
  colors: {primary: "#1f6feb"}
apps:
  - name: shop-web
    type: web
    client_id: shop-web
    redirect_uris: [http://127.0.0.1:9000/callback]
    post_logout_redirect_uris: [http://127.0.0.1:9000/]
`
		for _, ct := range []string{"application/yaml", "text/yaml; charset=utf-8"} {
			var rep ApplyReport
			e.must(t, 200, "PUT", "/admin/v1/tenants/acme/manifest", doc, &rep, "Content-Type", ct)
			if tn, _ := e.store.Tenant("acme"); tn.DisplayName != "Acme from YAML" {
				t.Errorf("%s: display name = %q", ct, tn.DisplayName)
			}
		}
		// The same state in JSON is no change: both forms mean the same.
		m.DisplayName = "Acme from YAML"
		if rep, _ := e.apply(t, m); rep.Changed {
			t.Errorf("YAML and JSON forms differ: %q", rep.Changes)
		}
	})

	t.Run("refused", func(t *testing.T) {
		before := e.store.AppliedIndex()
		snapshot := func() string {
			tn, _ := e.store.Tenant("acme")
			apps, _ := e.store.Apps("acme")
			b, _ := json.Marshal([]any{tn, apps})
			return string(b)
		}
		was := snapshot()

		eb := e.mustFail(t, 400, "invalid", "PUT", "/admin/v1/tenants/other/manifest", mustJSON(t, m))
		if !strings.Contains(eb.Error.Message, "other") {
			t.Errorf("tenant mismatch message %q", eb.Error.Message)
		}

		bad := m
		bad.Flows.MFA.Mode = "sometimes"
		bad.Apps = []manifest.App{
			{Name: "shop-web", Type: "desktop", RedirectURIs: []string{"https://shop.example/cb"}},
			{Name: "evil", Type: manifest.AppWeb, RedirectURIs: []string{"javascript:alert(1)"}},
			{Name: "pub", Type: manifest.AppSPA, ClientSecret: strings.Repeat("x", 40), RedirectURIs: []string{"https://shop.example/cb"}},
		}
		eb = e.mustFail(t, 400, "invalid_manifest", "PUT", "/admin/v1/tenants/acme/manifest", mustJSON(t, bad))
		var fields []string
		for _, raw := range eb.Error.Details {
			var p struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.Message == "" {
				t.Fatalf("detail %s is not {field, message}", raw)
			}
			fields = append(fields, p.Field)
		}
		for _, want := range []string{"flows.mfa.mode", "apps[0].type", "apps[1].redirect_uris[0]", "apps[2].client_secret"} {
			if !slices.Contains(fields, want) {
				t.Errorf("details %q lack %s", fields, want)
			}
		}

		// YAML problems carry their line; unknown fields are named.
		eb = e.mustFail(t, 400, "invalid_manifest", "PUT", "/admin/v1/tenants/acme/manifest",
			"tenant: acme\ncolour: red\napps:\n  - name: x\n    type: web\n    redirect_uri: https://a.example/cb\n", "Content-Type", "application/yaml")
		var lines []int
		text := ""
		for _, raw := range eb.Error.Details {
			var p struct {
				Line    int    `json:"line"`
				Field   string `json:"field"`
				Message string `json:"message"`
			}
			json.Unmarshal(raw, &p)
			lines = append(lines, p.Line)
			text += p.Field + " " + p.Message + "\n"
		}
		if !slices.Contains(lines, 2) || !slices.Contains(lines, 6) || !strings.Contains(text, "colour") || !strings.Contains(text, "redirect_uri") {
			t.Errorf("details of a YAML manifest with two unknown fields: lines %v\n%s", lines, text)
		}
		eb = e.mustFail(t, 400, "invalid_manifest", "PUT", "/admin/v1/tenants/acme/manifest", `{"tenant":"acme","colour":"red"}`)
		if !strings.Contains(string(eb.Error.Details[0]), "colour") {
			t.Errorf("unknown JSON field not named: %s", eb.Error.Details[0])
		}
		e.mustFail(t, 400, "invalid_manifest", "PUT", "/admin/v1/tenants/acme/manifest", `{"tenant":`)

		// A plan the directory refuses: an app cannot change its type.
		retyped := m
		retyped.Apps = []manifest.App{{Name: "shop-web", Type: manifest.AppSPA, RedirectURIs: []string{"https://shop.example/cb"}}}
		e.mustFail(t, 400, "invalid", "PUT", "/admin/v1/tenants/acme/manifest", mustJSON(t, retyped))

		if got := e.store.AppliedIndex(); got != before {
			t.Errorf("refused manifests moved the applied index from %d to %d", before, got)
		}
		if now := snapshot(); now != was {
			t.Errorf("refused manifests changed the tenant:\nwas %s\nnow %s", was, now)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
