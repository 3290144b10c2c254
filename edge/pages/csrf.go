package pages

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// CSRF issues and checks the anti-forgery tokens of the hosted pages' forms. A token is an HMAC-SHA256,
// under a server key, of the browser's session binding (a random pre-session cookie value the HTTP layer
// sets) and the time the token was issued; the time travels in the token in the clear, so a token says
// when it expires without any server state. A forged cross-site POST carries the victim's cookie but
// cannot know a token bound to it.
//
// A CSRF is safe for concurrent use. Every edge node must hold the same key.
type CSRF struct {
	key []byte
}

const (
	csrfVersion = 1
	csrfMACSize = sha256.Size
	csrfRawSize = 1 + 8 + csrfMACSize
	// csrfSkew is how far in the future a token's issue time may be, for edges whose clocks differ a little.
	csrfSkew = 2 * time.Minute
)

// NewCSRF returns a CSRF keyed with key, which it copies. A key shorter than 16 bytes is a programming
// error and panics: tokens under it could be forged.
func NewCSRF(key []byte) *CSRF {
	if len(key) < 16 {
		panic("pages: CSRF key shorter than 16 bytes")
	}
	return &CSRF{key: bytes.Clone(key)}
}

// Token returns a URL-safe token bound to sessionBinding and issued at now.
func (c *CSRF) Token(sessionBinding string, now time.Time) string {
	raw := make([]byte, 0, csrfRawSize)
	raw = append(raw, csrfVersion)
	raw = binary.BigEndian.AppendUint64(raw, uint64(now.Unix()))
	raw = append(raw, c.mac(raw[1:9], sessionBinding)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Check reports whether token was issued by this key for sessionBinding no longer than maxAge before now.
// The MAC is compared in constant time. An empty binding never checks: without the pre-session cookie
// there is nothing to bind to.
func (c *CSRF) Check(token, sessionBinding string, now time.Time, maxAge time.Duration) bool {
	if sessionBinding == "" || len(token) != base64.RawURLEncoding.EncodedLen(csrfRawSize) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != csrfRawSize || raw[0] != csrfVersion {
		return false
	}
	if !hmac.Equal(raw[9:], c.mac(raw[1:9], sessionBinding)) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[1:9])), 0)
	return !issued.After(now.Add(csrfSkew)) && now.Sub(issued) <= maxAge
}

func (c *CSRF) mac(issued []byte, binding string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("postern csrf v1\x00"))
	m.Write(issued) // fixed length, so binding's bytes cannot be confused with the time's
	m.Write([]byte(binding))
	return m.Sum(nil)
}
