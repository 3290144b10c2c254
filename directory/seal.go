package directory

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sealed is a secret encrypted with the KEK (AES-256-GCM). Its first byte is the format version, then the
// 12-byte nonce, then ciphertext and tag. The additional data binds it to where it is stored, so a sealed
// value copied to another tenant or record does not open.
type Sealed []byte

const sealVersion = 1

// KEK is the key-encryption key for secrets at rest. It is given to every node by file or environment and
// never stored in the directory, so a copy of the data directory alone reveals no signing key or TOTP seed.
type KEK struct {
	aead cipher.AEAD
	raw  []byte
}

// NewKEK makes a KEK from 32 key bytes.
func NewKEK(key []byte) (*KEK, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("key-encryption key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &KEK{aead: aead, raw: bytes.Clone(key)}, nil
}

// DeriveKey returns a 32-byte key for one purpose (HKDF-SHA256 of the KEK), so MACs such as CSRF tokens
// share no key with sealing and every node derives the same one.
func (k *KEK) DeriveKey(purpose string) []byte {
	b, err := hkdf.Key(sha256.New, k.raw, nil, "postern/"+purpose, 32)
	if err != nil {
		panic("directory: hkdf: " + err.Error())
	}
	return b
}

// ParseKEK reads a KEK from its text form: 32 bytes in standard or URL-safe base64.
func ParseKEK(text string) (*KEK, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			return NewKEK(b)
		}
	}
	return nil, errors.New("key-encryption key is not base64 text")
}

// LoadKEKFile reads a KEK file written by GenerateKEKFile (or by hand: 32 bytes of base64 text).
func LoadKEKFile(path string) (*KEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key-encryption key: %w", err)
	}
	k, err := ParseKEK(string(b))
	if err != nil {
		return nil, fmt.Errorf("reading key-encryption key %s: %w", path, err)
	}
	return k, nil
}

// GenerateKEKFile writes a new random KEK to path with mode 0600, refusing to replace an existing file.
func GenerateKEKFile(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing key-encryption key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Seal encrypts plaintext bound to context (for example "signing-key/acme/k1"). It reads randomness, so
// only proposers call it, never Apply.
func (k *KEK) Seal(plaintext []byte, context string) (Sealed, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+k.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, []byte(context)), nil
}

// Open decrypts a sealed value with the context it was sealed for.
func (k *KEK) Open(s Sealed, context string) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(s) < 1+n+k.aead.Overhead() || s[0] != sealVersion {
		return nil, errors.New("sealed secret is malformed")
	}
	p, err := k.aead.Open(nil, s[1:1+n], s[1+n:], []byte(context))
	if err != nil {
		return nil, errors.New("sealed secret does not open with this key-encryption key (wrong key or context)")
	}
	return p, nil
}

// Seal contexts: each kind of secret is bound to its tenant and record.

// SigningKeyContext binds a sealed signing key to its tenant and kid.
func SigningKeyContext(tenant, kid string) string { return "signing-key/" + tenant + "/" + kid }

// CredentialContext binds a sealed credential secret (a TOTP seed) to its user and credential.
func CredentialContext(tenant, user, cred string) string {
	return "credential/" + tenant + "/" + user + "/" + cred
}

// IdPSecretContext binds a sealed identity-provider client secret to its tenant and provider.
func IdPSecretContext(tenant, idp string) string { return "idp-secret/" + tenant + "/" + idp }

// ExtensionSecretContext binds a sealed extension secret to its tenant, extension and name.
func ExtensionSecretContext(tenant, extension, name string) string {
	return "extension-secret/" + tenant + "/" + extension + "/" + name
}
