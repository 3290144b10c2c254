package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"postern.dev/postern/directory"
)

// An app may ask for RS256 or EdDSA ID tokens; the tenant gets a key of that alg, and go-oidc verifies.
func TestPerAppSigningAlgorithms(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, e.issuer("acme"))
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"RS256", "EdDSA"} {
		id := strings.ToLower(alg)
		keyOps, _, err := directory.MissingKeyOps(e.store, e.kek, "acme", alg)
		if err != nil || len(keyOps) != 1 {
			t.Fatalf("%s: %d key ops, %v", alg, len(keyOps), err)
		}
		e.propose(append(keyOps, directory.MakeOp(directory.OpAppCreate, directory.App{ID: id, Tenant: "acme", Name: id, ClientID: id,
			Type: directory.AppWeb, Secrets: []directory.SecretHash{{Hash: directory.HashClientSecret(e.secret)}},
			RedirectURIs: []string{redirectURI}, GrantTypes: []string{"authorization_code"}, SigningAlg: alg}))...)
		b := e.browser()
		q, _ := e.signInThrough(b, e.issuer("acme")+"/authorize?"+url.Values{"response_type": {"code"}, "client_id": {id},
			"redirect_uri": {redirectURI}, "scope": {"openid"}}.Encode(), "ann@example.com", password)
		status, tok := e.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "client_id": {id},
			"client_secret": {e.secret}, "redirect_uri": {redirectURI}})
		if status != 200 {
			t.Fatalf("%s: token %d %v", alg, status, tok)
		}
		raw := tok["id_token"].(string)
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
		var h map[string]any
		json.Unmarshal(hdr, &h)
		if h["alg"] != alg {
			t.Errorf("%s app got an ID token signed %v", alg, h["alg"])
		}
		v := provider.Verifier(&gooidc.Config{ClientID: id, SupportedSigningAlgs: []string{alg}})
		idt, err := v.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("%s: go-oidc: %v", alg, err)
		}
		if err := idt.VerifyAccessToken(tok["access_token"].(string)); err != nil {
			t.Errorf("%s: at_hash: %v", alg, err)
		}
	}
}
