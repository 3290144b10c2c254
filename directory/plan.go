package directory

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"postern.dev/postern/directory/manifest"
)

// ManagedByManifest marks records a manifest created: a later apply of the manifest deletes those it no
// longer lists, and leaves alone what operators made through the API.
const ManagedByManifest = "manifest"

// Plan is what applying a manifest would change, as one command's ops, with a line of text per change.
type Plan struct {
	Ops     []Op
	Changes []string
	// Apps gives each declared app's client_id, and the client_secret when the plan generated one (it is
	// shown once, then only its hash exists).
	Apps []PlannedApp
}

// PlannedApp is one app of a plan, for the apply report.
type PlannedApp struct {
	Name         string `json:"name"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
}

// PlanManifest compares a validated manifest with the tenant as this replica has it and returns the ops
// that make the tenant match. Applying the same manifest twice gives an empty plan the second time. It
// reads randomness (ids, secrets, keys), so it runs on the proposer; Apply still enforces every
// uniqueness rule, so a plan made on a stale replica cannot break the directory, only be refused.
func PlanManifest(s *Store, m *manifest.Manifest, kek *KEK) (*Plan, error) {
	p := &Plan{}
	tenant := m.Tenant
	want := Tenant{ID: tenant, DisplayName: m.DisplayName, DefaultLocale: m.DefaultLocale, ManagedBy: ManagedByManifest,
		Settings: settingsFrom(m)}
	have, err := s.Tenant(tenant)
	exists := err == nil
	switch {
	case err != nil && err != ErrNotFound && !isNotFound(err):
		return nil, err
	case !exists:
		p.add(fmt.Sprintf("create tenant %s", tenant), MakeOp(OpTenantCreate, want))
		key, err := NewSigningKey(kek, tenant, "ES256", KeyActive)
		if err != nil {
			return nil, err
		}
		p.add("create signing key "+key.ID+" (ES256)", MakeOp(OpKeyPut, key))
	default:
		if !sameJSON(have.Settings, want.Settings) || have.DisplayName != want.DisplayName ||
			have.DefaultLocale != want.DefaultLocale || have.ManagedBy != want.ManagedBy {
			p.add("update tenant "+tenant, MakeOp(OpTenantUpdate, TenantPatch{ID: tenant, DisplayName: &want.DisplayName,
				DefaultLocale: &want.DefaultLocale, Settings: &want.Settings, ManagedBy: &want.ManagedBy}))
		}
	}
	if err := p.planApps(s, m, exists); err != nil {
		return nil, err
	}
	algs := []string{}
	for _, a := range m.Apps {
		if a.SigningAlg != "" && a.SigningAlg != "ES256" {
			algs = append(algs, a.SigningAlg)
		}
	}
	if len(algs) > 0 {
		ops, changes, err := MissingKeyOps(s, kek, tenant, algs...)
		if err != nil {
			return nil, err
		}
		for i := range ops {
			p.add(changes[i], ops[i])
		}
	}
	if err := p.planRoutes(s, m, exists); err != nil {
		return nil, err
	}
	if err := p.planIdPs(s, m, kek, exists); err != nil {
		return nil, err
	}
	if err := p.planExtensions(s, m, kek, exists); err != nil {
		return nil, err
	}
	return p, nil
}

func isNotFound(err error) bool {
	e, ok := AsError(err)
	return ok && e.Code == CodeNotFound
}

func (p *Plan) add(change string, op Op) {
	p.Changes = append(p.Changes, change)
	p.Ops = append(p.Ops, op)
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func settingsFrom(m *manifest.Manifest) Settings {
	st := Settings{
		SignInMethods: m.SignInMethods,
		SignUp:        SignUp{EmailVerification: m.Flows.SignUp.EmailVerification},
		MFA:           MFA{Mode: m.Flows.MFA.Mode, Methods: m.Flows.MFA.Methods},
		Branding: Branding{CompanyName: m.Branding.CompanyName, Colors: m.Branding.Colors, Logo: m.Branding.Logo,
			Strings: m.Branding.Strings},
	}
	if len(st.SignInMethods) == 0 {
		st.SignInMethods = []string{manifest.MethodPassword}
	}
	if st.MFA.Mode == "" {
		st.MFA.Mode = manifest.MFAOff
	}
	for _, a := range m.Flows.SignUp.Attributes {
		t := a.Type
		if t == "" {
			t = "string"
		}
		st.SignUp.Attributes = append(st.SignUp.Attributes, AttributeDef{Name: a.Name, Type: t, Pattern: a.Pattern,
			Required: a.Required, Label: a.Label})
	}
	return st
}

// DefaultGrantTypes are an app type's grants when none are declared.
func DefaultGrantTypes(appType string) []string {
	if appType == AppService {
		return []string{"client_credentials"}
	}
	return []string{"authorization_code", "refresh_token"}
}

func (p *Plan) planApps(s *Store, m *manifest.Manifest, exists bool) error {
	var current []App
	if exists {
		var err error
		if current, err = s.Apps(m.Tenant); err != nil {
			return err
		}
	}
	byName := map[string]App{}
	for _, a := range current {
		byName[a.Name] = a
	}
	declared := map[string]bool{}
	for _, ma := range m.Apps {
		declared[ma.Name] = true
		grants := ma.GrantTypes
		if len(grants) == 0 {
			grants = DefaultGrantTypes(ma.Type)
		}
		have, found := byName[ma.Name]
		if !found {
			app := App{ID: NewID(), Tenant: m.Tenant, Name: ma.Name, Type: ma.Type, ClientID: ma.ClientID,
				RedirectURIs: ma.RedirectURIs, PostLogoutRedirectURIs: ma.PostLogoutRedirectURIs, GrantTypes: grants,
				AccessTokenTTL: Duration(ma.AccessTokenTTL), IDTokenTTL: Duration(ma.IDTokenTTL),
				RefreshTokenTTL: Duration(ma.RefreshTokenTTL), SigningAlg: ma.SigningAlg, JWKS: ma.JWKS, ManagedBy: ManagedByManifest}
			if app.ClientID == "" {
				app.ClientID = NewID()
			}
			planned := PlannedApp{Name: app.Name, ClientID: app.ClientID}
			if app.Confidential() {
				secret := ma.ClientSecret
				if secret == "" {
					secret = NewClientSecret()
					planned.ClientSecret = secret
				}
				app.Secrets = []SecretHash{{Hash: HashClientSecret(secret), CreatedAt: time.Now().UTC()}}
			}
			p.Apps = append(p.Apps, planned)
			p.add("create app "+app.Name, MakeOp(OpAppCreate, app))
			continue
		}
		if have.Type != ma.Type {
			return invalid("app %s: its type cannot change from %s to %s; give the new app another name", ma.Name, have.Type, ma.Type)
		}
		if ma.ClientID != "" && ma.ClientID != have.ClientID {
			return invalid("app %s: its client_id cannot change from %s to %s; give the new app another name", ma.Name, have.ClientID, ma.ClientID)
		}
		p.Apps = append(p.Apps, PlannedApp{Name: have.Name, ClientID: have.ClientID})
		managed := ManagedByManifest
		patch := AppPatch{Tenant: m.Tenant, ID: have.ID}
		changed := false
		setList := func(dst **[]string, want, got []string) {
			if !slices.Equal(want, got) {
				w := slices.Clone(want)
				if w == nil {
					w = []string{}
				}
				*dst, changed = &w, true
			}
		}
		setList(&patch.RedirectURIs, ma.RedirectURIs, have.RedirectURIs)
		setList(&patch.PostLogoutRedirectURIs, ma.PostLogoutRedirectURIs, have.PostLogoutRedirectURIs)
		setList(&patch.GrantTypes, grants, have.GrantTypes)
		setDur := func(dst **Duration, want manifest.Duration, got Duration) {
			if Duration(want) != got {
				w := Duration(want)
				*dst, changed = &w, true
			}
		}
		setDur(&patch.AccessTokenTTL, ma.AccessTokenTTL, have.AccessTokenTTL)
		setDur(&patch.IDTokenTTL, ma.IDTokenTTL, have.IDTokenTTL)
		setDur(&patch.RefreshTokenTTL, ma.RefreshTokenTTL, have.RefreshTokenTTL)
		if ma.SigningAlg != have.SigningAlg {
			alg := ma.SigningAlg
			patch.SigningAlg, changed = &alg, true
		}
		if ma.JWKS != have.JWKS {
			jwks := ma.JWKS
			patch.JWKS, changed = &jwks, true
		}
		if have.ManagedBy != managed {
			patch.ManagedBy, changed = &managed, true
		}
		if ma.ClientSecret != "" && !AppSecretMatches(have, ma.ClientSecret) {
			secrets := []SecretHash{{Hash: HashClientSecret(ma.ClientSecret), CreatedAt: time.Now().UTC()}}
			patch.Secrets, changed = &secrets, true
		}
		if changed {
			p.add("update app "+ma.Name, MakeOp(OpAppUpdate, patch))
		}
	}
	for _, a := range current {
		if a.ManagedBy == ManagedByManifest && !declared[a.Name] {
			p.add("delete app "+a.Name, MakeOp(OpAppDelete, Ref{Tenant: m.Tenant, ID: a.ID}))
		}
	}
	return nil
}

func (p *Plan) planRoutes(s *Store, m *manifest.Manifest, exists bool) error {
	var current []Route
	if exists {
		var err error
		if current, err = s.Routes(m.Tenant); err != nil {
			return err
		}
	}
	have := map[string]Route{}
	for _, r := range current {
		have[r.Host] = r
	}
	declared := map[string]bool{}
	for _, mr := range m.Routes {
		host := strings.ToLower(mr.Host)
		declared[host] = true
		want := Route{Host: host, Tenant: m.Tenant, Upstream: mr.Upstream, App: mr.App, PublicPaths: mr.PublicPaths,
			ManagedBy: ManagedByManifest, Allow: Allow{Authenticated: mr.Allow.Authenticated, Groups: mr.Allow.Groups}}
		for _, pr := range mr.Allow.Paths {
			want.Allow.Paths = append(want.Allow.Paths, PathRule{Prefix: pr.Prefix, Methods: pr.Methods, Groups: pr.Groups})
		}
		old, found := have[host]
		if found {
			want.UpdatedAt = old.UpdatedAt
			if sameJSON(old, want) {
				continue
			}
		}
		verb := "create"
		if found {
			verb = "update"
		}
		p.add(verb+" route "+host, MakeOp(OpRoutePut, want))
	}
	for _, r := range current {
		if r.ManagedBy == ManagedByManifest && !declared[r.Host] {
			p.add("delete route "+r.Host, MakeOp(OpRouteDelete, HostRef{Tenant: m.Tenant, Host: r.Host}))
		}
	}
	return nil
}

func (p *Plan) planIdPs(s *Store, m *manifest.Manifest, kek *KEK, exists bool) error {
	var current []IdentityProvider
	if exists {
		var err error
		if current, err = s.IdentityProviders(m.Tenant); err != nil {
			return err
		}
	}
	have := map[string]IdentityProvider{}
	for _, x := range current {
		have[x.ID] = x
	}
	declared := map[string]bool{}
	for _, mi := range m.IdentityProviders {
		declared[mi.ID] = true
		want := IdentityProvider{ID: mi.ID, Tenant: m.Tenant, Type: mi.Type, Issuer: mi.Issuer, ClientID: mi.ClientID,
			Scopes: mi.Scopes, ManagedBy: ManagedByManifest}
		old, found := have[mi.ID]
		ctx := IdPSecretContext(m.Tenant, mi.ID)
		secretSame := mi.ClientSecret == "" && len(old.ClientSecret) == 0
		if found && len(old.ClientSecret) > 0 && mi.ClientSecret != "" {
			if plain, err := kek.Open(old.ClientSecret, ctx); err == nil && string(plain) == mi.ClientSecret {
				secretSame = true
			}
		}
		if found && secretSame {
			want.ClientSecret, want.UpdatedAt = old.ClientSecret, old.UpdatedAt
			if sameJSON(old, want) {
				continue
			}
		}
		if mi.ClientSecret != "" && !(found && secretSame) {
			sealed, err := kek.Seal([]byte(mi.ClientSecret), ctx)
			if err != nil {
				return err
			}
			want.ClientSecret = sealed
		}
		verb := "create"
		if found {
			verb = "update"
		}
		p.add(verb+" identity provider "+mi.ID, MakeOp(OpIdPPut, want))
	}
	for _, x := range current {
		if x.ManagedBy == ManagedByManifest && !declared[x.ID] {
			p.add("delete identity provider "+x.ID, MakeOp(OpIdPDelete, Ref{Tenant: m.Tenant, ID: x.ID}))
		}
	}
	return nil
}

// WasmDataURLPrefix starts an inline module in the JSON form of a manifest: `postern apply` reads the
// file a manifest names and sends its bytes this way.
const WasmDataURLPrefix = "data:application/wasm;base64,"

func (p *Plan) planExtensions(s *Store, m *manifest.Manifest, kek *KEK, exists bool) error {
	var current []Extension
	if exists {
		var err error
		if current, err = s.Extensions(m.Tenant); err != nil {
			return err
		}
	}
	have := map[string]Extension{}
	for _, x := range current {
		have[x.ID] = x
	}
	declared := map[string]bool{}
	for i, me := range m.Extensions {
		declared[me.ID] = true
		want := Extension{ID: me.ID, Tenant: m.Tenant, Events: me.Events, URL: me.URL, Timeout: Duration(me.Timeout),
			MemoryLimit: int64(me.MemoryLimit), OnError: me.OnError, AllowedHosts: me.AllowedHosts, Config: me.Config,
			MaxInstances: me.MaxInstances, MaxInput: int64(me.MaxInput), MaxOutput: int64(me.MaxOutput),
			ManagedBy: ManagedByManifest}
		var wasm []byte
		switch {
		case me.Wasm == "":
		case strings.HasPrefix(me.Wasm, WasmDataURLPrefix):
			b, err := base64.StdEncoding.DecodeString(me.Wasm[len(WasmDataURLPrefix):])
			if err != nil {
				return invalid("extensions[%d].wasm: the inline module is not valid base64", i)
			}
			wasm = b
			want.WasmSHA256 = sha256Hex(b)
			want.WasmSize = int64(len(b))
		case strings.HasPrefix(me.Wasm, "sha256:"):
			want.WasmSHA256 = strings.TrimPrefix(me.Wasm, "sha256:")
			if _, err := s.Blob(m.Tenant, want.WasmSHA256); err != nil {
				return invalid("extensions[%d].wasm: no module %s is stored for tenant %s", i, me.Wasm, m.Tenant)
			}
		default:
			return invalid("extensions[%d].wasm: %q is a file path; `postern apply` uploads the file, the API takes the module inline (%s...)", i, me.Wasm, WasmDataURLPrefix)
		}
		old, found := have[me.ID]
		// Unchanged values keep their sealed bytes, so that the comparison below sees them equal.
		secrets, err := SealExtensionSecrets(kek, m.Tenant, me.ID, me.Secrets, old.Secrets)
		if err != nil {
			return err
		}
		want.Secrets = secrets
		if found {
			want.Version, want.UpdatedAt = old.Version, old.UpdatedAt
			if want.WasmSize == 0 {
				want.WasmSize = old.WasmSize
			}
			if sameJSON(old, want) {
				continue
			}
			if old.WasmSHA256 == want.WasmSHA256 {
				wasm = nil // already stored
			}
		}
		verb := "create"
		if found {
			verb = "update"
		}
		p.add(verb+" extension "+me.ID, MakeOp(OpExtensionPut, ExtensionPut{Extension: want, Wasm: wasm}))
	}
	for _, x := range current {
		if x.ManagedBy == ManagedByManifest && !declared[x.ID] {
			p.add("delete extension "+x.ID, MakeOp(OpExtensionDelete, Ref{Tenant: m.Tenant, ID: x.ID}))
		}
	}
	return nil
}
