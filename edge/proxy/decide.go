package proxy

import (
	"slices"
	"strings"

	"postern.dev/postern/directory"
)

// reservedPrefix is the path space Postern keeps on every routed host (CONTRACT.md).
const reservedPrefix = "/.postern/"

func reserved(path string) bool {
	return strings.HasPrefix(path, reservedPrefix) || path == strings.TrimSuffix(reservedPrefix, "/")
}

// public reports whether path is under one of the route's public prefixes.
func public(rt *directory.Route, path string) bool {
	for _, pp := range rt.PublicPaths {
		if pp != "" && strings.HasPrefix(path, pp) {
			return true
		}
	}
	return false
}

// allowed decides whether a signed-in user with the given group names may make the request: the route's
// groups (when it names any) must hold, and among the path rules with the longest prefix that matches
// path, one must list the method (or none) and hold for its groups (or name none).
func allowed(a directory.Allow, method, path string, groups []string) bool {
	if len(a.Groups) > 0 && !anyIn(a.Groups, groups) {
		return false
	}
	longest := -1
	for _, r := range a.Paths {
		if strings.HasPrefix(path, r.Prefix) && len(r.Prefix) > longest {
			longest = len(r.Prefix)
		}
	}
	if longest < 0 {
		return true
	}
	for _, r := range a.Paths {
		if len(r.Prefix) != longest || !strings.HasPrefix(path, r.Prefix) {
			continue
		}
		if len(r.Methods) > 0 && !slices.Contains(r.Methods, method) {
			continue
		}
		if len(r.Groups) == 0 || anyIn(r.Groups, groups) {
			return true
		}
	}
	return false
}

func anyIn(want, have []string) bool {
	for _, g := range want {
		if slices.Contains(have, g) {
			return true
		}
	}
	return false
}
