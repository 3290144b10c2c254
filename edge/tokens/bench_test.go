package tokens

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"postern.dev/postern/directory"
)

// The benchmarks put the cost of issuing an access token beside the bare ES256 signature, the floor
// (issue 3: 10,000 client-credentials tokens/s per core). Each checks its result before the timed loop.

// benchEnv is a tenant with an active ES256 key, already loaded into the ring.
func benchEnv(b *testing.B) (*env, *Key) {
	b.Helper()
	e := newEnv(b, "acme")
	e.addKey("acme", "ES256", directory.KeyActive)
	k, err := e.ring.Signer("acme", "")
	if err != nil {
		b.Fatal(err)
	}
	return e, k
}

// BenchmarkES256Raw is the floor: SHA-256 over a signing input of an access token's size and one
// ecdsa.Sign.
func BenchmarkES256Raw(b *testing.B) {
	e, k := benchEnv(b)
	tok, err := e.ring.SignJWT("acme", "", TypeAccessToken, accessClaims("acme", t0))
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(tok[:len(tok)-87]) // header.payload
	priv := k.priv.(*ecdsa.PrivateKey)
	digest := sha256.Sum256(input)
	if r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:]); err != nil || !ecdsa.Verify(&priv.PublicKey, digest[:], r, s) {
		b.Fatal("ecdsa.Sign does not verify", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		digest := sha256.Sum256(input)
		if _, _, err := ecdsa.Sign(rand.Reader, priv, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256RawASN1 is the same signature through ecdsa.SignASN1, the call SignJWT makes (it skips
// ecdsa.Sign's conversion to big.Int): the floor SignJWT's own overhead is measured against.
func BenchmarkES256RawASN1(b *testing.B) {
	_, k := benchEnv(b)
	input := make([]byte, 400)
	priv := k.priv.(*ecdsa.PrivateKey)
	digest := sha256.Sum256(input)
	if sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:]); err != nil || !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
		b.Fatal("ecdsa.SignASN1 does not verify", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		digest := sha256.Sum256(input)
		if _, err := ecdsa.SignASN1(rand.Reader, priv, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignAccessToken is what the token endpoint pays: the claims map built and the token signed
// through the ring.
func BenchmarkSignAccessToken(b *testing.B) {
	e, _ := benchEnv(b)
	tok, err := e.ring.SignJWT("acme", "", TypeAccessToken, accessClaims("acme", t0))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.ring.SignJWT("acme", "", TypeAccessToken, accessClaims("acme", t0)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignAccessTokenGoJose is the alternative SignJWT does not take: go-jose's signer, built once
// per key and reused.
func BenchmarkSignAccessTokenGoJose(b *testing.B) {
	e, k := benchEnv(b)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{}).WithType(TypeAccessToken).WithHeader(jose.HeaderKey("kid"), k.ID))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(map[string]any(accessClaims("acme", t0))).Serialize()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jwt.Signed(signer).Claims(map[string]any(accessClaims("acme", t0))).Serialize(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAccessToken is what userinfo and the proxy pay per bearer token.
func BenchmarkVerifyAccessToken(b *testing.B) {
	e, _ := benchEnv(b)
	tok, err := e.ring.SignJWT("acme", "", TypeAccessToken, accessClaims("acme", t0))
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Minute)
	if _, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256VerifyRaw is the floor of verification: one ecdsa.VerifyASN1 over a SHA-256.
func BenchmarkES256VerifyRaw(b *testing.B) {
	_, k := benchEnv(b)
	input := make([]byte, 400)
	priv := k.priv.(*ecdsa.PrivateKey)
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil || !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
		b.Fatal("ecdsa.SignASN1 does not verify", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		digest := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
			b.Fatal("does not verify")
		}
	}
}

// BenchmarkClaimsJSON compares the claims encoder with encoding/json on the same map.
func BenchmarkClaimsJSON(b *testing.B) {
	c := accessClaims("acme", t0)
	want, _ := json.Marshal(c)
	if got, _ := appendClaimsJSON(nil, c); string(got) != string(want) {
		b.Fatalf("appendClaimsJSON = %s, want %s", got, want)
	}
	b.Run("appendClaimsJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = appendClaimsJSON(buf[:0], c)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(c)
		}
	})
}

// BenchmarkSignAccessTokenAlgs signs with each algorithm a tenant can choose.
func BenchmarkSignAccessTokenAlgs(b *testing.B) {
	e := newEnv(b, "acme")
	for _, alg := range Algs {
		e.addKey("acme", alg, directory.KeyActive)
	}
	for _, alg := range Algs {
		b.Run(alg, func(b *testing.B) {
			tok, err := e.ring.SignJWT("acme", alg, TypeAccessToken, accessClaims("acme", t0))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, t0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.ring.SignJWT("acme", alg, TypeAccessToken, accessClaims("acme", t0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
