package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

// env is a real in-memory directory store, a KEK and a ring over them, with a clock the test moves.
type env struct {
	t     testing.TB
	store *directory.Store
	kek   *directory.KEK
	ring  *KeyRing

	mu  sync.Mutex
	now time.Time
	idx uint64
}

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

const maxLifetime = 15*time.Minute + Leeway

func newEnv(t testing.TB, tenants ...string) *env {
	t.Helper()
	store, err := directory.OpenMemory(directory.Options{SmallMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	raw := make([]byte, 32)
	rand.Read(raw)
	kek, err := directory.NewKEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, kek: kek, now: t0}
	e.ring = NewKeyRing(store, kek)
	e.ring.now = e.clock
	for _, id := range tenants {
		e.apply(directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: id}))
	}
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
	return e.now
}

// applyQuiet commits ops at the next index without telling the ring.
func (e *env) applyQuiet(ops ...directory.Op) *directory.Result {
	e.t.Helper()
	e.mu.Lock()
	e.idx++
	idx, now := e.idx, e.now
	e.mu.Unlock()
	data, err := directory.NewCommand(now, "test", ops...).Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.store.Apply(idx, data)
	if err != nil {
		e.t.Fatalf("applying %d ops: %v", len(ops), err)
	}
	return res
}

// apply commits ops and invalidates the ring as the cluster's apply notifications do.
func (e *env) apply(ops ...directory.Op) *directory.Result {
	e.t.Helper()
	res := e.applyQuiet(ops...)
	for _, c := range res.Changes {
		if c.Kind == "key" || c.Kind == "tenant" {
			e.ring.Invalidate(c.Tenant)
		}
	}
	return res
}

// addKey stores a new key of tenant.
func (e *env) addKey(tenant, alg, state string) directory.SigningKey {
	e.t.Helper()
	k, err := directory.NewSigningKey(e.kek, tenant, alg, state)
	if err != nil {
		e.t.Fatal(err)
	}
	e.apply(directory.MakeOp(directory.OpKeyPut, k))
	return k
}

// addKeyWithID stores a new key of tenant under a chosen kid (to make two tenants share one) and returns
// its private half.
func (e *env) addKeyWithID(tenant, kid, alg, state string) crypto.Signer {
	e.t.Helper()
	priv := newPrivate(e.t, alg)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		e.t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		e.t.Fatal(err)
	}
	sealed, err := e.kek.Seal(der, directory.SigningKeyContext(tenant, kid))
	if err != nil {
		e.t.Fatal(err)
	}
	e.apply(directory.MakeOp(directory.OpKeyPut, directory.SigningKey{ID: kid, Tenant: tenant, Alg: alg, Private: sealed, Public: pub, State: state}))
	return priv
}

func newPrivate(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil || priv == nil {
		t.Fatalf("generating a %s key: %v", alg, err)
	}
	return priv
}

func issuer(tenant string) string { return "https://id.example/" + tenant }

// accessClaims are the claims of an access token of tenant issued at now, as the token endpoint builds
// them (RFC 9068 section 2.2).
func accessClaims(tenant string, now time.Time) Claims {
	return Claims{
		"iss": issuer(tenant), "sub": "u1", "aud": issuer(tenant), "client_id": "svc",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "Qm9vdHN0cmFwcGluZyBqdGk", "scope": "openid profile",
	}
}
