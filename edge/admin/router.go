package admin

import "strings"

// route is one admin endpoint. Pattern segments in braces are parameters: "/admin/v1/tenants/{tenant}".
type route struct {
	method  string
	pattern string
	public  bool // answered without the admin token
	handle  func(c *call) error
}

// match reports whether path fits pattern and fills params.
func match(pattern, path string, params map[string]string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return false
			}
			params[p[1:len(p)-1]] = xs[i]
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return true
}
