package manifest

import (
	"strings"
	"testing"
)

func TestCheckPublicJWKS(t *testing.T) {
	good := `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
	tests := []struct {
		name, jwks, want string
	}{
		{"public EC key", good, ""},
		{"not JSON", `{keys`, "not a JSON Web Key Set"},
		{"no keys", `{"keys":[]}`, "no keys"},
		{"symmetric", `{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}`, "kty must be"},
		{"private EC", strings.Replace(good, `"kid":"k1"`, `"kid":"k1","d":"jpsQnnGQmL-YBIffH1136cLyQ4Zl7cN6xuMkWxHCdCI"`, 1), "private member"},
		{"no kid", strings.Replace(good, `"kid":"k1",`, ``, 1), "kid is required"},
	}
	for _, tc := range tests {
		got := CheckPublicJWKS(tc.jwks)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	m := &Manifest{Tenant: "acme", Apps: []App{{Name: "spa", Type: AppSPA, RedirectURIs: []string{"https://a.example/cb"}, JWKS: good}}}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "apps[0].jwks") {
		t.Errorf("jwks on a public client: %v", err)
	}
}
