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
//
//   - Otherwise the request needs a bearer access token of the route's tenant (RFC 6750 section 2.1),
//     verified locally (signature, typ at+jwt, issuer, time), with an audience that is the tenant's issuer
//     or the route's own origin, a jti that is not revoked, a session (sid) that is not ended and a
//     subject that is a user of the tenant who is not blocked; or, without an Authorization header, the
//     host's session cookie, whose tenant session must be live and whose user not blocked.
//
//   - Without either: a browser (Accept names text/html) is redirected to /.postern/sign_in?rd=<path> on
//     the same host; any other client gets 401 with WWW-Authenticate: Bearer realm="<host>", plus
//     error="invalid_token" when it sent a token (RFC 6750 section 3).
//
//   - Signed in: the route's allow.groups (any of them) must hold, and so must the rules of the longest
//     allow.paths prefix that matches: one of them must list the method (no methods: any) and hold for
//     its groups (no groups: any signed-in user). Otherwise 403.
//
//   - A browser signs in through a real OIDC code flow with the tenant, run on the routed host (signin.go):
//     /.postern/sign_in?rd= sends it to the tenant's authorize endpoint with state, nonce and PKCE kept in
//     a sealed cookie; /.postern/callback redeems the code at the token endpoint (dispatched in process,
//     the same handler as any client's) and verifies the ID token as a relying party does, then sets the
//     host's session cookie: sealed under the KEK for that host, naming the tenant session. Return URLs
//     are paths on the same host only, in every percent-decoding. /.postern/sign_out ends the tenant
//     session. The cookie is checked like a token: opened once and cached, its session checked on every
//     request.
//
//   - Forward-auth (forwardauth.go) gives the same decisions to a proxy in front (nginx, Traefik, Caddy,
//     Envoy) with the identity in response headers.
//
// Paths under /.postern/ on a routed host are Postern's (CONTRACT.md) and never forwarded.
//
// # Revocation and caches
//
// Every check a request needs is answered from memory: routes, verified tokens and opened cookies, users
// with their groups, session states and token revocations. Each cache entry is dropped by the apply
// notification of the record it came from ([Proxy.Invalidate]), and a load that raced a notification is
// not kept, so a revocation is honoured on the node that applies it as soon as it is applied, and on
// every other node as soon as it has replicated there.
//
// A proxied request takes none of the proxy's locks to decide: the caches it reads are immutable maps
// behind atomic pointers (snapshot for routes and extensions, hotCache for tokens, cookies, users and
// states), replaced whole by their writers, so reads on different cores do not contend (cache.go,
// hotcache.go). The upstream pool's own lock (fasthttp's) remains.
//
// # Notes
//
// Path decisions use the normalised path (fasthttp removes dot segments and decodes), and the upstream
// is sent that same normalised path, so /public/../admin cannot be decided as one path and served as
// another.
//
// Bodies are not buffered by the proxy: an upstream answer is streamed to the client unless it is short
// and of known length (then it is read whole, which frees the upstream connection at once; see
// transport.go), and the request body goes upstream as the edge server hands it over,
// streamed when the server runs with StreamRequestBody, otherwise the server's (bounded) buffer.
//
// Upstream timeouts are idle timeouts, like nginx's proxy_read_timeout: each read from and write to the
// upstream connection must progress within [Config.UpstreamTimeout], so a slow first byte gives 504 and a
// long download that keeps flowing is not cut.
//
// WebSockets pass through (RFC 6455): an opening handshake (a bodiless GET with Connection: upgrade and
// Upgrade: websocket) is decided like any request and sent, identity attached, on an upstream connection
// of its own. If the upstream answers 101, the client's connection is hijacked and bytes are relayed
// both ways until either side closes; any other answer goes back as it is. The handshake runs under the
// upstream timeouts, the relayed stream under none: quiet sockets are normal, and apps watch them with
// their own pings. A hijacked connection outlives the edge server's graceful shutdown.
package proxy
