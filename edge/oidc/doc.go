// Package oidc is the OpenID Connect provider and OAuth 2.0 authorization server of every tenant, served
// by the edge under the tenant's issuer ({public-url}/{tenant}).
//
// One file per protocol area, after dex and fosite: discovery.go (OIDC discovery and RFC 8414 metadata),
// token.go with a registry of grant handlers (grant_*.go), clientauth.go, code.go (the sealed
// authorization code), userinfo.go, revoke.go (RFC 7009), introspect.go (RFC 7662). Handlers return
// *Error values; errors.go renders them exactly as RFC 6749 says, and nothing else reaches a client.
//
// Hot paths read only the local replica and in-memory caches; a code redemption and a refresh are one raft
// write each, a client_credentials grant none.
package oidc
