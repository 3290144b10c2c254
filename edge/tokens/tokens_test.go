package tokens

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"postern.dev/postern/directory"
)

// segments splits a compact JWS and decodes its header and payload.
func segments(t *testing.T, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not three segments", tok)
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	return header, payload
}

// forge builds a compact JWS from a header and claims, signed by sign over the signing input.
func forge(t *testing.T, header map[string]any, claims Claims, sign func(input []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme")
	for _, alg := range Algs {
		e.addKey("acme", alg, directory.KeyActive)
	}
	jwks, err := e.ring.JWKS("acme")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alg, asked string
	}{
		{"ES256", "ES256"},
		{"ES256", ""}, // the default
		{"RS256", "RS256"},
		{"EdDSA", "EdDSA"},
	}
	for _, tc := range tests {
		t.Run(tc.alg+"/"+tc.asked, func(t *testing.T) {
			claims := accessClaims("acme", t0)
			claims["amr"] = []string{"pwd", "otp"}
			claims["name"] = "Zoë <admin> & \"co\""
			tok, err := e.ring.SignJWT("acme", tc.asked, TypeAccessToken, claims)
			if err != nil {
				t.Fatal(err)
			}
			signer, _ := e.ring.Signer("acme", tc.asked)
			header, _ := segments(t, tok)
			if want := map[string]any{"alg": tc.alg, "kid": signer.ID, "typ": "at+jwt"}; !reflect.DeepEqual(header, want) {
				t.Errorf("header = %v, want %v", header, want)
			}
			got, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, t0.Add(time.Minute))
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			want, _ := json.Marshal(claims)
			if b, _ := json.Marshal(got); string(b) != string(want) {
				t.Errorf("claims = %s, want %s", b, want)
			}
			// The token is standard compact JWS: go-jose verifies it with the key of the published set.
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.alg)})
			if err != nil {
				t.Fatal(err)
			}
			keys := set.Key(signer.ID)
			if len(keys) != 1 {
				t.Fatalf("JWKS has %d keys with kid %s", len(keys), signer.ID)
			}
			if _, err := jws.Verify(keys[0]); err != nil {
				t.Errorf("go-jose does not verify the token with the published key: %v", err)
			}
		})
	}
}

func TestClaimsJSONIsEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := map[string]Claims{
		"token endpoint": accessClaims("acme", t0),
		"empty":          {},
		"escapes":        {"s": "a\"b\\c\n\t<>&\u2028é\x00", "é": 1, "<": "x"},
		"invalid utf-8":  {"s": "\xff\xfe"},
		"numbers":        {"i": 1, "i64": int64(-7), "f": 3.0, "neg": -2.0, "frac": 0.5, "big": 1e21, "huge": math.MaxInt64, "negzero": math.Copysign(0, -1), "small": 1e-7, "i32": int32(5)},
		"lists":          {"amr": []string{"pwd", "<x>"}, "none": []string(nil), "empty": []string{}, "any": []any{"a", 1}},
		"others":         {"b": true, "n": nil, "m": map[string]any{"z": 1, "a": []int{1}}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendClaimsJSON(nil, c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("appendClaimsJSON = %s\nencoding/json   = %s", got, want)
			}
		})
	}
	if _, err := appendClaimsJSON(nil, Claims{"ch": make(chan int)}); err == nil {
		t.Error("a claim that does not encode was accepted")
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme", "beta", "gamma")
	active := e.addKey("acme", "ES256", directory.KeyActive)
	rsaKey := e.addKey("acme", "RS256", directory.KeyActive)
	e.addKey("gamma", "ES256", directory.KeyActive)
	// beta also has a key under acme's kid: a kid names a key within one tenant only.
	betaTwin := e.addKeyWithID("beta", active.ID, "ES256", directory.KeyActive)
	attacker := newPrivate(t, "ES256")

	acmeSigner, _ := e.ring.Signer("acme", "ES256")
	now := t0.Add(time.Minute)
	sign := func(tenant, alg, typ string, mutate func(Claims)) string {
		t.Helper()
		c := accessClaims("acme", t0)
		if mutate != nil {
			mutate(c)
		}
		tok, err := e.ring.SignJWT(tenant, alg, typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	hdr := func(alg string) map[string]any { return map[string]any{"alg": alg, "kid": active.ID, "typ": "at+jwt"} }
	pubDER := active.Public
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacWith := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}
	good := sign("acme", "", TypeAccessToken, nil)
	parts := strings.Split(good, ".")

	// beta's key under acme's kid signs a token for acme's issuer.
	twinTok, err := e.ring.SignJWT("beta", "", TypeAccessToken, accessClaims("acme", t0))
	if h, _ := segments(t, twinTok); err != nil || h["kid"] != active.ID {
		t.Fatalf("beta's twin key: %v, kid %v", err, h["kid"])
	}
	if k, _ := e.ring.Signer("beta", ""); !k.Public.(interface{ Equal(crypto.PublicKey) bool }).Equal(betaTwin.Public()) {
		t.Fatal("beta does not sign with its twin key")
	}
	// A retired key of acme past its NotAfter.
	retiredTok := sign("acme", "RS256", TypeAccessToken, nil)
	e.apply(directory.MakeOp(directory.OpKeyPut, directory.SigningKey{ID: rsaKey.ID, Tenant: "acme", Alg: "RS256", Public: rsaKey.Public,
		State: directory.KeyRetired, NotAfter: t0.Add(-time.Second)}))

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", forge(t, hdr("none"), accessClaims("acme", t0), func([]byte) []byte { return nil })},
		{"alg none without signature segment", strings.TrimSuffix(forge(t, hdr("none"), accessClaims("acme", t0), func([]byte) []byte { return nil }), ".")},
		{"HS256 with the public key DER as secret", forge(t, hdr("HS256"), accessClaims("acme", t0), hmacWith(pubDER))},
		{"HS256 with the public key PEM as secret", forge(t, hdr("HS256"), accessClaims("acme", t0), hmacWith(pubPEM))},
		{"HS512", forge(t, hdr("HS512"), accessClaims("acme", t0), hmacWith(pubPEM))},
		{"ES384", forge(t, hdr("ES384"), accessClaims("acme", t0), func([]byte) []byte { return make([]byte, 96) })},
		{"another tenant's key (kid unknown here)", sign("gamma", "", TypeAccessToken, nil)},
		{"another tenant's key under a kid this tenant has", twinTok},
		{"an attacker's key under our kid", forge(t, hdr("ES256"), accessClaims("acme", t0), func(in []byte) []byte {
			k := &Key{ID: active.ID, Alg: "ES256", Public: attacker.Public(), priv: attacker}
			s, _ := k.sign(nil, in)
			return s
		})},
		{"embedded jwk of an attacker", func() string {
			h := hdr("ES256")
			h["jwk"] = jose.JSONWebKey{Key: attacker.Public()}
			return forge(t, h, accessClaims("acme", t0), func(in []byte) []byte {
				k := &Key{Public: attacker.Public(), priv: attacker}
				s, _ := k.sign(nil, in)
				return s
			})
		}()},
		{"alg of another key than the kid's (RS256 under an ES256 kid)", func() string {
			rsaPriv := newPrivate(t, "RS256")
			k := &Key{Public: rsaPriv.Public(), priv: rsaPriv}
			return forge(t, hdr("RS256"), accessClaims("acme", t0), func(in []byte) []byte { s, _ := k.sign(nil, in); return s })
		}()},
		{"a retired key past NotAfter", retiredTok},
		{"no kid", forge(t, map[string]any{"alg": "ES256", "typ": "at+jwt"}, accessClaims("acme", t0), func(in []byte) []byte {
			s, _ := acmeSigner.sign(nil, in)
			return s
		})},
		{"an ID token (typ JWT)", sign("acme", "", TypeIDToken, nil)},
		{"no typ", sign("acme", "", "", nil)},
		{"typ jwt+at", sign("acme", "", "jwt+at", nil)},
		{"wrong iss", sign("acme", "", TypeAccessToken, func(c Claims) { c["iss"] = issuer("beta") })},
		{"iss with a trailing slash", sign("acme", "", TypeAccessToken, func(c Claims) { c["iss"] = issuer("acme") + "/" })},
		{"no iss", sign("acme", "", TypeAccessToken, func(c Claims) { delete(c, "iss") })},
		{"expired beyond the leeway", sign("acme", "", TypeAccessToken, func(c Claims) { c["exp"] = now.Add(-Leeway - time.Second).Unix() })},
		{"no exp", sign("acme", "", TypeAccessToken, func(c Claims) { delete(c, "exp") })},
		{"no iat", sign("acme", "", TypeAccessToken, func(c Claims) { delete(c, "iat") })},
		{"iat in the future", sign("acme", "", TypeAccessToken, func(c Claims) { c["iat"] = now.Add(Leeway + time.Minute).Unix() })},
		{"nbf in the future", sign("acme", "", TypeAccessToken, func(c Claims) { c["nbf"] = now.Add(Leeway + time.Second).Unix() })},
		{"exp that is not a number", sign("acme", "", TypeAccessToken, func(c Claims) { c["exp"] = "tomorrow" })},
		{"tampered payload", func() string {
			c := accessClaims("acme", t0)
			c["sub"] = "admin"
			p, _ := json.Marshal(c)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
		}()},
		{"tampered header (typ changed)", func() string {
			h, _ := json.Marshal(map[string]any{"alg": "ES256", "kid": active.ID, "typ": "application/at+jwt"})
			return base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + "." + parts[2]
		}()},
		{"truncated signature", good[:len(good)-4]},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(sign("acme", "", TypeAccessToken, func(c Claims) { c["jti"] = "x" }), ".")[2]},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
		{"two segments", parts[0] + "." + parts[1]},
		{"empty", ""},
		{"garbage", "not.a.token"},
		{"too long", strings.Repeat("a", maxTokenSize+1)},
	}
	// Each refusal must be for its own reason, not an earlier accident of the test.
	const (
		badAlg   = "unexpected signature algorithm"
		badSig   = "error in cryptographic primitive"
		badParts = "compact JWS format must have three parts"
		unknown  = "unknown signing key"
	)
	why := map[string]string{
		"alg none": badAlg, "alg none without signature segment": badParts,
		"HS256 with the public key DER as secret": badAlg, "HS256 with the public key PEM as secret": badAlg,
		"HS512": badAlg, "ES384": badAlg,
		"another tenant's key (kid unknown here)": unknown, "another tenant's key under a kid this tenant has": badSig,
		"an attacker's key under our kid": badSig, "embedded jwk of an attacker": badSig,
		"alg of another key than the kid's (RS256 under an ES256 kid)": "is not the alg ES256",
		"a retired key past NotAfter":                                  unknown, "no kid": "no kid",
		"an ID token (typ JWT)": `typ "JWT"`, "no typ": `typ ""`, "typ jwt+at": `typ "jwt+at"`,
		"wrong iss": "iss", "iss with a trailing slash": "iss", "no iss": `iss ""`,
		"expired beyond the leeway": "token is expired", "no exp": "exp or iat is missing", "no iat": "exp or iat is missing",
		"iat in the future": "issued in the future", "nbf in the future": "not valid yet", "exp that is not a number": "NumericDate",
		"tampered payload": badSig, "tampered header (typ changed)": badSig, "truncated signature": badSig,
		"signature of another token": badSig, "JSON serialization": badParts, "two segments": badParts,
		"empty": "empty input", "garbage": "parsing", "too long": "longer than",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tc.token, now)
			if err == nil {
				t.Fatalf("accepted, claims %v", c)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if w := why[tc.name]; w == "" || !strings.Contains(err.Error(), w) {
				t.Errorf("refused for another reason than %q: %v", w, err)
			}
		})
	}

	// The controls: the genuine token, the same within the leeway, and the media-type form of typ.
	accepted := []struct {
		name  string
		token string
		at    time.Time
	}{
		{"genuine", good, now},
		{"expired within the leeway", good, t0.Add(15*time.Minute + Leeway - time.Second)},
		{"typ application/at+jwt", sign("acme", "", "application/at+jwt", nil), now},
		{"typ AT+JWT", sign("acme", "", "AT+JWT", nil), now},
	}
	for _, tc := range accepted {
		if _, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tc.token, tc.at); err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
	}
	if _, err := e.ring.VerifyAccessToken("acme", "", good, now); err == nil {
		t.Error("verifying without an issuer was accepted")
	}
}

func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme")
	active := e.addKey("acme", "ES256", directory.KeyActive)
	next := e.addKey("acme", "ES256", directory.KeyNext)
	rsaKey := e.addKey("acme", "RS256", directory.KeyActive)
	ed := e.addKey("acme", "EdDSA", directory.KeyRetired)
	old := e.addKey("acme", "ES256", directory.KeyRetired)
	e.apply(directory.MakeOp(directory.OpKeyPut, directory.SigningKey{ID: ed.ID, Tenant: "acme", Alg: "EdDSA", Public: ed.Public,
		State: directory.KeyRetired, NotAfter: t0.Add(time.Hour)}))
	e.apply(directory.MakeOp(directory.OpKeyPut, directory.SigningKey{ID: old.ID, Tenant: "acme", Alg: "ES256", Public: old.Public,
		State: directory.KeyRetired, NotAfter: t0.Add(-time.Second)}))

	kids := func() []string {
		t.Helper()
		b, err := e.ring.JWKS("acme")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		d := json.NewDecoder(strings.NewReader(string(b)))
		if err := d.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range doc.Keys {
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
				if _, ok := k[private]; ok {
					t.Errorf("key %v has the private member %q", k["kid"], private)
				}
			}
			kid, _ := k["kid"].(string)
			if kid == "" || k["kty"] == nil || k["alg"] == nil || k["use"] != "sig" {
				t.Errorf("key %v lacks kid, kty, alg or use sig", k)
			}
			wantKty := map[string]string{"ES256": "EC", "RS256": "RSA", "EdDSA": "OKP"}[k["alg"].(string)]
			if k["kty"] != wantKty {
				t.Errorf("key %s: kty %v for alg %v", kid, k["kty"], k["alg"])
			}
			// Each published key parses as a public JWK.
			raw, _ := json.Marshal(k)
			var jwk jose.JSONWebKey
			if err := jwk.UnmarshalJSON(raw); err != nil || !jwk.IsPublic() || !jwk.Valid() {
				t.Errorf("key %s does not parse as a valid public JWK: %v", kid, err)
			}
			out = append(out, kid)
		}
		return out
	}
	// The active keys first, then next, then retired; the retired key past NotAfter is not published.
	got := kids()
	if len(got) != 4 || !slices.Contains(got[:2], active.ID) || !slices.Contains(got[:2], rsaKey.ID) || got[2] != next.ID || got[3] != ed.ID {
		t.Errorf("JWKS kids = %v, want [%s %s] (either order), %s, %s", got, active.ID, rsaKey.ID, next.ID, ed.ID)
	}
	if _, err := e.ring.PublicKey("acme", old.ID); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("PublicKey of a key past NotAfter: %v", err)
	}
	for _, kid := range []string{active.ID, next.ID, ed.ID} {
		if _, err := e.ring.PublicKey("acme", kid); err != nil {
			t.Errorf("PublicKey(%s): %v", kid, err)
		}
	}
	// Once the EdDSA key passes its NotAfter, the set drops it without any invalidation.
	e.advance(time.Hour + time.Second)
	if got := kids(); slices.Contains(got, ed.ID) || len(got) != 3 {
		t.Errorf("after NotAfter, JWKS kids = %v, still with %s", got, ed.ID)
	}
	// The same bytes come back while nothing changes.
	a, _ := e.ring.JWKS("acme")
	b, _ := e.ring.JWKS("acme")
	if &a[0] != &b[0] {
		t.Error("JWKS is rebuilt on every call")
	}
}

func TestSignerAndPublicKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme", "beta")
	active := e.addKey("acme", "ES256", directory.KeyActive)
	next := e.addKey("acme", "ES256", directory.KeyNext)

	k, err := e.ring.Signer("acme", "")
	if err != nil || k.ID != active.ID || !k.CanSign() || k.State != directory.KeyActive {
		t.Fatalf("Signer = %+v, %v; want the active key %s", k, err, active.ID)
	}
	tests := []struct {
		tenant, alg string
	}{
		{"acme", "RS256"}, // no key of that alg
		{"beta", ""},      // no key at all
		{"nope", ""},      // no tenant
		{"acme", "HS256"}, // never
	}
	for _, tc := range tests {
		if _, err := e.ring.Signer(tc.tenant, tc.alg); !errors.Is(err, ErrNoSigningKey) {
			t.Errorf("Signer(%q, %q) = %v, want ErrNoSigningKey", tc.tenant, tc.alg, err)
		}
		if _, err := e.ring.SignJWT(tc.tenant, tc.alg, TypeAccessToken, accessClaims(tc.tenant, t0)); !errors.Is(err, ErrNoSigningKey) {
			t.Errorf("SignJWT(%q, %q) = %v, want ErrNoSigningKey", tc.tenant, tc.alg, err)
		}
	}
	// A next key is published, but holds no private half and cannot sign.
	p, err := e.ring.PublicKey("acme", next.ID)
	if err != nil || p.CanSign() || p.State != directory.KeyNext {
		t.Fatalf("PublicKey(next) = %+v, %v", p, err)
	}
	if _, err := p.SignJWT(TypeAccessToken, accessClaims("acme", t0)); err == nil {
		t.Error("a next key signed")
	}
	if _, err := e.ring.PublicKey("beta", active.ID); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("PublicKey of acme's kid in beta = %v, want ErrUnknownKey", err)
	}
}

func TestInvalidatePicksUpChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme", "beta")
	first := e.addKey("acme", "ES256", directory.KeyActive)
	e.addKey("beta", "ES256", directory.KeyActive)
	if k, _ := e.ring.Signer("acme", ""); k.ID != first.ID {
		t.Fatalf("Signer = %s, want %s", k.ID, first.ID)
	}
	betaBefore, _ := e.ring.JWKS("beta")

	// A change the ring is not told about is not seen: the ring serves from memory.
	second, _ := directory.NewSigningKey(e.kek, "acme", "ES256", directory.KeyActive)
	e.applyQuiet(
		directory.MakeOp(directory.OpKeyPut, directory.SigningKey{ID: first.ID, Tenant: "acme", Alg: "ES256", Public: first.Public, State: directory.KeyRetired, NotAfter: t0.Add(time.Hour)}),
		directory.MakeOp(directory.OpKeyPut, second))
	if k, _ := e.ring.Signer("acme", ""); k.ID != first.ID {
		t.Fatalf("Signer changed without an invalidation: %s", k.ID)
	}
	if _, err := e.ring.PublicKey("acme", second.ID); err == nil {
		t.Fatal("the ring found a key it was not told about")
	}

	// Another tenant's invalidation leaves acme cached.
	e.ring.Invalidate("beta")
	if k, _ := e.ring.Signer("acme", ""); k.ID != first.ID {
		t.Fatalf("Invalidate(beta) reloaded acme")
	}
	e.ring.Invalidate("acme")
	if k, _ := e.ring.Signer("acme", ""); k.ID != second.ID {
		t.Fatalf("after Invalidate, Signer = %s, want %s", k.ID, second.ID)
	}
	if k, err := e.ring.PublicKey("acme", first.ID); err != nil || k.CanSign() {
		t.Fatalf("the retired key: %+v, %v; want published without its private half", k, err)
	}

	// "" drops every tenant.
	third, _ := directory.NewSigningKey(e.kek, "beta", "ES256", directory.KeyNext)
	e.applyQuiet(directory.MakeOp(directory.OpKeyPut, third))
	e.ring.Invalidate("")
	if b, _ := e.ring.JWKS("beta"); string(b) == string(betaBefore) || !strings.Contains(string(b), third.ID) {
		t.Errorf("after Invalidate(\"\"), beta's JWKS lacks %s", third.ID)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme")
	k0 := e.addKey("acme", "ES256", directory.KeyActive)
	rotate := func(wantChanges ...string) []string {
		t.Helper()
		ops, changes, err := RotationOps(e.store, e.kek, "acme", "", e.clock(), maxLifetime)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != len(wantChanges) {
			t.Fatalf("changes = %q, want %d starting with %q", changes, len(wantChanges), wantChanges)
		}
		for i, w := range wantChanges {
			if !strings.HasPrefix(changes[i], w) {
				t.Errorf("change %d = %q, want it to start with %q", i, changes[i], w)
			}
		}
		e.apply(ops...)
		return changes
	}
	jwksKids := func() []string {
		b, err := e.ring.JWKS("acme")
		if err != nil {
			t.Fatal(err)
		}
		var set jose.JSONWebKeySet
		json.Unmarshal(b, &set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		slices.Sort(kids)
		return kids
	}
	keys := func() map[string]directory.SigningKey {
		ks, _ := e.store.SigningKeys("acme")
		m := map[string]directory.SigningKey{}
		for _, k := range ks {
			m[k.ID] = k
		}
		return m
	}
	nextKey := func() directory.SigningKey {
		for _, k := range keys() {
			if k.State == directory.KeyNext {
				return k
			}
		}
		t.Fatal("no next key")
		return directory.SigningKey{}
	}
	verify := func(tok string, at time.Time) error {
		_, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, at)
		return err
	}
	signNow := func() string {
		tok, err := e.ring.SignJWT("acme", "", TypeAccessToken, accessClaims("acme", e.clock()))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// Step 1: the next key is published; the active key still signs.
	rotate("published next ES256 key")
	k1 := nextKey()
	if got, want := jwksKids(), slices.Sorted(slices.Values([]string{k0.ID, k1.ID})); !slices.Equal(got, want) {
		t.Errorf("after step 1, JWKS = %v, want %v", got, want)
	}
	if k, _ := e.ring.Signer("acme", ""); k.ID != k0.ID {
		t.Errorf("after step 1, Signer = %s, want the old active %s", k.ID, k0.ID)
	}
	e.advance(10 * time.Minute)
	oldTok := signNow() // signed by k0 just before it is retired; expires at now+15m
	oldSignedAt := e.clock()

	// Step 2: the next key signs, the old one is retired but still published and accepted.
	rotate("activated ES256 key "+k1.ID, "retired ES256 key "+k0.ID, "published next ES256 key")
	k2 := nextKey()
	if k, _ := e.ring.Signer("acme", ""); k.ID != k1.ID {
		t.Errorf("after step 2, Signer = %s, want %s", k.ID, k1.ID)
	}
	if h, _ := segments(t, signNow()); h["kid"] != k1.ID {
		t.Errorf("after step 2, tokens carry kid %v, want %s", h["kid"], k1.ID)
	}
	if got, want := jwksKids(), slices.Sorted(slices.Values([]string{k0.ID, k1.ID, k2.ID})); !slices.Equal(got, want) {
		t.Errorf("after step 2, JWKS = %v, want %v", got, want)
	}
	retired := keys()[k0.ID]
	if retired.State != directory.KeyRetired || !retired.NotAfter.Equal(oldSignedAt.Add(maxLifetime)) {
		t.Errorf("old key after step 2: state %s, not_after %v; want retired until %v", retired.State, retired.NotAfter, oldSignedAt.Add(maxLifetime))
	}
	if len(keys()[k1.ID].Private) == 0 {
		t.Error("the promoted key lost its private half")
	}
	// The old key's last token verifies until it expires, which is before the key's NotAfter.
	for _, at := range []time.Duration{0, 5 * time.Minute, 15*time.Minute + Leeway - time.Second} {
		if err := verify(oldTok, oldSignedAt.Add(at)); err != nil {
			t.Errorf("the old key's token at +%v: %v", at, err)
		}
	}

	// Past NotAfter, the next rotation deletes the old key: its tokens are refused for its kid, whatever
	// their exp says.
	e.advance(maxLifetime + time.Second)
	if slices.Contains(jwksKids(), k0.ID) {
		t.Error("past NotAfter, the old key is still in the JWKS")
	}
	rotate("deleted retired ES256 key "+k0.ID, "activated ES256 key "+k2.ID, "retired ES256 key "+k1.ID, "published next ES256 key")
	if _, ok := keys()[k0.ID]; ok {
		t.Error("the rotation did not delete the expired key")
	}
	if err := verify(oldTok, oldSignedAt.Add(time.Minute)); err == nil || !strings.Contains(err.Error(), ErrUnknownKey.Error()) {
		t.Errorf("the deleted key's token: %v, want refused as an unknown key", err)
	}
	if k, _ := e.ring.Signer("acme", ""); k.ID != k2.ID {
		t.Errorf("after step 3, Signer = %s, want %s", k.ID, k2.ID)
	}

	// Rotating another alg leaves ES256 alone; its first rotation only publishes.
	ops, changes, err := RotationOps(e.store, e.kek, "acme", "RS256", e.clock(), maxLifetime)
	if err != nil || len(ops) != 1 || !strings.HasPrefix(changes[0], "published next RS256 key") {
		t.Fatalf("RS256 rotation: %d ops, %q, %v", len(ops), changes, err)
	}
	e.apply(ops...)
	if _, err := e.ring.Signer("acme", "RS256"); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("RS256 signs after one rotation: %v", err)
	}
	ops, _, _ = RotationOps(e.store, e.kek, "acme", "RS256", e.clock(), maxLifetime)
	e.apply(ops...)
	if k, err := e.ring.Signer("acme", "RS256"); err != nil || k.Alg != "RS256" {
		t.Errorf("RS256 after two rotations: %v", err)
	}
	if k, _ := e.ring.Signer("acme", ""); k.ID != k2.ID {
		t.Errorf("rotating RS256 changed the ES256 signer to %s", k.ID)
	}
}

func TestRotationOpsRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme")
	tests := []struct {
		name, tenant, alg string
		lifetime          time.Duration
		notFound          bool
	}{
		{"unknown tenant", "nope", "", time.Hour, true},
		{"HS256", "acme", "HS256", time.Hour, false},
		{"none", "acme", "none", time.Hour, false},
		{"negative lifetime", "acme", "", -time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops, _, err := RotationOps(e.store, e.kek, tc.tenant, tc.alg, t0, tc.lifetime)
			if err == nil {
				t.Fatalf("planned %d ops", len(ops))
			}
			if de, ok := directory.AsError(err); ok != tc.notFound || ok && de.Code != directory.CodeNotFound {
				t.Errorf("error %v: directory not-found = %v, want %v", err, ok, tc.notFound)
			}
		})
	}
}

func TestAtHash(t *testing.T) {
	t.Parallel()
	// Expected values computed independently (Python hashlib).
	const tok = "jHkWEdUXMU1BwAsC4vtUsZwnNBBZV5kpbUz6pkjcVRw"
	tests := []struct{ alg, want string }{
		{"ES256", "uK-AVdvnOgLj6XdP5unl7g"},
		{"RS256", "uK-AVdvnOgLj6XdP5unl7g"},
		{"", "uK-AVdvnOgLj6XdP5unl7g"},
		{"ES384", "GDqKTKgZR-n5mtEJa4rEDHvniIVHUj2P"},
		{"EdDSA", "G-ikkbHFcMYEJkh5rsAytg_rHCOaeneb7icAuh1IHNM"},
		{"none", ""},
	}
	for _, tc := range tests {
		if got := AtHash(tc.alg, tok); got != tc.want {
			t.Errorf("AtHash(%q) = %q, want %q", tc.alg, got, tc.want)
		}
	}
}

func TestRawECDSASignature(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		der  []byte
		want []byte // nil: refused
	}{
		{"short integers are left-padded", []byte{0x30, 6, 2, 1, 5, 2, 1, 7}, append(append(make([]byte, 31), 5), append(make([]byte, 31), 7)...)},
		{"a leading zero octet is dropped", append([]byte{0x30, 70, 2, 33, 0}, append(filled(32, 0x80), append([]byte{2, 33, 0}, filled(32, 0x81)...)...)...), append(filled(32, 0x80), filled(32, 0x81)...)},
		{"too long an integer", append([]byte{0x30, 70, 2, 33, 1}, append(filled(32, 0x80), append([]byte{2, 33, 0}, filled(32, 0x81)...)...)...), nil},
		{"not a sequence", []byte{0x31, 6, 2, 1, 5, 2, 1, 7}, nil},
		{"wrong length", []byte{0x30, 7, 2, 1, 5, 2, 1, 7}, nil},
		{"trailing bytes", []byte{0x30, 8, 2, 1, 5, 2, 1, 7, 0, 0}, nil},
		{"one integer", []byte{0x30, 3, 2, 1, 5}, nil},
		{"empty", nil, nil},
	}
	for _, tc := range tests {
		got, err := appendRawECDSA(nil, tc.der, 32)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: accepted as %x", tc.name, got)
			}
			continue
		}
		if err != nil || string(got) != string(tc.want) {
			t.Errorf("%s: %x, %v; want %x", tc.name, got, err, tc.want)
		}
	}
}

func filled(n int, b byte) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

// TestConcurrentUse signs and verifies from many goroutines while keys rotate and the ring is
// invalidated; run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "acme")
	e.addKey("acme", "ES256", directory.KeyActive)
	e.addKey("acme", "EdDSA", directory.KeyActive)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			alg := []string{"ES256", "EdDSA"}[g%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, err := e.ring.SignJWT("acme", alg, TypeAccessToken, accessClaims("acme", t0))
				if err != nil {
					errs <- err
					return
				}
				if _, err := e.ring.VerifyAccessToken("acme", issuer("acme"), tok, t0); err != nil {
					errs <- err
					return
				}
				if _, err := e.ring.JWKS("acme"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 6 {
		ops, _, err := RotationOps(e.store, e.kek, "acme", "", t0, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.apply(ops...)
		e.ring.Invalidate("")
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(slices.Collect(maps.Keys(func() map[string]bool {
		m := map[string]bool{}
		ks, _ := e.store.SigningKeys("acme")
		for _, k := range ks {
			m[k.ID] = true
		}
		return m
	}()))); n != 8 {
		t.Errorf("after 6 rotations the tenant has %d keys, want 8 (1 EdDSA, 1 next, 1 active, 5 retired ES256)", n)
	}
}
