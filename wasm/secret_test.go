package wasm

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"postern.dev/postern/directory"
)

// secretsKEK seals secrets as a node's directory holds them, and opens them as a node's Config.Secret does.
func secretsKEK(t *testing.T) *directory.KEK {
	t.Helper()
	k, err := directory.NewKEK([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sealSecrets(t *testing.T, kek *directory.KEK, ext directory.Extension, plain map[string]string) map[string]directory.Sealed {
	t.Helper()
	s, err := directory.SealExtensionSecrets(kek, ext.Tenant, ext.ID, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSecretGet runs the probe guest, which reads the secret api_key and one that is not set through
// sdk.Secret (secret_get): the node's hook opens what the directory sealed, a name not set is not set,
// and secrets are not configuration.
func TestSecretGet(t *testing.T) {
	const value = "sk_live_probe_3f9a1c7e"
	kek := secretsKEK(t)
	probe := func(t *testing.T, h *harness, ext directory.Extension) map[string]any {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal([]byte(h.mustInvoke(t, ext, `{}`)), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name    string
		hook    bool
		secrets map[string]string
		want    any // the probe's "secret"
	}{
		{"set", true, map[string]string{"api_key": value, "other": "x"}, value},
		{"not set", true, map[string]string{"other": "x"}, ""},
		{"no secrets", true, nil, ""},
		{"a runtime without the hook", false, map[string]string{"api_key": value}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				if tc.hook {
					c.Secret = kek.ExtensionSecret
				}
			})
			ext := h.ext("acme", "probe", guest(t, "testdata/probe"))
			ext.Config = map[string]string{"greeting": "hello"}
			ext.Secrets = sealSecrets(t, kek, ext, tc.secrets)
			got := probe(t, h, ext)
			if got["secret"] != tc.want || got["secret_missing"] != true || got["secret_in_config"] != false || got["config"] != "hello" {
				t.Errorf("probe read secret %q (missing one not set: %v, api_key in config: %v, config %v); want %q",
					got["secret"], got["secret_missing"], got["secret_in_config"], got["config"], tc.want)
			}
			if strings.Contains(h.log.String(), value) {
				t.Errorf("the log holds the secret:\n%s", h.log.String())
			}
		})
	}
}

// A secret that does not open (sealed for another extension, or a node with another KEK) fails the call
// as the host's failure, not the guest's trap; the error names the secret and never holds its value.
func TestSecretGetHostFailure(t *testing.T) {
	const value = "sk_live_elsewhere_8d2b"
	kek := secretsKEK(t)
	h := newHarness(t, func(c *Config) { c.Secret = kek.ExtensionSecret })
	ext := h.ext("evil", "probe", guest(t, "testdata/probe"))
	// Sealed for tenant acme's extension of the same id, then copied here.
	ext.Secrets = sealSecrets(t, kek, directory.Extension{Tenant: "acme", ID: "probe"}, map[string]string{"api_key": value})
	b := newBystander(t, h)
	_, err := h.invoke(t, ext, `{}`)
	if err == nil {
		t.Fatal("the call succeeded with a secret that does not open")
	}
	t.Logf("error: %v", err)
	for _, kind := range []error{ErrTrap, ErrTimeout, ErrLimit, ErrBadOutput, ErrBadModule, ErrFailed, ErrClosed} {
		if errors.Is(err, kind) {
			t.Errorf("error %v is %v, want the host's failure", err, kind)
		}
	}
	for _, want := range []string{"evil/probe", "secret_get", "api_key"} {
		wantContains(t, err.Error(), want)
	}
	if strings.Contains(err.Error(), value) || strings.Contains(h.log.String(), value) {
		t.Errorf("the error or the log holds the secret: %v\n%s", err, h.log.String())
	}
	b.check(t)
}

// The loyalty example sends its api_key secret to the tenant's service as a bearer token, and nothing
// when the secret is not set.
func TestLoyaltyExampleAPIKey(t *testing.T) {
	const key = "sk_live_loyalty_0a1b2c3d"
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"valid"}`)
	}))
	t.Cleanup(srv.Close)
	kek := secretsKEK(t)
	h := newHarness(t, func(c *Config) { c.Secret = kek.ExtensionSecret })
	ext := h.ext("acme", "loyalty", guest(t, "examples/loyalty"))
	ext.Events = []string{"OnAttributeCollectionSubmit"}
	ext.AllowedHosts = []string{"127.0.0.1"}
	ext.Config = map[string]string{"service_url": srv.URL + "/check"}
	ext.Secrets = sealSecrets(t, kek, ext, map[string]string{"api_key": key})

	got := h.mustInvoke(t, ext, signUp(map[string]string{"email": "a@acme.test", "loyalty_id": "LOY-1"}))
	wantContains(t, got, "attributeCollectionSubmit.continueWithDefaultBehavior")

	// Without the secret the service refuses, and the guest reports the failure.
	ext.Secrets, ext.Version = nil, 2
	if _, err := h.invoke(t, ext, signUp(map[string]string{"loyalty_id": "LOY-2"})); !errors.Is(err, ErrFailed) {
		t.Errorf("without the api_key: %v, want ErrFailed", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auths) != 2 || auths[0] != "Bearer "+key || auths[1] != "" {
		t.Errorf("the service saw Authorization %q, want the bearer key, then none", auths)
	}
}
