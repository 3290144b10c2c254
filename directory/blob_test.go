package directory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// A module can be bigger than a value of the in-memory store (1 MiB); the disk store's
// transactions are bounded: modules are stored in chunks and read back whole, and one over the limit is
// refused by Apply on every replica rather than failing the store.
func TestWasmModulesStoredInChunks(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(MakeOp(OpTenantCreate, Tenant{ID: "acme", DisplayName: "Acme"}))
		mod := make([]byte, 1<<20+100_000) // over the in-memory store's 1 MiB value limit, within a SmallMemory transaction
		copy(mod, "\x00asm\x01\x00\x00\x00")
		for i := 8; i < len(mod); i++ {
			mod[i] = byte(i * 31)
		}
		sum := sha256.Sum256(mod)
		sha := hex.EncodeToString(sum[:])
		f.ok(MakeOp(OpExtensionPut, ExtensionPut{Extension: Extension{ID: "big", Tenant: "acme", Events: []string{"OnTokenIssuanceStart"},
			WasmSHA256: sha}, Wasm: mod}))
		got, err := s.Blob("acme", sha)
		if err != nil || !bytes.Equal(got, mod) {
			t.Fatalf("Blob: %d bytes, err %v; want the %d stored", len(got), err, len(mod))
		}
		if _, err := s.Blob("beta", sha); err != ErrNotFound {
			t.Errorf("another tenant's Blob: %v, want ErrNotFound", err)
		}
		huge := make([]byte, MaxWasmModule+1)
		copy(huge, "\x00asm\x01\x00\x00\x00")
		hs := sha256.Sum256(huge)
		f.refused(CodeInvalid, MakeOp(OpExtensionPut, ExtensionPut{Extension: Extension{ID: "huge", Tenant: "acme",
			Events: []string{"OnTokenIssuanceStart"}, WasmSHA256: hex.EncodeToString(hs[:])}, Wasm: huge}))
	})
}
