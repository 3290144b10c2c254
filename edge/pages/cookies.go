package pages

// CookieName is the name under which a cookie is set. Over TLS it carries the __Host- prefix, which tells
// the browser to accept the cookie only when it is Secure, has Path=/ and no Domain, so a sibling subdomain
// can neither set nor shadow it. Over plain-http development the prefix would make the browser drop the
// cookie, so it is left off there.
//
// # Notes
//
//   - The prefix: https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#name-the-__host-prefix
func CookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// CookieAttrs are the attributes every Postern cookie carries, as they follow the name=value pair of a
// Set-Cookie header (without a leading "; "): Path=/ (which __Host- requires), HttpOnly, SameSite=Lax (so a
// top-level navigation back from an app still sends it, a cross-site POST does not), and Secure over TLS.
// Expiry (Max-Age) is for the caller to add.
func CookieAttrs(secure bool) string {
	if secure {
		return "Path=/; HttpOnly; SameSite=Lax; Secure"
	}
	return "Path=/; HttpOnly; SameSite=Lax"
}
