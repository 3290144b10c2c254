package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
)

// JWS typ values (RFC 7515 section 4.1.9) of the tokens Postern issues.
const (
	// TypeIDToken is the typ of ID tokens (OpenID Connect Core section 2 leaves it to RFC 7519: "JWT").
	TypeIDToken = "JWT"
	// TypeAccessToken is the typ of access tokens (RFC 9068 section 2.1), which keeps an ID token from
	// being accepted as an access token.
	TypeAccessToken = "at+jwt"
)

// Claims are a JWT's claims (RFC 7519 section 4). Values are what encoding/json encodes; verified
// tokens give numbers back as float64.
type Claims map[string]any

// SignJWT signs claims with the tenant's active key for alg ("" = ES256) and returns the JWT in JWS
// compact serialization. Its protected header is alg, kid and typ: "JWT" for ID tokens, "at+jwt" for
// access tokens (RFC 9068).
func (r *KeyRing) SignJWT(tenant, alg, typ string, claims Claims) (string, error) {
	k, err := r.Signer(tenant, alg)
	if err != nil {
		return "", err
	}
	return k.SignJWT(typ, claims)
}

// SignJWT signs claims with this key; see [KeyRing.SignJWT]. Only an active key (from
// [KeyRing.Signer]) can sign.
//
// # Notes
//
// The token is built by hand rather than through go-jose's signer: the header is prebuilt per key and
// typ, the claims are encoded once into the buffer that is signed, and the signature comes from the
// standard library. The result is standard JWS compact serialization (RFC 7515 section 7.1), which
// go-jose parses and verifies (see the tests); the benchmarks show the cost over the bare signature.
func (k *Key) SignJWT(typ string, claims Claims) (string, error) {
	if k.priv == nil {
		return "", fmt.Errorf("signing with key %s of tenant %q: the key is %s, only an active key signs", k.ID, k.Tenant, k.State)
	}
	hdr, ok := k.headers[typ]
	if !ok {
		hdr = k.header(typ)
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	payload, err := appendClaimsJSON(sc.b[:0], claims)
	sc.b = payload[:0]
	if err != nil {
		return "", fmt.Errorf("signing a token for tenant %q: encoding the claims: %w", k.Tenant, err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(hdr)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(sigLen(k)))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	var sig [512]byte // large enough for RSA-4096
	s, err := k.sign(sig[:0], buf)
	if err != nil {
		return "", fmt.Errorf("signing a token for tenant %q with key %s: %w", k.Tenant, k.ID, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, s)
	return string(buf), nil
}

// sigLen is the length of the key's raw JWS signature.
func sigLen(k *Key) int {
	switch p := k.Public.(type) {
	case *rsa.PublicKey:
		return p.Size()
	case ed25519.PublicKey:
		return ed25519.SignatureSize
	}
	return 64
}

// sign appends the JWS signature of input (RFC 7518 section 3, RFC 8037 section 3.1) to dst.
func (k *Key) sign(dst, input []byte) ([]byte, error) {
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256(input)
		der, err := ecdsa.SignASN1(rand.Reader, p, digest[:])
		if err != nil {
			return nil, err
		}
		return appendRawECDSA(dst, der, 32)
	case *rsa.PrivateKey:
		digest := sha256.Sum256(input)
		s, err := rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, digest[:])
		if err != nil {
			return nil, err
		}
		return append(dst, s...), nil
	case ed25519.PrivateKey:
		return append(dst, ed25519.Sign(p, input)...), nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k.priv)
}

var errBadECDSA = errors.New("malformed ECDSA signature")

// appendRawECDSA turns an ASN.1 DER ECDSA signature, SEQUENCE { r INTEGER, s INTEGER }, into the JWS
// form: r and s as big-endian unsigned integers of size bytes each, concatenated (RFC 7518 section 3.4).
func appendRawECDSA(dst, der []byte, size int) ([]byte, error) {
	// The sequence of two integers of at most size+1 bytes each is shorter than 128 bytes for P-256, so
	// its length is in short form.
	if len(der) < 2 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return nil, errBadECDSA
	}
	rest := der[2:]
	for range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || rest[1] >= 0x80 || int(rest[1]) > len(rest)-2 {
			return nil, errBadECDSA
		}
		n := int(rest[1])
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > size {
			return nil, errBadECDSA
		}
		for range size - len(v) {
			dst = append(dst, 0)
		}
		dst = append(dst, v...)
	}
	if len(rest) != 0 {
		return nil, errBadECDSA
	}
	return dst, nil
}

// AtHash computes at_hash or c_hash for a token signed with alg (OpenID Connect Core sections 3.1.3.6
// and 3.3.2.11): the left half of the hash of the token's ASCII octets, base64url without padding. The
// hash is the one of alg: SHA-256 for ES256 and RS256 (and "", which means ES256), SHA-384 and SHA-512
// for the 384 and 512 variants, SHA-512 for EdDSA with Ed25519 (OpenID Connect Core errata set 2).
// An unknown alg gives "".
func AtHash(alg, token string) string {
	var h hash.Hash
	switch alg {
	case "", "ES256", "RS256", "PS256", "HS256":
		h = sha256.New()
	case "ES384", "RS384", "PS384", "HS384":
		h = sha512.New384()
	case "ES512", "RS512", "PS512", "HS512", "EdDSA":
		h = sha512.New()
	default:
		return ""
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
