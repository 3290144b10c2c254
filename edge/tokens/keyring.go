package tokens

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"postern.dev/postern/directory"
)

// DefaultAlg is the signing algorithm used when none is asked for.
const DefaultAlg = "ES256"

// Algs are the signing algorithms Postern signs and verifies with, all asymmetric. Nothing else is ever
// accepted in a token's header: not "none", not an HMAC.
var Algs = []string{"ES256", "RS256", "EdDSA"}

// allowedAlgs is Algs for go-jose's parser.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}

// ErrNoSigningKey is returned (wrapped) by Signer and SignJWT when the tenant has no active key for the
// algorithm: the tenant does not exist, or its keys for that algorithm were never rotated in.
var ErrNoSigningKey = errors.New("no active signing key")

// ErrUnknownKey is returned (wrapped) by PublicKey when the tenant has no published key with that kid.
var ErrUnknownKey = errors.New("unknown signing key")

// Key is one signing key of a tenant as the ring holds it: the public half always, the private half
// only while the key is active. A Key is immutable; the ring replaces it when the directory changes.
type Key struct {
	// ID is the key's kid.
	ID string
	// Tenant owns the key; it signs and verifies for that tenant only.
	Tenant string
	// Alg is the JWS algorithm of the key: ES256, RS256 or EdDSA.
	Alg string
	// State is directory.KeyNext, KeyActive or KeyRetired.
	State string
	// CreatedAt is when the key was stored.
	CreatedAt time.Time
	// NotAfter, when set, is when a retired key stops being published and accepted.
	NotAfter time.Time
	// Public is the public key: *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey

	priv    crypto.Signer
	headers map[string]string // typ → base64url of the JWS protected header; read-only after load
}

// CanSign reports whether the key holds its private half (it is active).
func (k *Key) CanSign() bool { return k.priv != nil }

// expired reports whether a retired key is past its NotAfter at now.
func (k *Key) expired(now time.Time) bool { return !k.NotAfter.IsZero() && now.After(k.NotAfter) }

// KeyRing holds each tenant's signing keys, unsealed, in memory: signing must not touch Badger or the
// KEK per token.
//
// Concurrency: every method may be called from any number of goroutines. Reads of a cached tenant take
// no lock. A tenant is loaded from the store on first use after an invalidation, one load at a time.
type KeyRing struct {
	store *directory.Store
	kek   *directory.KEK
	now   func() time.Time // the clock for NotAfter in JWKS and PublicKey; tests replace it

	rings  sync.Map      // tenant → *ring
	loadMu sync.Mutex    // one load at a time: a burst after an invalidation unseals each key once
	mu     sync.Mutex    // orders Invalidate against the publication of a load
	gen    atomic.Uint64 // bumped by every Invalidate: a load that raced one is not cached
}

// ring is one tenant's keys, read-only once published.
type ring struct {
	byKID  map[string]*Key
	active map[string]*Key // alg → the key that signs
	jwks   []byte
	// jwksUntil, when set, is the earliest NotAfter among published keys: after it the JWK Set is stale.
	jwksUntil time.Time
}

// NewKeyRing makes an empty ring that loads tenants' keys from store and unseals them with kek.
func NewKeyRing(store *directory.Store, kek *directory.KEK) *KeyRing {
	return &KeyRing{store: store, kek: kek, now: time.Now}
}

// Invalidate drops a tenant's cached keys (call it from cluster Applied notifications for Kind "key" or
// "tenant"; "" drops every tenant's, as after a snapshot restore). It is quick and never blocks on a load.
func (r *KeyRing) Invalidate(tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen.Add(1)
	if tenant == "" {
		r.rings.Clear()
		return
	}
	r.rings.Delete(tenant)
}

// Signer returns the tenant's active key for alg ("" = ES256), loading and caching it.
func (r *KeyRing) Signer(tenant, alg string) (*Key, error) {
	if alg == "" {
		alg = DefaultAlg
	}
	rg, err := r.ring(tenant)
	if err != nil {
		return nil, err
	}
	if k := rg.active[alg]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("signing for tenant %q: %w for %s (rotate the tenant's %s keys twice: once to publish, once to activate)",
		tenant, ErrNoSigningKey, alg, alg)
}

// PublicKey looks up a published key by kid among the tenant's keys only: next, active, or retired and
// not past its NotAfter. A kid of another tenant is unknown here.
func (r *KeyRing) PublicKey(tenant, kid string) (*Key, error) {
	return r.publicKey(tenant, kid, r.now())
}

func (r *KeyRing) publicKey(tenant, kid string, now time.Time) (*Key, error) {
	rg, err := r.ring(tenant)
	if err != nil {
		return nil, err
	}
	k := rg.byKID[kid]
	if k == nil || k.expired(now) {
		return nil, fmt.Errorf("%w %q in tenant %q", ErrUnknownKey, kid, tenant)
	}
	return k, nil
}

// JWKS returns the tenant's public JSON Web Key Set (RFC 7517 section 5): its next, active and retired
// keys that are not past NotAfter, each with kid, kty, alg and use "sig", as JSON bytes, cached. The
// caller must not modify the bytes.
func (r *KeyRing) JWKS(tenant string) ([]byte, error) {
	rg, err := r.ring(tenant)
	if err != nil {
		return nil, err
	}
	if !rg.jwksUntil.IsZero() && r.now().After(rg.jwksUntil) {
		// A retired key has just passed its NotAfter: build the set again without it.
		r.mu.Lock()
		r.rings.CompareAndDelete(tenant, rg)
		r.mu.Unlock()
		if rg, err = r.ring(tenant); err != nil {
			return nil, err
		}
	}
	return rg.jwks, nil
}

// ring returns the tenant's cached keys, loading them on a miss.
func (r *KeyRing) ring(tenant string) (*ring, error) {
	if v, ok := r.rings.Load(tenant); ok {
		return v.(*ring), nil
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	if v, ok := r.rings.Load(tenant); ok {
		return v.(*ring), nil
	}
	gen := r.gen.Load()
	rg, err := r.load(tenant)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	// A tenant without keys (or without existence) is not cached: a name made up by a caller must not
	// grow the cache. Its miss costs one prefix scan of the local store.
	if r.gen.Load() == gen && len(rg.byKID) > 0 {
		r.rings.Store(tenant, rg)
	}
	r.mu.Unlock()
	return rg, nil
}

// load reads a tenant's keys from the store and unseals the active ones.
func (r *KeyRing) load(tenant string) (*ring, error) {
	recs, err := r.store.SigningKeys(tenant)
	if err != nil {
		return nil, fmt.Errorf("loading signing keys of tenant %q: %w", tenant, err)
	}
	now := r.now()
	rg := &ring{byKID: make(map[string]*Key, len(recs)), active: map[string]*Key{}}
	for _, rec := range recs {
		k, err := r.parse(rec)
		if err != nil {
			return nil, err
		}
		rg.byKID[k.ID] = k
		if k.priv != nil {
			// Two active keys for one alg should not happen; if it does, the newer signs.
			if cur := rg.active[k.Alg]; cur == nil || k.CreatedAt.After(cur.CreatedAt) {
				rg.active[k.Alg] = k
			}
		}
	}
	if rg.jwks, rg.jwksUntil, err = buildJWKS(rg.byKID, now); err != nil {
		return nil, fmt.Errorf("building the JWK Set of tenant %q: %w", tenant, err)
	}
	return rg, nil
}

// parse turns a stored key into a ring key, unsealing the private half of an active key.
func (r *KeyRing) parse(rec directory.SigningKey) (*Key, error) {
	if !slices.Contains(Algs, rec.Alg) {
		return nil, fmt.Errorf("loading signing key %s of tenant %q: algorithm %q is not one of %v", rec.ID, rec.Tenant, rec.Alg, Algs)
	}
	pub, err := x509.ParsePKIXPublicKey(rec.Public)
	if err != nil {
		return nil, fmt.Errorf("loading signing key %s of tenant %q: parsing the public key: %w", rec.ID, rec.Tenant, err)
	}
	if !keyFitsAlg(pub, rec.Alg) {
		return nil, fmt.Errorf("loading signing key %s of tenant %q: its public key does not fit %s", rec.ID, rec.Tenant, rec.Alg)
	}
	k := &Key{ID: rec.ID, Tenant: rec.Tenant, Alg: rec.Alg, State: rec.State, CreatedAt: rec.CreatedAt,
		NotAfter: rec.NotAfter, Public: pub}
	if rec.State != directory.KeyActive {
		return k, nil
	}
	priv, err := directory.OpenSigningKey(r.kek, rec)
	if err != nil {
		return nil, fmt.Errorf("loading signing key: %w", err)
	}
	if !keyFitsAlg(priv.Public(), rec.Alg) {
		return nil, fmt.Errorf("loading signing key %s of tenant %q: its private key does not fit %s", rec.ID, rec.Tenant, rec.Alg)
	}
	if !samePublic(priv.Public(), pub) {
		return nil, fmt.Errorf("loading signing key %s of tenant %q: its private and public halves do not match", rec.ID, rec.Tenant)
	}
	k.priv = priv
	k.headers = map[string]string{}
	for _, typ := range []string{TypeIDToken, TypeAccessToken} {
		k.headers[typ] = k.header(typ)
	}
	return k, nil
}

// samePublic compares two public keys of the standard library's types.
func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// keyFitsAlg reports whether a public key is of the type and size its algorithm needs.
func keyFitsAlg(pub crypto.PublicKey, alg string) bool {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return alg == "ES256" && p.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == "RS256" && p.N.BitLen() >= 2048
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// header is the base64url JWS protected header for this key and typ (RFC 7515 section 4.1).
func (k *Key) header(typ string) string {
	b, err := json.Marshal(struct {
		Alg string `json:"alg"`
		KID string `json:"kid"`
		Typ string `json:"typ,omitempty"`
	}{k.Alg, k.ID, typ})
	if err != nil {
		panic("tokens: encoding a JWS header: " + err.Error()) // three strings always encode
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// stateOrder puts the signing key first in a JWK Set (some clients try the first key), then the next,
// then the retired ones.
var stateOrder = map[string]int{directory.KeyActive: 0, directory.KeyNext: 1, directory.KeyRetired: 2}

// buildJWKS encodes the published keys at now and says until when that set holds.
func buildJWKS(keys map[string]*Key, now time.Time) ([]byte, time.Time, error) {
	var pub []*Key
	var until time.Time
	for _, k := range keys {
		if k.expired(now) {
			continue
		}
		pub = append(pub, k)
		if !k.NotAfter.IsZero() && (until.IsZero() || k.NotAfter.Before(until)) {
			until = k.NotAfter
		}
	}
	slices.SortFunc(pub, func(a, b *Key) int {
		return cmp.Or(cmp.Compare(stateOrder[a.State], stateOrder[b.State]), b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(pub))}
	for _, k := range pub {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	return b, until, err
}
