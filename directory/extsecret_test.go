package directory

import (
	"bytes"
	"encoding/base64"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"postern.dev/postern/directory/manifest"
)

// secretsManifest declares tenant acme with one Wasm extension holding secrets.
func secretsManifest(secrets map[string]string) *manifest.Manifest {
	mod := []byte("\x00asm\x01\x00\x00\x00")
	return &manifest.Manifest{Tenant: "acme", Extensions: []manifest.Extension{{ID: "loyalty",
		Wasm: WasmDataURLPrefix + base64.StdEncoding.EncodeToString(mod), Events: []string{manifest.EventAttributeCollectionSubmit},
		Config: map[string]string{"service_url": "https://loyalty.example/check"}, Secrets: secrets}}}
}

// TestPlanExtensionSecrets applies manifests one after another and checks what each plan changes and
// what the directory then holds: secrets sealed and bound to their place, an unchanged value kept as it
// was sealed (so an apply of the same manifest is empty), and the plaintext nowhere in the directory.
func TestPlanExtensionSecrets(t *testing.T) {
	kek := testKEK(t)
	s := openMemoryStore(t)
	f := newFixture(t, s)
	const (
		key1 = "sk_live_first_0c6f2d7a9e41b8"
		key2 = "sk_live_second_7d3a90be2c15f4"
		hook = "whsec_9a8b7c6d5e4f3a2b1c"
	)
	var commands [][]byte // every command applied, as the raft log would hold it
	steps := []struct {
		name    string
		secrets map[string]string
		changes []string // the plan's; nil: nothing to do
		want    map[string]string
	}{
		{"create with secrets", map[string]string{"api_key": key1, "WEBHOOK_SECRET": hook},
			[]string{"create tenant acme", "create extension loyalty"}, map[string]string{"api_key": key1, "WEBHOOK_SECRET": hook}},
		{"the same again", map[string]string{"api_key": key1, "WEBHOOK_SECRET": hook}, nil, nil},
		{"one value changed", map[string]string{"api_key": key2, "WEBHOOK_SECRET": hook},
			[]string{"update extension loyalty"}, map[string]string{"api_key": key2, "WEBHOOK_SECRET": hook}},
		{"the changed value again", map[string]string{"api_key": key2, "WEBHOOK_SECRET": hook}, nil, nil},
		{"one left out", map[string]string{"api_key": key2}, []string{"update extension loyalty"}, map[string]string{"api_key": key2}},
		{"all left out", nil, []string{"update extension loyalty"}, map[string]string{}},
		{"none again", nil, nil, nil},
		{"back", map[string]string{"api_key": key1}, []string{"update extension loyalty"}, map[string]string{"api_key": key1}},
	}
	var before Extension
	for _, st := range steps {
		m := secretsManifest(st.secrets)
		if err := m.Validate(); err != nil {
			t.Fatalf("%s: the manifest is invalid: %v", st.name, err)
		}
		p, err := PlanManifest(s, m, kek)
		if err != nil {
			t.Fatalf("%s: PlanManifest: %v", st.name, err)
		}
		var changes []string
		for _, c := range p.Changes {
			if !strings.HasPrefix(c, "create signing key ") {
				changes = append(changes, c)
			}
		}
		if !slices.Equal(changes, st.changes) {
			t.Fatalf("%s: changes %q, want %q", st.name, changes, st.changes)
		}
		if len(p.Ops) == 0 {
			continue
		}
		cmd, err := NewCommand(f.now(), "tester", p.Ops...).Encode()
		if err != nil {
			t.Fatal(err)
		}
		commands = append(commands, cmd)
		if _, err := f.applyRaw(cmd); err != nil {
			t.Fatalf("%s: applying the plan: %v", st.name, err)
		}
		exts, err := s.Extensions("acme")
		if err != nil || len(exts) != 1 {
			t.Fatalf("%s: extensions %+v, %v", st.name, exts, err)
		}
		x := exts[0]
		if got, want := x.SecretNames(), slices.Sorted(maps.Keys(st.want)); !slices.Equal(got, want) {
			t.Errorf("%s: secret names %q, want %q", st.name, got, want)
		}
		for name, value := range st.want {
			got, ok, err := kek.ExtensionSecret(x, name)
			if err != nil || !ok || string(got) != value {
				t.Errorf("%s: secret %s opens to %q, %v, %v; want %q", st.name, name, got, ok, err, value)
			}
			// A value the step did not change is the same sealed bytes as before.
			if prev, had := before.Secrets[name]; had {
				if old, _, _ := kek.ExtensionSecret(before, name); string(old) == value && !bytes.Equal(prev, x.Secrets[name]) {
					t.Errorf("%s: the unchanged secret %s was sealed again", st.name, name)
				}
			}
		}
		if _, ok, err := kek.ExtensionSecret(x, "missing"); ok || err != nil {
			t.Errorf("%s: a secret that is not set: ok %v, err %v", st.name, ok, err)
		}
		before = x
	}

	// The plaintext is nowhere: not in the stored records, the snapshot stream, nor the commands.
	snap := snapshotBytes(t, s)
	places := map[string][]byte{"the snapshot stream": snap}
	for k, v := range dump(t, s) {
		places["the stored value of "+k] = []byte(v)
	}
	for i, c := range commands {
		places["command "+strconv.Itoa(i+1)] = c
	}
	for where, data := range places {
		for _, secret := range []string{key1, key2, hook} {
			for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret))} {
				if bytes.Contains(data, []byte(form)) {
					t.Errorf("%s holds a secret in the clear (%q)", where, form)
				}
			}
		}
	}
	// The control: the scan reads what is stored (the configuration is not secret).
	if !bytes.Contains(snap, []byte("https://loyalty.example/check")) {
		t.Error("the snapshot lacks the extension's configuration: the scan proves nothing")
	}
}

// A sealed secret opens only where it was sealed: copied to another name, extension or tenant, it is
// refused, and the error does not carry the value.
func TestExtensionSecretBoundToItsPlace(t *testing.T) {
	kek := testKEK(t)
	const value = "sk_live_bound_4f1e2d3c"
	sealed, err := SealExtensionSecrets(kek, "acme", "loyalty", map[string]string{"api_key": value}, nil)
	if err != nil {
		t.Fatal(err)
	}
	home := Extension{ID: "loyalty", Tenant: "acme", Secrets: sealed}
	if v, ok, err := kek.ExtensionSecret(home, "api_key"); err != nil || !ok || string(v) != value {
		t.Fatalf("at home: %q, %v, %v", v, ok, err)
	}
	for _, tc := range []struct {
		name, tenant, ext, secret string
	}{
		{"another name", "acme", "loyalty", "other_key"},
		{"another extension", "acme", "claims", "api_key"},
		{"another tenant", "beta", "loyalty", "api_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := Extension{ID: tc.ext, Tenant: tc.tenant, Secrets: map[string]Sealed{tc.secret: sealed["api_key"]}}
			v, ok, err := kek.ExtensionSecret(x, tc.secret)
			if err == nil || ok || v != nil {
				t.Fatalf("opened: %q, %v, %v", v, ok, err)
			}
			if strings.Contains(err.Error(), value) || !strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q: want the secret's name, not its value", err)
			}
		})
	}
	if _, err := SealExtensionSecrets(nil, "acme", "loyalty", map[string]string{"api_key": value}, nil); err == nil {
		t.Error("sealing without a KEK succeeded")
	}
	if got, err := SealExtensionSecrets(nil, "acme", "loyalty", nil, sealed); got != nil || err != nil {
		t.Errorf("no secrets: %v, %v; want nil, nil", got, err)
	}
	pub := home.Public()
	if pub.Secrets != nil || home.Secrets == nil {
		t.Error("Public kept the sealed secrets, or changed the record it was called on")
	}
}
