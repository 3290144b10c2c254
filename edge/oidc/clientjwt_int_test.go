package oidc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"postern.dev/postern/directory"
)

func TestPrivateKeyJWTClientAuthentication(t *testing.T) {
	e := newEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	e.propose(directory.MakeOp(directory.OpAppCreate, directory.App{ID: "pkj", Tenant: "acme", Name: "pkj", ClientID: "pkj",
		Type: directory.AppService, GrantTypes: []string{"client_credentials"}, JWKS: string(set)}))
	tokenURL := e.issuer("acme") + "/token"
	assertion := func(signer *ecdsa.PrivateKey, mutate func(c *jwt.Claims)) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		c := jwt.Claims{Issuer: "pkj", Subject: "pkj", Audience: jwt.Audience{tokenURL}, ID: directory.NewID(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute))}
		if mutate != nil {
			mutate(&c)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	good := assertion(key, nil)
	if status, out := e.exchange(form(good)); status != 200 || out["access_token"] == nil {
		t.Fatalf("a good assertion: %d %v", status, out)
	}
	tests := map[string]string{
		"replayed":        good,
		"another key":     assertion(other, nil),
		"wrong audience":  assertion(key, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://elsewhere.example/token"} }),
		"sub is not iss":  assertion(key, func(c *jwt.Claims) { c.Subject = "someone" }),
		"expired":         assertion(key, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-5 * time.Minute)) }),
		"lives too long":  assertion(key, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) }),
		"no jti":          assertion(key, func(c *jwt.Claims) { c.ID = "" }),
		"another client":  assertion(key, func(c *jwt.Claims) { c.Issuer, c.Subject = "svc", "svc" }),
		"unsigned (none)": "eyJhbGciOiJub25lIn0.eyJpc3MiOiJwa2oiLCJzdWIiOiJwa2oifQ.",
	}
	for name, a := range tests {
		if status, out := e.exchange(form(a)); status != 401 || out["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", name, status, out)
		}
	}
	// Two methods at once are refused.
	f := form(assertion(key, nil))
	f.Set("client_secret", e.secret)
	if status, _ := e.exchange(f); status != 400 {
		t.Errorf("assertion and secret together: %d", status)
	}
}
