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
