// Package tokens signs and verifies the JSON Web Tokens the edge issues: ID tokens (OpenID Connect Core
// section 2), access tokens (RFC 9068, typ "at+jwt") and the proxy's identity assertions, with each
// tenant's own signing keys. It also publishes those keys as a JWK Set (RFC 7517) and plans their
// rotation.
//
// It exists apart from the OIDC handlers for two reasons. Speed: issuing a token must cost little more
// than its one signature (the goal is 10,000 client-credentials tokens per second per core), so a
// [KeyRing] keeps every tenant's keys unsealed and parsed in memory, prebuilds each key's JWS header, and
// signs with the standard library directly; neither Badger nor the key-encryption key is touched per
// token. Safety: verification is one function with every check in it (an allowlist of asymmetric
// algorithms, the key looked up by kid among the tenant's own keys only, the alg of that key, the token
// type, the issuer, the times), so no handler can forget one.
//
// # Key lifecycle
//
// A tenant's keys move through the states of the directory (next, active, retired; see
// directory.SigningKey). [RotationOps] plans one rotation step: a new key is published as next before it
// signs, so relying parties that cache the JWK Set already know it when its first token arrives; the key
// it replaces is kept, retired, until every token it signed has expired.
//
// # Notes
//
//   - The ring caches what it read: wire [KeyRing.Invalidate] to the cluster's apply notifications for
//     changes of kind "key" and "tenant".
//   - Private halves are unsealed only for active keys: next and retired keys are held as public keys.
//   - JWS: RFC 7515; JWT: RFC 7519; JWK: RFC 7517; algorithms: RFC 7518 and RFC 8037 (EdDSA).
package tokens
