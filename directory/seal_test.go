package directory

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestKEKSealOpen(t *testing.T) {
	kek := testKEK(t)
	other, err := NewKEK(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a TOTP seed or a private key")
	ctx := CredentialContext("acme", "u1", "c1")
	sealed, err := kek.Seal(secret, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed value contains the plaintext")
	}
	if sealed[0] != sealVersion {
		t.Errorf("sealed value starts with %d, want the format version %d", sealed[0], sealVersion)
	}
	got, err := kek.Open(sealed, ctx)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := kek.Seal(secret, ctx)
	if bytes.Equal(again, sealed) {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	if empty, err := kek.Seal(nil, ctx); err != nil {
		t.Error(err)
	} else if p, err := kek.Open(empty, ctx); err != nil || len(p) != 0 {
		t.Errorf("empty secret round trip = %q, %v", p, err)
	}

	flip := func(i int) Sealed {
		c := bytes.Clone(sealed)
		c[i] ^= 1
		return c
	}
	failures := []struct {
		name    string
		kek     *KEK
		sealed  Sealed
		context string
	}{
		{"another context: other credential", kek, sealed, CredentialContext("acme", "u1", "c2")},
		{"another context: other tenant", kek, sealed, CredentialContext("beta", "u1", "c1")},
		{"another context: other kind", kek, sealed, SigningKeyContext("acme", "u1/c1")},
		{"empty context", kek, sealed, ""},
		{"another KEK", other, sealed, ctx},
		{"version byte changed", kek, flip(0), ctx},
		{"nonce changed", kek, flip(3), ctx},
		{"ciphertext changed", kek, flip(len(sealed) - 20), ctx},
		{"tag changed", kek, flip(len(sealed) - 1), ctx},
		{"truncated", kek, sealed[:len(sealed)-1], ctx},
		{"too short", kek, sealed[:10], ctx},
		{"empty", kek, nil, ctx},
	}
	for _, f := range failures {
		if p, err := f.kek.Open(f.sealed, f.context); err == nil {
			t.Errorf("%s: Open succeeded with %q", f.name, p)
		}
	}
	// Seal contexts of different records never collide.
	ctxs := map[string]bool{}
	for _, c := range []string{SigningKeyContext("acme", "k1"), SigningKeyContext("beta", "k1"), CredentialContext("acme", "k1", "c"),
		IdPSecretContext("acme", "k1"), IdPSecretContext("acme", "k2")} {
		if ctxs[c] {
			t.Errorf("context %q is used twice", c)
		}
		ctxs[c] = true
	}
}

func TestNewKEKAndParseKEK(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKEK(make([]byte, n)); err == nil {
			t.Errorf("NewKEK accepted %d bytes", n)
		}
	}
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(0xf0 + i) // bytes whose base64 uses '+' '/' or '-' '_'
	}
	ref, err := NewKEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := ref.Seal([]byte("x"), "c")
	for name, text := range map[string]string{
		"std":             base64.StdEncoding.EncodeToString(raw),
		"raw std":         base64.RawStdEncoding.EncodeToString(raw),
		"url":             base64.URLEncoding.EncodeToString(raw),
		"raw url":         base64.RawURLEncoding.EncodeToString(raw),
		"with whitespace": "  " + base64.StdEncoding.EncodeToString(raw) + "\r\n",
	} {
		k, err := ParseKEK(text)
		if err != nil {
			t.Errorf("ParseKEK(%s): %v", name, err)
			continue
		}
		if p, err := k.Open(sealed, "c"); err != nil || string(p) != "x" {
			t.Errorf("ParseKEK(%s) gives another key: %v", name, err)
		}
	}
	for name, text := range map[string]string{
		"empty":       "",
		"not base64":  "this is not a key!!",
		"16 bytes":    base64.StdEncoding.EncodeToString(raw[:16]),
		"33 bytes":    base64.StdEncoding.EncodeToString(append(raw, 1)),
		"hex":         strings.Repeat("ab", 32),
		"inner space": base64.StdEncoding.EncodeToString(raw)[:10] + " " + base64.StdEncoding.EncodeToString(raw)[10:],
	} {
		if _, err := ParseKEK(text); err == nil {
			t.Errorf("ParseKEK(%s) accepted %q", name, text)
		}
	}
}

func TestKEKFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	if err := GenerateKEKFile(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("KEK file mode = %v, want 0600", info.Mode().Perm())
	}
	content, _ := os.ReadFile(path)
	kek, err := LoadKEKFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := kek.Seal([]byte("secret"), "ctx")
	if p, err := kek.Open(sealed, "ctx"); err != nil || string(p) != "secret" {
		t.Errorf("loaded KEK round trip = %q, %v", p, err)
	}

	// It refuses to replace a key: the old key is what every sealed secret needs.
	if err := GenerateKEKFile(path); err == nil {
		t.Error("GenerateKEKFile replaced an existing file")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
		t.Error("a refused GenerateKEKFile changed the file")
	}
	// Two generated keys differ.
	path2 := filepath.Join(dir, "kek2")
	if err := GenerateKEKFile(path2); err != nil {
		t.Fatal(err)
	}
	kek2, err := LoadKEKFile(path2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kek2.Open(sealed, "ctx"); err == nil {
		t.Error("two generated KEKs open each other's secrets")
	}

	if _, err := LoadKEKFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadKEKFile of a missing file succeeded")
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	if _, err := LoadKEKFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadKEKFile of a bad file = %v, want an error naming the file", err)
	}
	if err := GenerateKEKFile(filepath.Join(dir, "no", "such", "dir", "kek")); err == nil {
		t.Error("GenerateKEKFile into a missing directory succeeded")
	}
}

func TestSigningKeys_SealedPrivateKey(t *testing.T) {
	kek := testKEK(t)
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			k, err := NewSigningKey(kek, "acme", alg, KeyNext)
			if err != nil {
				t.Fatal(err)
			}
			if k.ID == "" || k.Tenant != "acme" || k.Alg != alg || k.State != KeyNext || len(k.Public) == 0 {
				t.Fatalf("NewSigningKey = %+v", k)
			}
			signer, err := OpenSigningKey(kek, k)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := x509.ParsePKIXPublicKey(k.Public)
			if err != nil {
				t.Fatal(err)
			}
			if !publicEqual(signer.Public(), pub) {
				t.Error("the sealed private key does not match the public key")
			}
			der, _ := x509.MarshalPKCS8PrivateKey(signer)
			if bytes.Contains(k.Private, der[len(der)-16:]) {
				t.Error("the private key is stored in the clear")
			}

			// Copied to another tenant or kid, or opened with another KEK, it does not open.
			moved := k
			moved.Tenant = "beta"
			if _, err := OpenSigningKey(kek, moved); err == nil {
				t.Error("a key moved to another tenant opened")
			}
			moved = k
			moved.ID = "other"
			if _, err := OpenSigningKey(kek, moved); err == nil {
				t.Error("a key under another kid opened")
			}
			other, _ := NewKEK(bytes.Repeat([]byte{9}, 32))
			if _, err := OpenSigningKey(other, k); err == nil {
				t.Error("a key opened with another KEK")
			}
		})
	}
	if _, err := NewSigningKey(kek, "acme", "HS256", KeyNext); err == nil {
		t.Error("NewSigningKey accepted HS256")
	}
	// A sealed value that is not PKCS#8 is an error, not a panic.
	junk, _ := kek.Seal([]byte("not der"), SigningKeyContext("acme", "k1"))
	if _, err := OpenSigningKey(kek, SigningKey{ID: "k1", Tenant: "acme", Private: junk}); err == nil {
		t.Error("OpenSigningKey accepted junk")
	}
}

func publicEqual(a, b any) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// TestSecretsAtRest writes a sealed signing key and a sealed TOTP seed to a disk store, closes it, and
// scans every byte under the store's directory: no plaintext secret may appear, in any form.
func TestSecretsAtRest(t *testing.T) {
	dir := t.TempDir()
	kek := testKEK(t)
	s := openDiskStore(t, dir)
	f := newFixture(t, s)

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(priv.Public())
	sealedKey, err := kek.Seal(der, SigningKeyContext("acme", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 20)
	rand.Read(seed)
	sealedSeed, err := kek.Seal(seed, CredentialContext("acme", "u1", "totp1"))
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	idpSecret := []byte("idp-client-secret-" + base64.RawURLEncoding.EncodeToString(edPriv.Seed()))
	sealedIdP, _ := kek.Seal(idpSecret, IdPSecretContext("acme", "google"))

	// The control value. Badger compresses its tables (Snappy), so a value stored twice may come out with a
	// back-reference in the middle of its second copy, or even of the first one's tail; the random local part
	// cannot match anything before it, so it is stored literally at least once.
	marker := "scan-marker-" + NewID()
	email := marker + "@scan-control.example"
	f.ok(tenantCreate("acme"),
		MakeOp(OpKeyPut, SigningKey{ID: "k1", Tenant: "acme", Alg: "ES256", Private: sealedKey, Public: pub, State: KeyActive}),
		userCreate("acme", "u1", email),
		MakeOp(OpIdPPut, IdentityProvider{ID: "google", Tenant: "acme", Type: "oidc", ClientSecret: sealedIdP}))
	f.ok(MakeOp(OpCredentialPut, CredentialPut{Tenant: "acme", UserID: "u1",
		Credential: Credential{ID: "totp1", Type: "totp", Secret: sealedSeed}}))
	// A state change, as key rotation does; the store must still hold only the sealed key.
	f.ok(MakeOp(OpKeyPut, SigningKey{ID: "k1", Tenant: "acme", Alg: "ES256", Public: pub, State: KeyRetired}))
	snap := snapshotBytes(t, s)

	// The secrets are there, sealed: reading them back and opening them gives the originals.
	keys, _ := s.SigningKeys("acme")
	if got, err := kek.Open(keys[0].Private, SigningKeyContext("acme", "k1")); err != nil || !bytes.Equal(got, der) {
		t.Fatalf("the stored signing key does not open: %v", err)
	}
	u, _ := s.User("acme", "u1")
	if got, err := kek.Open(u.Credentials[0].Secret, CredentialContext("acme", "u1", "totp1")); err != nil || !bytes.Equal(got, seed) {
		t.Fatalf("the stored TOTP seed does not open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	scalar, err := priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string][]byte{
		"private key DER":         der,
		"private scalar":          scalar,
		"TOTP seed":               seed,
		"TOTP seed, base32":       []byte(b32),
		"TOTP seed, base32 lower": []byte(strings.ToLower(b32)),
		"TOTP seed, base64":       []byte(base64.StdEncoding.EncodeToString(seed)),
		"TOTP seed, hex":          []byte(hex.EncodeToString(seed)),
		"IdP client secret":       idpSecret,
		"private key DER, base64": []byte(base64.StdEncoding.EncodeToString(der)),
		"private scalar, base64":  []byte(base64.StdEncoding.EncodeToString(scalar)),
		"KEK":                     []byte("0123456789abcdef0123456789abcdef"),
	}
	// Every 16-byte window of the DER, the constant ASN.1 header and the embedded public point included:
	// the public key is stored as base64 text, so none of them may appear raw.
	for i := 0; i+16 <= len(der); i++ {
		forbidden["DER window at "+strconv.Itoa(i)] = der[i : i+16]
	}
	// Records are JSON, where bytes are base64 text: windows of that text too, since compression may split a
	// stored copy into pieces.
	for name, text := range map[string]string{
		"DER":  base64.StdEncoding.EncodeToString(der),
		"seed": base64.StdEncoding.EncodeToString(seed),
	} {
		for i := 0; i+16 <= len(text); i++ {
			forbidden[name+" base64 window at "+strconv.Itoa(i)] = []byte(text[i : i+16])
		}
	}

	var files, total int
	var sawEmail bool
	scan := func(name string, data []byte) {
		for what, secret := range forbidden {
			if bytes.Contains(data, secret) {
				t.Errorf("%s holds the %s in the clear", name, what)
			}
		}
		sawEmail = sawEmail || bytes.Contains(data, []byte(marker))
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		total += len(data)
		scan(path, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 || total == 0 {
		t.Fatal("the store directory is empty")
	}
	// The control: the scan does read the data (an unsealed value is found), so the absences above mean something.
	if !sawEmail {
		t.Fatalf("the user's email (%s) is in none of the %d files (%d bytes): the scan proves nothing", email, files, total)
	}
	// And a snapshot stream, which is what leaves the machine for backups and followers, holds no plaintext either.
	sawEmail = false
	scan("the snapshot stream", snap)
	if !sawEmail || !bytes.Contains(snap, []byte(email)) {
		t.Error("the snapshot stream lacks the user's email")
	}
}
