// Package proxy puts Postern in front of apps: a request whose Host is a tenant's route is decided here
// (public path, bearer access token, allow rules) and, when allowed, forwarded to the route's upstream
// with the identity attached.
//
// The proxy is an edge handler ([Proxy.Handle]) tried before the OIDC provider, so a routed host never
// reaches the provider's endpoints.
//
// # Decisions
//
//   - A path under one of the route's public_paths prefixes is forwarded without identity.
//   - Otherwise the request needs a bearer access token of the route's tenant (RFC 6750 section 2.1),
//     verified locally (signature, typ at+jwt, issuer, time), with an audience that is the tenant's issuer
//     or the route's own origin, a jti that is not revoked, a session (sid) that is not ended and a
//     subject that is a user of the tenant who is not blocked.
//   - Without one: a browser (Accept names text/html) is redirected to /.postern/sign_in?rd=<path> on
//     the same host; any other client gets 401 with WWW-Authenticate: Bearer realm="<host>", plus
//     error="invalid_token" when it sent a token (RFC 6750 section 3).
//   - Signed in: the route's allow.groups (any of them) must hold, and so must the rules of the longest
//     allow.paths prefix that matches: one of them must list the method (no methods: any) and hold for
//     its groups (no groups: any signed-in user). Otherwise 403.
//
// Paths under /.postern/ on a routed host are reserved for Postern (sign-in callback and sign-out, per
// CONTRACT.md); this slice answers them 404 and never forwards them.
//
// # Notes
//
// Path decisions use the normalised path (fasthttp removes dot segments and decodes), and the upstream
// is sent that same normalised path, so /public/../admin cannot be decided as one path and served as
// another.
//
// Bodies are not buffered by the proxy: the upstream response is streamed to the client (the HostClient
// runs with StreamResponseBody), and the request body goes upstream as the edge server hands it over,
// streamed when the server runs with StreamRequestBody, otherwise the server's (bounded) buffer.
//
// Upstream timeouts are idle timeouts, like nginx's proxy_read_timeout: each read from and write to the
// upstream connection must progress within [Config.UpstreamTimeout], so a slow first byte gives 504 and a
// long download that keeps flowing is not cut.
package proxy
