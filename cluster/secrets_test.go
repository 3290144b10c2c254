package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"postern.dev/postern/directory"
)

// TestNoSecretPlaintextAtRest writes a signing key and a TOTP seed through raft on a node with everything
// on disk (raft log, raft snapshot, Badger), then scans every file of its data directory: the secrets
// must appear nowhere, in no encoding, while non-secret data of the same commands does.
func TestNoSecretPlaintextAtRest(t *testing.T) {
	data := t.TempDir()
	st, err := directory.Open(filepath.Join(data, "directory"), directory.Options{SmallMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(Config{ID: "n1", DataDir: data, Voter: true, Bootstrap: true, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10e9, "a leader", n.IsLeader)
	keyBytes := make([]byte, 32)
	rand.Read(keyBytes)
	kek, _ := directory.NewKEK(keyBytes)

	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	sealedKey, _ := kek.Seal(der, directory.SigningKeyContext("acme", "k1"))
	seed := make([]byte, 20)
	rand.Read(seed)
	sealedSeed, _ := kek.Seal(seed, directory.CredentialContext("acme", "u1", "totp1"))
	marker := "control-" + hex.EncodeToString(seed[:4]) + "@example.com" // not secret: must be found

	_, err = n.Propose(ctxT(t), cmd(
		tenantOp("acme"),
		directory.MakeOp(directory.OpKeyPut, directory.SigningKey{ID: "k1", Tenant: "acme", Alg: "ES256", Private: sealedKey, Public: pub, State: directory.KeyActive}),
		userOp("acme", "u1", marker),
		directory.MakeOp(directory.OpCredentialPut, directory.CredentialPut{Tenant: "acme", UserID: "u1",
			Credential: directory.Credential{ID: "totp1", Type: "totp", Secret: sealedSeed}}),
	))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Snapshot(); err != nil {
		t.Fatalf("taking a raft snapshot: %v", err)
	}
	n.Close()
	st.Close()

	scalar, err := priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string][]byte{
		"private key DER":    der,
		"private scalar":     scalar,
		"TOTP seed":          seed,
		"TOTP seed base32":   []byte(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)),
		"TOTP seed base64":   []byte(base64.StdEncoding.EncodeToString(seed)),
		"TOTP seed hex":      []byte(hex.EncodeToString(seed)),
		"private key base64": []byte(base64.StdEncoding.EncodeToString(der))[:24],
		"KEK":                keyBytes,
	}
	for i := 0; i+16 <= len(der); i += 4 {
		forbidden["DER window "+itoa(uint64(i))] = der[i : i+16]
	}
	markerSeen := false
	files := 0
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for name, secret := range forbidden {
			if bytes.Contains(b, secret) {
				t.Errorf("%s found in %s", name, path)
			}
		}
		markerSeen = markerSeen || bytes.Contains(b, []byte(marker))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !markerSeen {
		t.Fatalf("the control value was not found in any of %d files: the scan does not read the data", files)
	}
}
