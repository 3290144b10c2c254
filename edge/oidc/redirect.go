package oidc

import (
	"slices"
	"strings"

	"postern.dev/postern/directory"
)

// redirectAllowed is exact matching of a redirect URI against the app's registered ones (RFC 9700
// section 4.1.1: simple string comparison, no normalisation), with the one exception RFC 8252 section
// 7.3 makes for native apps: on a loopback IP literal, the port may vary.
func redirectAllowed(app directory.App, uri string) bool {
	if uri == "" || len(uri) > 2048 {
		return false
	}
	if slices.Contains(app.RedirectURIs, uri) {
		return true
	}
	if app.Type != directory.AppNative {
		return false
	}
	host, rest, ok := loopbackParts(uri)
	if !ok {
		return false
	}
	for _, r := range app.RedirectURIs {
		if h, rr, ok := loopbackParts(r); ok && h == host && rr == rest {
			return true
		}
	}
	return false
}

// loopbackParts splits "http://127.0.0.1:PORT/rest" (or [::1]) into the host and what follows the port.
func loopbackParts(uri string) (host, rest string, ok bool) {
	for _, h := range []string{"127.0.0.1", "[::1]"} {
		after, found := strings.CutPrefix(uri, "http://"+h)
		if !found {
			continue
		}
		if strings.HasPrefix(after, ":") {
			i := 1
			for i < len(after) && after[i] >= '0' && after[i] <= '9' {
				i++
			}
			if i == 1 || i > 6 {
				return "", "", false
			}
			after = after[i:]
		}
		if after != "" && after[0] != '/' {
			return "", "", false
		}
		return h, after, true
	}
	return "", "", false
}
