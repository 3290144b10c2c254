package directory

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The conformance suite: every test here runs against the in-memory store and the on-disk Badger store.

func TestValidTenantID(t *testing.T) {
	cases := []struct {
		id string
		ok bool
	}{
		{"abc", true},
		{"acme", true},
		{"acme-corp", true},
		{"a1-b2", true},
		{"123", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{"a", false},
		{"ab", false},                    // too short
		{strings.Repeat("a", 64), false}, // too long
		{"Acme", false},                  // uppercase
		{"ACME", false},
		{"-acme", false}, // leading '-'
		{"acme-", false}, // trailing '-'
		{"ac_me", false},
		{"ac.me", false},
		{"ac/me", false},
		{"ac me", false},
		{"acmé", false},
		{"admin", false}, // reserved
		{"api", false},
		{"well-known", false},
		{"oauth2", false},
		{"jwks", false},
		{"admins", true}, // only the exact reserved names
	}
	for _, c := range cases {
		err := ValidTenantID(c.id)
		if c.ok {
			if err != nil {
				t.Errorf("ValidTenantID(%q) = %v, want nil", c.id, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidTenantID(%q) = %v, want an invalid error", c.id, err)
		}
	}
}

func TestTenantCreateUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		created := f.now()
		res := f.ok(MakeOp(OpTenantCreate, Tenant{ID: "acme", DisplayName: "Acme", DefaultLocale: "en",
			Settings: Settings{SignInMethods: []string{"password"}, MFA: MFA{Mode: "optional"}}}))
		if out := output[Tenant](t, res, 0); out.ID != "acme" || !out.CreatedAt.Equal(created) {
			t.Errorf("tenant.create output = %+v", out)
		}
		if want := []Change{{Tenant: "acme", Kind: "tenant", ID: "acme"}}; !slices.Equal(res.Changes, want) {
			t.Errorf("changes = %+v, want %+v", res.Changes, want)
		}
		f.ok(tenantCreate("beta"))

		got := must[Tenant](t, "Tenant")(s.Tenant("acme"))
		if got.DisplayName != "Acme" || got.DefaultLocale != "en" || got.Settings.MFA.Mode != "optional" ||
			!got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(created) {
			t.Errorf("Tenant(acme) = %+v", got)
		}
		all := must[[]Tenant](t, "Tenants")(s.Tenants())
		if len(all) != 2 || all[0].ID != "acme" || all[1].ID != "beta" {
			t.Errorf("Tenants() = %+v, want acme and beta in order", all)
		}

		f.refused(CodeConflict, MakeOp(OpTenantCreate, Tenant{ID: "acme", DisplayName: "Other"}))
		for _, id := range []string{"ab", "Acme", "-acme", "admin", ""} {
			f.refused(CodeInvalid, MakeOp(OpTenantCreate, Tenant{ID: id}))
		}

		updated := f.now()
		f.ok(MakeOp(OpTenantUpdate, TenantPatch{ID: "acme", DisplayName: ptr("Acme Corp")}))
		got = must[Tenant](t, "Tenant")(s.Tenant("acme"))
		if got.DisplayName != "Acme Corp" || got.DefaultLocale != "en" || got.Settings.MFA.Mode != "optional" {
			t.Errorf("after a display-name patch, Tenant(acme) = %+v; other fields must be kept", got)
		}
		if !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(updated) {
			t.Errorf("times after update: created %v updated %v, want %v and %v", got.CreatedAt, got.UpdatedAt, created, updated)
		}
		f.ok(MakeOp(OpTenantUpdate, TenantPatch{ID: "acme", Settings: &Settings{MFA: MFA{Mode: "required"}}}))
		if got = must[Tenant](t, "Tenant")(s.Tenant("acme")); got.Settings.MFA.Mode != "required" || got.DisplayName != "Acme Corp" {
			t.Errorf("after a settings patch, Tenant(acme) = %+v", got)
		}
		f.refused(CodeNotFound, MakeOp(OpTenantUpdate, TenantPatch{ID: "nope", DisplayName: ptr("x")}))

		ev := must[[]AuditEvent](t, "AuditEvents")(s.AuditEvents("acme", 0))
		if len(ev) != 3 || ev[0].Action != OpTenantCreate || ev[2].Action != OpTenantUpdate || ev[0].Actor != "tester" ||
			ev[0].Index != 1 {
			t.Errorf("AuditEvents(acme) = %+v", ev)
		}
	})
}

// populate gives tenant t one of everything that can be stored.
func populate(t *testing.T, f *fixture, kek *KEK, tenant string) {
	t.Helper()
	key, err := NewSigningKey(kek, tenant, "ES256", KeyActive)
	if err != nil {
		t.Fatal(err)
	}
	wasm := []byte("\x00asm\x01\x00\x00\x00" + tenant)
	f.ok(
		tenantCreate(tenant),
		userCreate(tenant, "u1", "ann@"+tenant+".example"),
		MakeOp(OpUserCreate, User{ID: "u2", Tenant: tenant, Username: "bob"}),
		groupCreate(tenant, "g1", "admins"),
		memberAdd(tenant, "g1", "u1"),
		memberAdd(tenant, "g1", "u2"),
		appCreate(tenant, "a1", "Portal", "client-"+tenant),
		MakeOp(OpKeyPut, key),
		routePut(tenant, tenant+".apps.example"),
		MakeOp(OpIdPPut, IdentityProvider{ID: "google", Tenant: tenant, Type: "oidc", ClientID: "cid"}),
		MakeOp(OpExtensionPut, ExtensionPut{Extension: Extension{ID: "e1", Tenant: tenant, Events: []string{"OnTokenIssuanceStart"},
			WasmSHA256: SHA256Hex(wasm)}, Wasm: wasm}),
		MakeOp(OpSessionPut, Session{ID: "s1", Tenant: tenant, UserID: "u1"}),
		MakeOp(OpRefreshPut, RefreshFamily{ID: "r1", Tenant: tenant, UserID: "u1", ClientID: "client-" + tenant}),
	)
}

func testKEK(t *testing.T) *KEK {
	t.Helper()
	k, err := NewKEK([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTenantDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		kek := testKEK(t)
		// "acme-2" shares the prefix "acme" as a string: deleting acme must not touch it.
		populate(t, f, kek, "acme")
		populate(t, f, kek, "acme-2")
		before := dump(t, s)
		if len(keysUnder(before, "t/acme/")) < 15 {
			t.Fatalf("populate stored only %v", keysUnder(before, "t/acme/"))
		}

		res := f.ok(ref(OpTenantDelete, "", "acme"))
		if want := []Change{{Tenant: "acme", Kind: "tenant", ID: "acme"}}; !slices.Equal(res.Changes, want) {
			t.Errorf("changes = %+v, want %+v", res.Changes, want)
		}
		after := dump(t, s)
		if left := keysUnder(after, "t/acme/"); len(left) != 0 {
			t.Errorf("tenant delete left keys behind: %v", left)
		}
		for _, k := range []string{"sys/tenants/acme", "sys/host/acme.apps.example"} {
			if _, ok := after[k]; ok {
				t.Errorf("tenant delete left %s", k)
			}
		}
		for k, v := range before {
			if strings.HasPrefix(k, "t/acme-2/") || k == "sys/tenants/acme-2" || k == "sys/host/acme-2.apps.example" {
				if after[k] != v {
					t.Errorf("deleting acme changed acme-2's %s", k)
				}
			}
		}
		if audits := keysUnder(after, "sys/audit/"); len(audits) != 1 {
			t.Errorf("tenant delete audit events = %v, want one under sys/audit/", audits)
		}

		wantNotFound(t, "Tenant(acme)", func() error { _, err := s.Tenant("acme"); return err }())
		wantNotFound(t, "RouteByHost", func() error { _, err := s.RouteByHost("acme.apps.example"); return err }())
		wantNotFound(t, "UserByEmail", func() error { _, err := s.UserByEmail("acme", "ann@acme.example"); return err }())
		if ts := must[[]Tenant](t, "Tenants")(s.Tenants()); len(ts) != 1 || ts[0].ID != "acme-2" {
			t.Errorf("Tenants() = %+v, want only acme-2", ts)
		}
		if _, err := s.RouteByHost("acme-2.apps.example"); err != nil {
			t.Errorf("RouteByHost(acme-2's host): %v", err)
		}

		// The freed host may be routed by another tenant, and the id reused.
		f.ok(routePut("acme-2", "acme.apps.example"))
		f.ok(tenantCreate("acme"))
		if u := must[[]User](t, "Users")(s.Users("acme", "", 0)); len(u) != 0 {
			t.Errorf("a re-created tenant has users %+v", u)
		}

		f.refused(CodeNotFound, ref(OpTenantDelete, "", "nope"))
		f.refused(CodeInvalid, ref(OpTenantDelete, "", ""))
	})
}

func TestUserCreate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), tenantCreate("beta"))

		res := f.ok(MakeOp(OpUserCreate, User{ID: "u1", Tenant: "acme", Email: "  Alice.Smith@Example.COM ",
			PasswordHash: "$argon2id$secret", Profile: Profile{GivenName: "Alice"},
			Attributes:  map[string]any{"plan": "gold"},
			Credentials: []Credential{{ID: "c1", Type: "totp", Secret: Sealed("sealed-bytes")}}}))
		out := output[User](t, res, 0)
		if out.PasswordHash != "" || len(out.Credentials) != 1 || out.Credentials[0].Secret != nil {
			t.Errorf("user.create output leaks secrets: %+v", out)
		}
		if out.Email != "alice.smith@example.com" {
			t.Errorf("output email = %q", out.Email)
		}
		u := must[User](t, "User")(s.User("acme", "u1"))
		if u.Email != "alice.smith@example.com" {
			t.Errorf("stored email = %q, want it lower-cased and trimmed", u.Email)
		}
		if u.PasswordHash != "$argon2id$secret" || string(u.Credentials[0].Secret) != "sealed-bytes" ||
			u.Profile.GivenName != "Alice" || u.Attributes["plan"] != "gold" || !u.CreatedAt.Equal(t0.Add(2e9)) {
			t.Errorf("stored user = %+v", u)
		}
		if p := u.Public(); p.PasswordHash != "" || p.Credentials[0].Secret != nil || u.Credentials[0].Secret == nil {
			t.Errorf("Public() must hide secrets without changing the user: %+v / %+v", p, u)
		}

		for _, email := range []string{"alice.smith@example.com", "ALICE.SMITH@EXAMPLE.COM", " Alice.Smith@example.Com\t"} {
			got, err := s.UserByEmail("acme", email)
			if err != nil || got.ID != "u1" {
				t.Errorf("UserByEmail(%q) = %v, %v", email, got.ID, err)
			}
		}
		wantNotFound(t, "UserByEmail(other address)", func() error { _, err := s.UserByEmail("acme", "bob@example.com"); return err }())

		f.ok(MakeOp(OpUserCreate, User{ID: "u2", Tenant: "acme", Username: "bobby"}))
		if got := must[User](t, "UserByUsername")(s.UserByUsername("acme", "bobby")); got.ID != "u2" {
			t.Errorf("UserByUsername = %+v", got)
		}

		refusals := []struct {
			name string
			code string
			user User
		}{
			{"same email, other case", CodeConflict, User{ID: "u3", Tenant: "acme", Email: "ALICE.smith@example.com"}},
			{"same email, spaces", CodeConflict, User{ID: "u3", Tenant: "acme", Email: " alice.smith@example.com "}},
			{"same username", CodeConflict, User{ID: "u3", Tenant: "acme", Username: "bobby"}},
			{"new email, taken username", CodeConflict, User{ID: "u3", Tenant: "acme", Email: "new@example.com", Username: "bobby"}},
			{"same id", CodeConflict, User{ID: "u1", Tenant: "acme", Email: "fresh@example.com"}},
			{"no id", CodeInvalid, User{Tenant: "acme", Email: "fresh@example.com"}},
			{"no email or username", CodeInvalid, User{ID: "u3", Tenant: "acme"}},
			{"blank email", CodeInvalid, User{ID: "u3", Tenant: "acme", Email: "   "}},
			{"no tenant", CodeInvalid, User{ID: "u3", Email: "fresh@example.com"}},
			{"unknown tenant", CodeNotFound, User{ID: "u3", Tenant: "nope", Email: "fresh@example.com"}},
			{"slash in id", CodeInvalid, User{ID: "u3/x", Tenant: "acme", Email: "fresh@example.com"}},
		}
		for _, r := range refusals {
			t.Run(r.name, func(t *testing.T) {
				f.t = t
				f.refused(r.code, MakeOp(OpUserCreate, r.user))
			})
		}
		f.t = t
		if n := len(must[[]User](t, "Users")(s.Users("acme", "", 0))); n != 2 {
			t.Errorf("acme has %d users after the refusals, want 2", n)
		}

		// The same email and username in another tenant are fine: uniqueness is per tenant.
		f.ok(MakeOp(OpUserCreate, User{ID: "u1", Tenant: "beta", Email: "Alice.Smith@example.com", Username: "bobby"}))
		if got := must[User](t, "UserByEmail")(s.UserByEmail("beta", "alice.smith@example.com")); got.Tenant != "beta" {
			t.Errorf("UserByEmail(beta) = %+v", got)
		}
		if got := must[User](t, "UserByEmail")(s.UserByEmail("acme", "alice.smith@example.com")); got.Tenant != "acme" {
			t.Errorf("UserByEmail(acme) = %+v", got)
		}
	})
}

func TestUserUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"),
			MakeOp(OpUserCreate, User{ID: "u1", Tenant: "acme", Email: "one@example.com", Username: "one",
				Attributes: map[string]any{"a": "1", "b": "2"}}),
			MakeOp(OpUserCreate, User{ID: "u2", Tenant: "acme", Email: "two@example.com", Username: "two"}))

		res := f.ok(MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Email: ptr("New@Example.com"),
			PasswordHash: ptr("hash"), Attributes: map[string]any{"a": nil, "c": "3"}}))
		if out := output[User](t, res, 0); out.PasswordHash != "" || out.Email != "new@example.com" {
			t.Errorf("user.update output = %+v", out)
		}
		u := must[User](t, "User")(s.User("acme", "u1"))
		if u.Email != "new@example.com" || u.Username != "one" || u.PasswordHash != "hash" {
			t.Errorf("updated user = %+v", u)
		}
		if want := map[string]any{"b": "2", "c": "3"}; !maps.Equal(u.Attributes, want) {
			t.Errorf("attributes = %v, want %v (null removes, others merge)", u.Attributes, want)
		}
		wantNotFound(t, "old email", func() error { _, err := s.UserByEmail("acme", "one@example.com"); return err }())
		if got := must[User](t, "UserByEmail")(s.UserByEmail("acme", "NEW@example.com")); got.ID != "u1" {
			t.Errorf("new email finds %q", got.ID)
		}
		if kv := dump(t, s); kv["t/acme/ix/email/one@example.com"] != "" || kv["t/acme/ix/email/new@example.com"] != "u1" {
			t.Errorf("email index: %v", keysUnder(kv, "t/acme/ix/email/"))
		}
		// The freed address can be claimed by another user.
		f.ok(userCreate("acme", "u3", "one@example.com"))

		f.refused(CodeConflict, MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Email: ptr("TWO@example.com")}))
		f.refused(CodeConflict, MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Username: ptr("two")}))
		// A conflicting username refuses the whole patch, the new email too.
		f.refused(CodeConflict, MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Email: ptr("free@example.com"), Username: ptr("two")}))
		f.refused(CodeNotFound, MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "nope", Email: ptr("x@example.com")}))
		f.refused(CodeInvalid, MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Email: ptr(""), Username: ptr("")}))

		// Setting a user's own email in another case, and renaming the username, keep one index entry each.
		f.ok(MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Email: ptr("NEW@EXAMPLE.COM"), Username: ptr("uno")}))
		f.ok(MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u2", Username: ptr("one"), Blocked: ptr(true)}))
		kv := dump(t, s)
		wantIx := []string{"t/acme/ix/email/new@example.com", "t/acme/ix/email/one@example.com", "t/acme/ix/email/two@example.com",
			"t/acme/ix/username/one", "t/acme/ix/username/uno"}
		if got := append(keysUnder(kv, "t/acme/ix/email/"), keysUnder(kv, "t/acme/ix/username/")...); !slices.Equal(got, wantIx) {
			t.Errorf("indexes = %v, want %v", got, wantIx)
		}
		if kv["t/acme/ix/username/one"] != "u2" || kv["t/acme/ix/email/one@example.com"] != "u3" {
			t.Errorf("index owners wrong: %v", kv)
		}
		if u := must[User](t, "User")(s.User("acme", "u2")); !u.Blocked || u.Email != "two@example.com" {
			t.Errorf("u2 = %+v", u)
		}

		// Dropping the email (the user keeps a username) frees its index entry.
		f.ok(MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Email: ptr("")}))
		wantNotFound(t, "dropped email", func() error { _, err := s.UserByEmail("acme", "new@example.com"); return err }())
	})
}

func TestUserDeleteAndCredentials(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"),
			MakeOp(OpUserCreate, User{ID: "u1", Tenant: "acme", Email: "one@example.com", Username: "one"}),
			userCreate("acme", "u2", "two@example.com"),
			groupCreate("acme", "g1", "staff"), groupCreate("acme", "g2", "admins"),
			memberAdd("acme", "g1", "u1"), memberAdd("acme", "g2", "u1"), memberAdd("acme", "g1", "u2"))

		f.ok(MakeOp(OpCredentialPut, CredentialPut{Tenant: "acme", UserID: "u1", Credential: Credential{ID: "c1", Type: "totp", Secret: Sealed("s1")}}))
		f.ok(MakeOp(OpCredentialPut, CredentialPut{Tenant: "acme", UserID: "u1", Credential: Credential{ID: "c1", Type: "totp", Name: "phone", Secret: Sealed("s2")}}))
		if u := must[User](t, "User")(s.User("acme", "u1")); len(u.Credentials) != 1 || u.Credentials[0].Name != "phone" {
			t.Errorf("credential put must replace by id: %+v", u.Credentials)
		}
		f.refused(CodeInvalid, MakeOp(OpCredentialPut, CredentialPut{Tenant: "acme", UserID: "u1", Credential: Credential{ID: "c2"}}))
		f.refused(CodeNotFound, MakeOp(OpCredentialPut, CredentialPut{Tenant: "acme", UserID: "nope", Credential: Credential{ID: "c2", Type: "totp"}}))
		f.ok(MakeOp(OpCredentialDelete, CredentialRef{Tenant: "acme", UserID: "u1", ID: "c1"}))
		f.refused(CodeNotFound, MakeOp(OpCredentialDelete, CredentialRef{Tenant: "acme", UserID: "u1", ID: "c1"}))

		f.ok(ref(OpUserDelete, "acme", "u1"))
		wantNotFound(t, "User", func() error { _, err := s.User("acme", "u1"); return err }())
		wantNotFound(t, "UserByEmail", func() error { _, err := s.UserByEmail("acme", "one@example.com"); return err }())
		wantNotFound(t, "UserByUsername", func() error { _, err := s.UserByUsername("acme", "one"); return err }())
		if g := must[[]string](t, "UserGroups")(s.UserGroups("acme", "u1")); len(g) != 0 {
			t.Errorf("deleted user still in groups %v", g)
		}
		if m := must[[]string](t, "GroupMembers")(s.GroupMembers("acme", "g1")); !slices.Equal(m, []string{"u2"}) {
			t.Errorf("GroupMembers(g1) = %v, want [u2]", m)
		}
		if m := must[[]string](t, "GroupMembers")(s.GroupMembers("acme", "g2")); len(m) != 0 {
			t.Errorf("GroupMembers(g2) = %v, want none", m)
		}
		kv := dump(t, s)
		for k := range kv {
			if strings.Contains(k, "u1") || strings.HasSuffix(k, "/one@example.com") || strings.HasSuffix(k, "/one") {
				if !strings.HasPrefix(k, "t/acme/audit/") {
					t.Errorf("user delete left %s", k)
				}
			}
		}
		// Email and username are free again.
		f.ok(MakeOp(OpUserCreate, User{ID: "u9", Tenant: "acme", Email: "ONE@example.com", Username: "one"}))
		f.refused(CodeNotFound, ref(OpUserDelete, "acme", "u1"))
		f.refused(CodeNotFound, ref(OpUserDelete, "nope", "u2"))
	})
}

func TestGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), tenantCreate("beta"),
			userCreate("acme", "u1", "one@example.com"), userCreate("acme", "u2", "two@example.com"),
			userCreate("beta", "u1", "one@example.com"))
		f.ok(groupCreate("acme", "g1", "staff"), groupCreate("acme", "g2", "admins"), groupCreate("beta", "g1", "staff"))

		for _, c := range []struct {
			name string
			code string
			op   Op
		}{
			{"duplicate name", CodeConflict, groupCreate("acme", "g3", "staff")},
			{"duplicate id", CodeConflict, groupCreate("acme", "g1", "other")},
			{"no name", CodeInvalid, groupCreate("acme", "g3", "")},
			{"no id", CodeInvalid, groupCreate("acme", "", "x")},
			{"slash in id", CodeInvalid, groupCreate("acme", "g1/x", "x")},
			{"unknown tenant", CodeNotFound, groupCreate("nope", "g3", "x")},
			{"rename to taken name", CodeConflict, MakeOp(OpGroupUpdate, GroupPatch{Tenant: "acme", ID: "g2", Name: ptr("staff")})},
			{"rename to empty", CodeInvalid, MakeOp(OpGroupUpdate, GroupPatch{Tenant: "acme", ID: "g2", Name: ptr("")})},
			{"update unknown", CodeNotFound, MakeOp(OpGroupUpdate, GroupPatch{Tenant: "acme", ID: "g9", Name: ptr("x")})},
			{"add unknown user", CodeNotFound, memberAdd("acme", "g1", "u9")},
			{"add unknown group", CodeNotFound, memberAdd("acme", "g9", "u1")},
			{"remove non-member", CodeNotFound, MakeOp(OpMemberRemove, Membership{Tenant: "acme", GroupID: "g1", UserID: "u1"})},
			{"delete unknown", CodeNotFound, ref(OpGroupDelete, "acme", "g9")},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				f.refused(c.code, c.op)
			})
		}
		f.t = t

		if g := must[Group](t, "GroupByName")(s.GroupByName("acme", "admins")); g.ID != "g2" {
			t.Errorf("GroupByName(admins) = %+v", g)
		}
		if gs := must[[]Group](t, "Groups")(s.Groups("acme")); len(gs) != 2 || gs[0].Name != "staff" || gs[1].Name != "admins" {
			t.Errorf("Groups = %+v", gs)
		}

		f.ok(memberAdd("acme", "g1", "u1"), memberAdd("acme", "g1", "u2"), memberAdd("acme", "g2", "u1"))
		f.ok(memberAdd("acme", "g1", "u1")) // adding twice is harmless
		if m := must[[]string](t, "GroupMembers")(s.GroupMembers("acme", "g1")); !slices.Equal(m, []string{"u1", "u2"}) {
			t.Errorf("GroupMembers(g1) = %v", m)
		}
		if g := must[[]string](t, "UserGroups")(s.UserGroups("acme", "u1")); !slices.Equal(g, []string{"g1", "g2"}) {
			t.Errorf("UserGroups(u1) = %v", g)
		}
		if m := must[[]string](t, "GroupMembers")(s.GroupMembers("beta", "g1")); len(m) != 0 {
			t.Errorf("beta's g1 has members %v", m)
		}

		f.ok(MakeOp(OpMemberRemove, Membership{Tenant: "acme", GroupID: "g1", UserID: "u2"}))
		if g := must[[]string](t, "UserGroups")(s.UserGroups("acme", "u2")); len(g) != 0 {
			t.Errorf("UserGroups(u2) after remove = %v", g)
		}

		// Renaming frees the old name.
		f.ok(MakeOp(OpGroupUpdate, GroupPatch{Tenant: "acme", ID: "g2", Name: ptr("owners"), Description: ptr("d")}))
		wantNotFound(t, "old name", func() error { _, err := s.GroupByName("acme", "admins"); return err }())
		if g := must[Group](t, "Group")(s.Group("acme", "g2")); g.Name != "owners" || g.Description != "d" {
			t.Errorf("renamed group = %+v", g)
		}
		f.ok(groupCreate("acme", "g3", "admins"))

		res := f.ok(ref(OpGroupDelete, "acme", "g1"))
		if !slices.Contains(res.Changes, Change{Tenant: "acme", Kind: "user", ID: "u1"}) {
			t.Errorf("group delete changes %+v do not name the member whose groups changed", res.Changes)
		}
		wantNotFound(t, "Group(g1)", func() error { _, err := s.Group("acme", "g1"); return err }())
		if g := must[[]string](t, "UserGroups")(s.UserGroups("acme", "u1")); !slices.Equal(g, []string{"g2"}) {
			t.Errorf("UserGroups(u1) after group delete = %v", g)
		}
		if kv := dump(t, s); len(keysUnder(kv, "t/acme/member/g1/")) != 0 || kv["t/acme/memberof/u1/g1"] != "" {
			t.Errorf("group delete left memberships: %v", keysUnder(kv, "t/acme/member"))
		}
		f.ok(groupCreate("acme", "g4", "staff")) // name freed
	})
}

func TestApps(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		secret1, secret2 := NewClientSecret(), NewClientSecret()
		h1 := SecretHash{Hash: HashClientSecret(secret1), CreatedAt: t0}
		f.ok(tenantCreate("acme"), tenantCreate("beta"))

		res := f.ok(appCreate("acme", "a1", "Portal", "portal", h1))
		if out := output[App](t, res, 0); len(out.Secrets) != 1 || out.Secrets[0].Hash != "" || !out.Secrets[0].CreatedAt.Equal(t0) {
			t.Errorf("app.create output must hide secret hashes: %+v", out.Secrets)
		}
		app := must[App](t, "AppByClientID")(s.AppByClientID("acme", "portal"))
		if app.ID != "a1" || app.Secrets[0].Hash != h1.Hash || !AppSecretMatches(app, secret1) {
			t.Errorf("AppByClientID = %+v", app)
		}
		if pub := app.Public(); pub.Secrets[0].Hash != "" || AppSecretMatches(pub, secret1) || app.Secrets[0].Hash == "" {
			t.Errorf("Public() = %+v must hide hashes and leave the app alone", pub)
		}
		if !app.Confidential() {
			t.Error("a web app is confidential")
		}
		if got := must[App](t, "AppByName")(s.AppByName("acme", "Portal")); got.ID != "a1" {
			t.Errorf("AppByName = %+v", got)
		}

		for _, c := range []struct {
			name string
			code string
			op   Op
		}{
			{"same client_id", CodeConflict, appCreate("acme", "a2", "Other", "portal")},
			{"same name", CodeConflict, appCreate("acme", "a2", "Portal", "other")},
			{"same id", CodeConflict, appCreate("acme", "a1", "Other", "other")},
			{"no client_id", CodeInvalid, appCreate("acme", "a2", "Other", "")},
			{"bad type", CodeInvalid, MakeOp(OpAppCreate, App{ID: "a2", Tenant: "acme", Name: "n", ClientID: "c", Type: "desktop"})},
			{"unknown tenant", CodeNotFound, appCreate("nope", "a2", "Other", "other")},
			{"update unknown", CodeNotFound, MakeOp(OpAppUpdate, AppPatch{Tenant: "acme", ID: "a9", Name: ptr("x")})},
			{"delete unknown", CodeNotFound, ref(OpAppDelete, "acme", "a9")},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				f.refused(c.code, c.op)
			})
		}
		f.t = t
		// client_id is unique per tenant only.
		f.ok(appCreate("beta", "a1", "Portal", "portal"))
		if got := must[App](t, "AppByClientID")(s.AppByClientID("beta", "portal")); got.Tenant != "beta" || len(got.Secrets) != 0 {
			t.Errorf("beta's app = %+v", got)
		}
		f.ok(appCreate("acme", "a2", "Shop", "shop"))

		h2 := SecretHash{Hash: HashClientSecret(secret2), CreatedAt: t0.Add(1)}
		res = f.ok(MakeOp(OpAppUpdate, AppPatch{Tenant: "acme", ID: "a1", Name: ptr("Portal 2"),
			RedirectURIs: &[]string{"https://x.example/cb"}, Secrets: &[]SecretHash{h1, h2}, AccessTokenTTL: ptr(Duration(3e11))}))
		if out := output[App](t, res, 0); len(out.Secrets) != 2 || out.Secrets[0].Hash != "" || out.Secrets[1].Hash != "" {
			t.Errorf("app.update output must hide secret hashes: %+v", out.Secrets)
		}
		app = must[App](t, "App")(s.App("acme", "a1"))
		if app.Name != "Portal 2" || !slices.Equal(app.RedirectURIs, []string{"https://x.example/cb"}) || app.ClientID != "portal" ||
			app.AccessTokenTTL != Duration(3e11) || !AppSecretMatches(app, secret1) || !AppSecretMatches(app, secret2) {
			t.Errorf("updated app = %+v", app)
		}
		wantNotFound(t, "old name", func() error { _, err := s.AppByName("acme", "Portal"); return err }())
		f.refused(CodeConflict, MakeOp(OpAppUpdate, AppPatch{Tenant: "acme", ID: "a1", Name: ptr("Shop")}))

		f.ok(ref(OpAppDelete, "acme", "a1"))
		wantNotFound(t, "AppByClientID", func() error { _, err := s.AppByClientID("acme", "portal"); return err }())
		wantNotFound(t, "App", func() error { _, err := s.App("acme", "a1"); return err }())
		f.ok(appCreate("acme", "a3", "Portal 2", "portal")) // name and client_id freed
		if apps := must[[]App](t, "Apps")(s.Apps("acme")); len(apps) != 2 {
			t.Errorf("Apps = %+v", apps)
		}
	})
}

func TestSigningKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		kek := testKEK(t)
		f.ok(tenantCreate("acme"))
		key, err := NewSigningKey(kek, "acme", "ES256", KeyNext)
		if err != nil {
			t.Fatal(err)
		}
		created := f.now()
		f.ok(MakeOp(OpKeyPut, key))

		// Promote it: the state change omits the private key, which must be kept.
		promoted := key
		promoted.Private, promoted.State = nil, KeyActive
		f.ok(MakeOp(OpKeyPut, promoted))
		keys := must[[]SigningKey](t, "SigningKeys")(s.SigningKeys("acme"))
		if len(keys) != 1 || keys[0].State != KeyActive || !keys[0].CreatedAt.Equal(created) {
			t.Fatalf("SigningKeys = %+v", keys)
		}
		if string(keys[0].Private) != string(key.Private) {
			t.Fatal("a key.put without a private key dropped the sealed private key")
		}
		if _, err := OpenSigningKey(kek, keys[0]); err != nil {
			t.Errorf("OpenSigningKey after promotion: %v", err)
		}

		for _, c := range []struct {
			name string
			code string
			k    SigningKey
		}{
			{"bad state", CodeInvalid, SigningKey{ID: "k2", Tenant: "acme", Alg: "ES256", Public: []byte{1}, State: "current"}},
			{"no public key", CodeInvalid, SigningKey{ID: "k2", Tenant: "acme", Alg: "ES256", State: KeyNext}},
			{"no kid", CodeInvalid, SigningKey{Tenant: "acme", Alg: "ES256", Public: []byte{1}, State: KeyNext}},
			{"unknown tenant", CodeNotFound, SigningKey{ID: "k2", Tenant: "nope", Alg: "ES256", Public: []byte{1}, State: KeyNext}},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				f.refused(c.code, MakeOp(OpKeyPut, c.k))
			})
		}
		f.t = t
		f.ok(ref(OpKeyDelete, "acme", key.ID))
		if keys := must[[]SigningKey](t, "SigningKeys")(s.SigningKeys("acme")); len(keys) != 0 {
			t.Errorf("after delete, SigningKeys = %+v", keys)
		}
		f.refused(CodeNotFound, ref(OpKeyDelete, "acme", key.ID))
	})
}

func TestRoutes(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), tenantCreate("beta"))
		f.ok(routePut("acme", "app.acme.example"))

		for _, host := range []string{"app.acme.example", "APP.Acme.Example"} {
			if rt, err := s.RouteByHost(host); err != nil || rt.Tenant != "acme" || rt.Upstream != "http://10.0.0.1:8080" {
				t.Errorf("RouteByHost(%q) = %+v, %v", host, rt, err)
			}
		}
		f.refused(CodeConflict, routePut("beta", "app.acme.example"))
		f.refused(CodeConflict, routePut("beta", "App.Acme.Example")) // hosts are case-insensitive
		f.refused(CodeInvalid, MakeOp(OpRoutePut, Route{Tenant: "acme", Host: "x.example"}))
		f.refused(CodeNotFound, routePut("nope", "x.example"))
		f.refused(CodeNotFound, MakeOp(OpRouteDelete, HostRef{Tenant: "beta", Host: "app.acme.example"}))

		// The owner may change its route.
		up := Route{Tenant: "acme", Host: "app.acme.example", Upstream: "http://10.0.0.2:80", Allow: Allow{Groups: []string{"staff"}}}
		f.ok(MakeOp(OpRoutePut, up))
		if rt := must[Route](t, "RouteByHost")(s.RouteByHost("app.acme.example")); rt.Upstream != up.Upstream || !slices.Equal(rt.Allow.Groups, []string{"staff"}) {
			t.Errorf("updated route = %+v", rt)
		}
		// A host given in upper case is stored in lower case, so RouteByHost finds it.
		f.ok(routePut("beta", "WWW.Beta.Example"))
		if rt, err := s.RouteByHost("www.beta.example"); err != nil || rt.Tenant != "beta" || rt.Host != "www.beta.example" {
			t.Errorf("RouteByHost(www.beta.example) = %+v, %v", rt, err)
		}
		if rs := must[[]Route](t, "Routes")(s.Routes("acme")); len(rs) != 1 {
			t.Errorf("Routes(acme) = %+v", rs)
		}

		f.ok(MakeOp(OpRouteDelete, HostRef{Tenant: "acme", Host: "APP.acme.example"}))
		wantNotFound(t, "RouteByHost after delete", func() error { _, err := s.RouteByHost("app.acme.example"); return err }())
		f.ok(routePut("beta", "app.acme.example")) // the host is free for anyone now
	})
}

func TestExtensions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), tenantCreate("beta"))
		wasm := []byte("\x00asm\x01\x00\x00\x00 module one")
		sum := SHA256Hex(wasm)
		ext := Extension{ID: "e1", Tenant: "acme", Events: []string{"OnTokenIssuanceStart"}, WasmSHA256: sum, Timeout: Duration(5e7)}

		for _, c := range []struct {
			name string
			put  ExtensionPut
		}{
			{"hash mismatch", ExtensionPut{Extension: ext, Wasm: append([]byte{}, append(wasm, '!')...)}},
			{"blob not stored yet", ExtensionPut{Extension: ext}},
			{"no events", ExtensionPut{Extension: Extension{ID: "e1", Tenant: "acme", WasmSHA256: sum}, Wasm: wasm}},
			{"wasm and url", ExtensionPut{Extension: Extension{ID: "e1", Tenant: "acme", Events: []string{"x"}, WasmSHA256: sum, URL: "https://x"}, Wasm: wasm}},
			{"neither wasm nor url", ExtensionPut{Extension: Extension{ID: "e1", Tenant: "acme", Events: []string{"x"}}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				f.refused(CodeInvalid, MakeOp(OpExtensionPut, c.put))
			})
		}
		f.t = t
		wantNotFound(t, "Blob after refused puts", func() error { _, err := s.Blob("acme", sum); return err }())

		res := f.ok(MakeOp(OpExtensionPut, ExtensionPut{Extension: ext, Wasm: wasm}))
		if out := output[Extension](t, res, 0); out.Version != 1 || out.WasmSize != int64(len(wasm)) {
			t.Errorf("first put output = %+v", out)
		}
		if b := must[[]byte](t, "Blob")(s.Blob("acme", sum)); string(b) != string(wasm) {
			t.Errorf("Blob = %q", b)
		}
		wantNotFound(t, "Blob of another tenant", func() error { _, err := s.Blob("beta", sum); return err }())

		// A second put without the module reuses the stored blob and bumps the version.
		ext.Config = map[string]string{"k": "v"}
		f.ok(MakeOp(OpExtensionPut, ExtensionPut{Extension: ext}))
		exts := must[[]Extension](t, "Extensions")(s.Extensions("acme"))
		if len(exts) != 1 || exts[0].Version != 2 || exts[0].WasmSize != int64(len(wasm)) || exts[0].Config["k"] != "v" {
			t.Errorf("after second put: %+v", exts)
		}
		// beta cannot reference acme's blob without sending it.
		f.refused(CodeInvalid, MakeOp(OpExtensionPut, ExtensionPut{Extension: Extension{ID: "e1", Tenant: "beta", Events: []string{"x"}, WasmSHA256: sum}}))

		f.ok(MakeOp(OpExtensionPut, ExtensionPut{Extension: Extension{ID: "e1", Tenant: "acme", Events: []string{"x"}, URL: "https://hooks.example"}}))
		exts = must[[]Extension](t, "Extensions")(s.Extensions("acme"))
		if exts[0].Version != 3 || exts[0].URL != "https://hooks.example" || exts[0].WasmSize != 0 {
			t.Errorf("after third put: %+v", exts[0])
		}
		f.ok(ref(OpExtensionDelete, "acme", "e1"))
		if exts := must[[]Extension](t, "Extensions")(s.Extensions("acme")); len(exts) != 0 {
			t.Errorf("after delete: %+v", exts)
		}
		f.refused(CodeNotFound, ref(OpExtensionDelete, "acme", "e1"))
	})
}

func TestIdentityProviders(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"))
		f.ok(MakeOp(OpIdPPut, IdentityProvider{ID: "google", Tenant: "acme", Type: "oidc", ClientSecret: Sealed("sealed")}))
		if ps := must[[]IdentityProvider](t, "IdentityProviders")(s.IdentityProviders("acme")); len(ps) != 1 || string(ps[0].ClientSecret) != "sealed" {
			t.Errorf("IdentityProviders = %+v", ps)
		}
		f.refused(CodeInvalid, MakeOp(OpIdPPut, IdentityProvider{ID: "x", Tenant: "acme"}))
		f.ok(ref(OpIdPDelete, "acme", "google"))
		f.refused(CodeNotFound, ref(OpIdPDelete, "acme", "google"))
	})
}

func TestSessionsAndRefreshFamilies(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), tenantCreate("beta"))
		f.ok(MakeOp(OpSessionPut, Session{ID: "s1", Tenant: "acme", UserID: "u1", AMR: []string{"pwd"}, ExpiresAt: t0.Add(3600e9)}),
			MakeOp(OpRefreshPut, RefreshFamily{ID: "r1", Tenant: "acme", UserID: "u1", ClientID: "c1", Current: "h1", Generation: 1}))

		if ss := must[Session](t, "Session")(s.Session("acme", "s1")); ss.UserID != "u1" || !ss.RevokedAt.IsZero() || !ss.ExpiresAt.Equal(t0.Add(3600e9)) {
			t.Errorf("Session = %+v", ss)
		}
		// Rotation replaces the family record.
		f.ok(MakeOp(OpRefreshPut, RefreshFamily{ID: "r1", Tenant: "acme", UserID: "u1", ClientID: "c1", Current: "h2", Generation: 2}))
		if rf := must[RefreshFamily](t, "RefreshFamily")(s.RefreshFamily("acme", "r1")); rf.Current != "h2" || rf.Generation != 2 {
			t.Errorf("RefreshFamily = %+v", rf)
		}

		revoked := f.now()
		f.ok(ref(OpSessionRevoke, "acme", "s1"), ref(OpRefreshRevoke, "acme", "r1"))
		f.ok(ref(OpSessionRevoke, "acme", "s1"), ref(OpRefreshRevoke, "acme", "r1")) // again: the first time stands
		if ss := must[Session](t, "Session")(s.Session("acme", "s1")); !ss.RevokedAt.Equal(revoked) {
			t.Errorf("session RevokedAt = %v, want %v", ss.RevokedAt, revoked)
		}
		if rf := must[RefreshFamily](t, "RefreshFamily")(s.RefreshFamily("acme", "r1")); !rf.RevokedAt.Equal(revoked) {
			t.Errorf("refresh RevokedAt = %v, want %v", rf.RevokedAt, revoked)
		}

		for _, c := range []struct {
			name string
			code string
			op   Op
		}{
			{"session without user", CodeInvalid, MakeOp(OpSessionPut, Session{ID: "s2", Tenant: "acme"})},
			{"session in unknown tenant", CodeNotFound, MakeOp(OpSessionPut, Session{ID: "s2", Tenant: "nope", UserID: "u"})},
			{"refresh without client", CodeInvalid, MakeOp(OpRefreshPut, RefreshFamily{ID: "r2", Tenant: "acme"})},
			{"revoke unknown session", CodeNotFound, ref(OpSessionRevoke, "acme", "s9")},
			{"revoke unknown family", CodeNotFound, ref(OpRefreshRevoke, "acme", "r9")},
			{"revoke another tenant's session", CodeNotFound, ref(OpSessionRevoke, "beta", "s1")},
			{"revoke another tenant's family", CodeNotFound, ref(OpRefreshRevoke, "beta", "r1")},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				f.refused(c.code, c.op)
			})
		}
	})
}

func TestNodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		joined := f.now()
		f.ok(MakeOp(OpNodePut, Node{ID: "n1", RaftAddr: "10.0.0.1:7000", Region: "eu", Suffrage: "voter"}),
			MakeOp(OpNodePut, Node{ID: "n2", RaftAddr: "10.0.0.2:7000", Suffrage: "nonvoter"}))
		f.ok(MakeOp(OpNodePut, Node{ID: "n1", RaftAddr: "10.0.0.9:7000", Region: "us", Suffrage: "voter"}))
		ns := must[[]Node](t, "Nodes")(s.Nodes())
		if len(ns) != 2 || ns[0].RaftAddr != "10.0.0.9:7000" || ns[0].Region != "us" || !ns[0].JoinedAt.Equal(joined) {
			t.Errorf("Nodes = %+v", ns)
		}
		f.refused(CodeInvalid, MakeOp(OpNodePut, Node{ID: "n3"}))
		f.ok(ref(OpNodeDelete, "", "n2"))
		if ns := must[[]Node](t, "Nodes")(s.Nodes()); len(ns) != 1 || ns[0].ID != "n1" {
			t.Errorf("Nodes after delete = %+v", ns)
		}
	})
}

func TestCommandAtomicity(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), userCreate("acme", "u1", "taken@example.com"), groupCreate("acme", "g1", "staff"))

		cases := []struct {
			name string
			code string
			ops  []Op
		}{
			{"second op conflicts", CodeConflict, []Op{
				userCreate("acme", "u2", "fresh@example.com"),
				userCreate("acme", "u3", "Taken@example.com"),
			}},
			{"second op conflicts with the first", CodeConflict, []Op{
				userCreate("acme", "u2", "fresh@example.com"),
				userCreate("acme", "u3", "FRESH@example.com"),
			}},
			{"tenant, then unknown op", CodeInvalid, []Op{
				tenantCreate("beta"),
				{Kind: "tenant.explode", Body: json.RawMessage(`{}`)},
			}},
			{"update then delete of missing", CodeNotFound, []Op{
				MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "u1", Email: ptr("moved@example.com")}),
				memberAdd("acme", "g1", "u1"),
				ref(OpUserDelete, "acme", "u9"),
			}},
			{"tenant delete then malformed op", CodeInvalid, []Op{
				ref(OpTenantDelete, "", "acme"),
				{Kind: OpUserCreate, Body: json.RawMessage(`{"id": 7}`)},
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				e := f.refused(c.code, c.ops...)
				if !strings.Contains(e.Message, "operation") {
					t.Errorf("a multi-op refusal should name the failing operation: %q", e.Message)
				}
			})
		}
		f.t = t
		wantNotFound(t, "u2", func() error { _, err := s.User("acme", "u2"); return err }())
		wantNotFound(t, "beta", func() error { _, err := s.Tenant("beta"); return err }())
		if u := must[User](t, "UserByEmail")(s.UserByEmail("acme", "taken@example.com")); u.ID != "u1" {
			t.Errorf("u1 moved: %+v", u)
		}
		// And the same ops that succeed together all land.
		res := f.ok(userCreate("acme", "u2", "fresh@example.com"), memberAdd("acme", "g1", "u2"), tenantCreate("beta"))
		if len(res.Changes) != 3 {
			t.Errorf("changes = %+v", res.Changes)
		}
	})
}

func TestMalformedCommands(t *testing.T) {
	valid := func(ops ...Op) []byte {
		b, _ := NewCommand(t0, "x", ops...).Encode()
		return b
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"unknown op kind", valid(Op{Kind: "user.teleport", Body: json.RawMessage(`{}`)})},
		{"empty op kind", valid(Op{Kind: "", Body: json.RawMessage(`{}`)})},
		{"body is a string", valid(Op{Kind: OpTenantCreate, Body: json.RawMessage(`"acme"`)})},
		{"body is an array", valid(Op{Kind: OpUserCreate, Body: json.RawMessage(`[1,2]`)})},
		{"body has a wrong type", valid(Op{Kind: OpUserCreate, Body: json.RawMessage(`{"id": 5, "tenant": "acme"}`)})},
		{"body has an unknown field", valid(Op{Kind: OpTenantCreate, Body: json.RawMessage(`{"id": "beta", "color": "red"}`)})},
		{"body is null", valid(Op{Kind: OpTenantCreate, Body: json.RawMessage(`null`)})},
		{"no ops", valid()},
		{"not json", []byte("this is not a command")},
		{"empty", nil},
		{"truncated json", valid(tenantCreate("beta"))[:20]},
		{"ops is not a list", []byte(`{"time": "2030-01-01T00:00:00Z", "ops": {"kind": "tenant.create"}}`)},
	}
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), userCreate("acme", "u1", "one@example.com"))
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				f.refusedRaw(CodeInvalid, c.data)
			})
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), tenantCreate("beta"),
			MakeOp(OpUserCreate, User{ID: "ub", Tenant: "beta", Email: "b@example.com", Username: "bee"}),
			groupCreate("beta", "gb", "staff"), appCreate("beta", "ab", "App", "cb"),
			MakeOp(OpSessionPut, Session{ID: "sb", Tenant: "beta", UserID: "ub"}),
			MakeOp(OpRefreshPut, RefreshFamily{ID: "rb", Tenant: "beta", ClientID: "cb"}),
			groupCreate("acme", "ga", "staff"), userCreate("acme", "ua", "a@example.com"),
			userCreate("acme", "tenant", "t@example.com"))

		reads := map[string]func() error{
			"User":           func() error { _, err := s.User("acme", "ub"); return err },
			"UserByEmail":    func() error { _, err := s.UserByEmail("acme", "b@example.com"); return err },
			"UserByUsername": func() error { _, err := s.UserByUsername("acme", "bee"); return err },
			"Group":          func() error { _, err := s.Group("acme", "gb"); return err },
			"App":            func() error { _, err := s.App("acme", "ab"); return err },
			"AppByClientID":  func() error { _, err := s.AppByClientID("acme", "cb"); return err },
			"Session":        func() error { _, err := s.Session("acme", "sb"); return err },
			"RefreshFamily":  func() error { _, err := s.RefreshFamily("acme", "rb"); return err },
			"Tenant":         func() error { _, err := s.Tenant("gamma"); return err },
		}
		for name, read := range reads {
			wantNotFound(t, name+" across tenants", read())
		}
		if us := must[[]User](t, "Users")(s.Users("acme", "", 0)); len(us) != 2 || us[1].ID != "ua" {
			t.Errorf("Users(acme) = %+v", us)
		}

		for _, c := range []struct {
			name string
			op   Op
		}{
			{"update", MakeOp(OpUserUpdate, UserPatch{Tenant: "acme", ID: "ub", Blocked: ptr(true)})},
			{"delete", ref(OpUserDelete, "acme", "ub")},
			{"member add of another tenant's user", memberAdd("acme", "ga", "ub")},
			{"member add to another tenant's group", memberAdd("acme", "gb", "ua")},
			{"app delete", ref(OpAppDelete, "acme", "ab")},
			// A tenant id with a '/' must not reach into another tenant's keys: "t/acme/user/" + "tenant"
			// is the key of acme's user "tenant".
			{"tenant id that is a key path", userCreate("acme/user", "x", "x@example.com")},
			{"tenant id that is a key path, group", groupCreate("acme/user", "x", "x")},
			{"tenant id that is a key path, key", MakeOp(OpKeyPut, SigningKey{ID: "k", Tenant: "acme/user", Alg: "ES256", Public: []byte{1}, State: KeyActive})},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				f.refused(CodeNotFound, c.op)
			})
		}
	})
}

func TestUsersPaging(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		ops := []Op{tenantCreate("acme"), tenantCreate("acme-x")}
		for _, id := range []string{"u5", "u1", "u3", "u2", "u4"} {
			ops = append(ops, userCreate("acme", id, id+"@example.com"))
		}
		ops = append(ops, userCreate("acme-x", "u0", "x@example.com"))
		f.ok(ops...)
		ids := func(us []User) []string {
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out
		}
		for _, c := range []struct {
			after string
			limit int
			want  []string
		}{
			{"", 0, []string{"u1", "u2", "u3", "u4", "u5"}},
			{"", 2, []string{"u1", "u2"}},
			{"u2", 2, []string{"u3", "u4"}},
			{"u4", 0, []string{"u5"}},
			{"u5", 0, nil},
		} {
			got := ids(must[[]User](t, "Users")(s.Users("acme", c.after, c.limit)))
			if !slices.Equal(got, c.want) {
				t.Errorf("Users(after %q, limit %d) = %v, want %v", c.after, c.limit, got, c.want)
			}
		}
	})
}

func TestErrors(t *testing.T) {
	err := conflict("email %q is taken", "x")
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
		t.Error("errors.Is must match by code")
	}
	if e, ok := AsError(errors.Join(errors.New("wrapped"), err)); !ok || e.Code != CodeConflict {
		t.Errorf("AsError through a wrap = %v, %v", e, ok)
	}
	if _, ok := AsError(errors.New("plain")); ok {
		t.Error("AsError of a plain error")
	}
	b, _ := json.Marshal(err)
	if string(b) != `{"code":"conflict","message":"email \"x\" is taken"}` {
		t.Errorf("an Error crosses the network as %s", b)
	}
}
