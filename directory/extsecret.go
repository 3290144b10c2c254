package directory

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// SealExtensionSecrets seals an extension's secrets for storage, each bound to the tenant, the extension
// and its name. A value that old (the stored record's) already holds keeps its sealed bytes: sealing
// draws a fresh nonce, so without that every apply of an unchanged manifest would write a new version.
// It reads randomness, so proposers call it, never Apply. No secrets give nil.
func SealExtensionSecrets(kek *KEK, tenant, extension string, plain map[string]string, old map[string]Sealed) (map[string]Sealed, error) {
	if len(plain) == 0 {
		return nil, nil
	}
	if kek == nil {
		return nil, errors.New("sealing extension secrets: no key-encryption key")
	}
	out := make(map[string]Sealed, len(plain))
	for name, value := range plain {
		ctx := ExtensionSecretContext(tenant, extension, name)
		if prev, ok := old[name]; ok {
			if got, err := kek.Open(prev, ctx); err == nil && subtle.ConstantTimeCompare(got, []byte(value)) == 1 {
				out[name] = prev
				continue
			}
		}
		sealed, err := kek.Seal([]byte(value), ctx)
		if err != nil {
			return nil, fmt.Errorf("sealing secret %s of extension %s: %w", name, extension, err)
		}
		out[name] = sealed
	}
	return out, nil
}

// ExtensionSecret opens one of ext's secrets; ok is false when ext has none by that name. Nodes hand it
// to their extension runtime, which so never holds the KEK. The error names the secret, never its value.
func (k *KEK) ExtensionSecret(ext Extension, name string) (value []byte, ok bool, err error) {
	s, found := ext.Secrets[name]
	if !found {
		return nil, false, nil
	}
	v, err := k.Open(s, ExtensionSecretContext(ext.Tenant, ext.ID, name))
	if err != nil {
		return nil, false, fmt.Errorf("opening secret %s of extension %s/%s: %w", name, ext.Tenant, ext.ID, err)
	}
	return v, true, nil
}

// SecretNames are the names of the extension's secrets, sorted: all the admin API shows of them.
func (e Extension) SecretNames() []string { return slices.Sorted(maps.Keys(e.Secrets)) }

// Public is the extension as the admin API shows it: without its secrets, not even sealed.
func (e Extension) Public() Extension {
	e.Secrets = nil
	return e
}
