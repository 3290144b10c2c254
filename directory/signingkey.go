package directory

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
)

// NewSigningKey generates a signing key for a tenant and seals its private half with kek. Proposers call
// it (it reads randomness); the result goes into a key.put op.
func NewSigningKey(kek *KEK, tenant, alg, state string) (SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return SigningKey{}, fmt.Errorf("signing algorithm %q is not one of ES256, RS256, EdDSA", alg)
	}
	if err != nil {
		return SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKey{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return SigningKey{}, err
	}
	kid := NewID()
	sealed, err := kek.Seal(der, SigningKeyContext(tenant, kid))
	clear(der)
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{ID: kid, Tenant: tenant, Alg: alg, Private: sealed, Public: pub, State: state}, nil
}

// OpenSigningKey unseals a signing key's private half.
func OpenSigningKey(kek *KEK, k SigningKey) (crypto.Signer, error) {
	der, err := kek.Open(k.Private, SigningKeyContext(k.Tenant, k.ID))
	if err != nil {
		return nil, fmt.Errorf("opening signing key %s of tenant %s: %w", k.ID, k.Tenant, err)
	}
	defer clear(der)
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing signing key %s: %w", k.ID, err)
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing key %s is not a signer", k.ID)
	}
	return s, nil
}

// MissingKeyOps returns key.put ops for an active key of each alg that the tenant has no active key for
// yet (an app asking for RS256 or EdDSA needs one to sign with).
func MissingKeyOps(s *Store, kek *KEK, tenant string, algs ...string) ([]Op, []string, error) {
	have := map[string]bool{}
	if keys, err := s.SigningKeys(tenant); err == nil {
		for _, k := range keys {
			if k.State == KeyActive {
				have[k.Alg] = true
			}
		}
	}
	var ops []Op
	var changes []string
	for _, alg := range algs {
		if alg == "" {
			alg = "ES256"
		}
		if have[alg] {
			continue
		}
		k, err := NewSigningKey(kek, tenant, alg, KeyActive)
		if err != nil {
			return nil, nil, err
		}
		have[alg] = true
		ops = append(ops, MakeOp(OpKeyPut, k))
		changes = append(changes, "create signing key "+k.ID+" ("+alg+")")
	}
	return ops, changes, nil
}
