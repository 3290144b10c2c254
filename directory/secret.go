package directory

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id with OWASP's minimum parameters (m=19 MiB, t=2, p=1), in the PHC string
// format so parameters can be raised later without invalidating stored hashes.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32

	// The largest costs VerifyPassword accepts from a stored hash: far above today's, far below harm.
	argonMaxMemory = 1 << 20 // KiB: 1 GiB
	argonMaxTime   = 64
)

// argonSlots caps concurrent argon2id runs at the number of CPUs: each takes 19 MiB, and more of them at
// once than there are cores only adds memory churn (allocation, page faults, GC) to the same CPU work.
var argonSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

func argonKey(password, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return argon2.IDKey(password, salt, t, m, p, n)
}

// HashPassword hashes a password for storage. It is slow on purpose (about 20 ms); proposers call it,
// never Apply.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argonKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks a password against a stored hash in constant time.
func VerifyPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("password hash is not argon2id")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("password hash has an unknown argon2 version")
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, errors.New("password hash has malformed parameters")
	}
	// argon2 panics on t=0 or p=0, and absurd costs would stall or exhaust the node: bound them.
	if t < 1 || t > argonMaxTime || p < 1 || m < 8*uint32(p) || m > argonMaxMemory {
		return false, errors.New("password hash has out-of-range parameters")
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("password hash has a malformed salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errors.New("password hash has a malformed key")
	}
	got := argonKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Client secrets are random and long (at least 32 characters), so a salted SHA-256 is enough and keeps the
// token endpoint fast; a slow hash would cost more per client_credentials grant than signing the token.

// NewClientSecret returns a new random client secret (256 bits, URL-safe base64).
func NewClientSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("directory: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashClientSecret hashes a client secret for storage.
func HashClientSecret(secret string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic("directory: crypto/rand failed: " + err.Error())
	}
	sum := sha256.Sum256(append(salt, secret...))
	b64 := base64.RawURLEncoding
	return "sha256$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(sum[:])
}

// VerifyClientSecret checks a client secret against one stored hash in constant time.
func VerifyClientSecret(hash, secret string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 3 || parts[0] != "sha256" {
		return false
	}
	b64 := base64.RawURLEncoding
	salt, err1 := b64.DecodeString(parts[1])
	want, err2 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return false
	}
	sum := sha256.Sum256(append(salt, secret...))
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}

// AppSecretMatches reports whether secret matches any of the app's current secrets.
func AppSecretMatches(app App, secret string) bool {
	ok := false
	for _, h := range app.Secrets {
		if VerifyClientSecret(h.Hash, secret) {
			ok = true
		}
	}
	return ok
}
