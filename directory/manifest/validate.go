package manifest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	tenantRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	nameRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	attrNameRe  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	clientIDRe  = regexp.MustCompile(`^[A-Za-z0-9._~-]{3,128}$`)
	localeRe    = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
	colorRe     = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
	colorNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	messageIDRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	dataLogoRe  = regexp.MustCompile(`^data:image/(png|jpeg|gif|webp|svg\+xml);base64,`)
)

// reserved are tenant ids that collide with the edge's own paths (CONTRACT.md, "URLs on the edge listener").
var reserved = map[string]bool{
	"admin": true, "api": true, "healthz": true, "readyz": true, "metrics": true, "static": true,
	"assets": true, "well-known": true, "oauth2": true, "oidc": true, "postern": true, "login": true,
	"logout": true, "sign-in": true, "sign-up": true, "authorize": true, "token": true, "jwks": true,
	"userinfo": true, "favicon-ico": true, "robots-txt": true,
}

// Reserved reports whether id is a tenant id refused because it collides with the edge's own paths
// ("admin", "healthz", "well-known", ...).
func Reserved(id string) bool { return reserved[id] }

// ValidTenantID returns nil when id can name a tenant: 3 to 63 characters of a-z, 0-9 and "-", starting and
// ending with a letter or digit, and not [Reserved].
func ValidTenantID(id string) error {
	switch {
	case id == "":
		return errors.New("a tenant id is required")
	case !tenantRe.MatchString(id):
		return fmt.Errorf("invalid tenant id %q: use 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit", id)
	case Reserved(id):
		return fmt.Errorf("tenant id %q is reserved: it collides with one of the edge's own paths", id)
	}
	return nil
}

// MaxLogoSize bounds a logo given as a data: URL, decoded. The logo is replicated to every node with the
// tenant.
const MaxLogoSize = 512 * KiB

// Token lifetime bounds.
const (
	MaxAccessTokenTTL  = Duration(24 * time.Hour)
	MaxIDTokenTTL      = Duration(24 * time.Hour)
	MaxRefreshTokenTTL = Duration(365 * 24 * time.Hour)
)

// Extension limit bounds.
const (
	MinExtensionTimeout = Duration(time.Millisecond)
	MaxExtensionTimeout = Duration(10 * time.Second)
	MinExtensionMemory  = 64 * KiB
	MaxExtensionMemory  = 512 * MiB
	MaxExtensionCalls   = 64
	MinExtensionIO      = 1 * KiB
	MaxExtensionIO      = 1 * MiB
)

// Extension secret bounds. A secret is a credential (an API key, a token), not a document, and every node
// holds every tenant's extensions in memory.
const (
	MaxExtensionSecrets    = 32
	MaxExtensionSecretSize = 4 * KiB
)

// MinClientSecretLength is the shortest client secret a manifest may set. Client secrets are stored with a
// fast hash, which is only safe for high-entropy secrets.
const MinClientSecretLength = 32

var (
	builtinMethods = []string{MethodPassword, MethodEmailOTP, MethodPasskey}
	factors        = []string{FactorEmailOTP, FactorTOTP, FactorPasskey}
	mfaModes       = []string{MFAOff, MFAOptional, MFARequired, MFARiskBased}
	attrTypes      = []string{AttrString, AttrNumber, AttrBoolean, AttrDate}
	appTypes       = []string{AppWeb, AppSPA, AppNative, AppService}
	grantTypes     = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
	signingAlgs    = []string{AlgES256, AlgRS256, AlgEdDSA}
	idpTypes       = []string{IdPOIDC, IdPOAuth2, IdPSAML}
	events         = []string{EventAttributeCollectionStart, EventAttributeCollectionSubmit, EventTokenIssuanceStart, EventOtpSend, EventProxyRequest}
	onErrors       = []string{OnErrorFail, OnErrorContinue}
	httpMethods    = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)

// Validate checks the manifest's semantic rules: ids and names, references between sections (sign-in methods
// to identity providers, routes to apps), redirect URIs, secrets, lifetimes and limits. It returns an [Errors]
// with every problem (Line 0: a Manifest built in code has no lines), or nil.
//
// [ParseYAML] and [ParseJSON] call it; call it directly on a Manifest built or changed in code.
func (m *Manifest) Validate() error { return m.validate(nil).err() }

// checker collects problems; lines (from the parser, or nil) gives each its line.
type checker struct {
	lines map[string]int
	errs  Errors
}

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, Error{Field: field, Line: c.line(field), Message: fmt.Sprintf(format, args...)})
}

// line is the line of field or, when the field was not written (a required one), of its nearest ancestor.
func (c *checker) line(field string) int {
	if c.lines == nil {
		return 0
	}
	for p := field; ; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
	}
}

// oneOf checks that v is one of allowed; empty v passes (callers check "required" themselves).
func (c *checker) oneOf(field, what, v string, allowed []string) bool {
	if v == "" || slices.Contains(allowed, v) {
		return true
	}
	if s := suggest(v, allowed); s != "" {
		c.add(field, "unknown %s %q (did you mean %s?)", what, v, s)
	} else {
		c.add(field, "unknown %s %q: use %s", what, v, orList(allowed))
	}
	return false
}

// unique reports (once per repeat) values listed twice in a list of plain strings.
func (c *checker) unique(field string, list []string) {
	seen := map[string]int{}
	for i, v := range list {
		if first, dup := seen[v]; dup {
			c.add(fmt.Sprintf("%s[%d]", field, i), "%q is listed twice (also %s[%d])", v, field, first)
			continue
		}
		seen[v] = i
	}
}

func (m *Manifest) validate(lines map[string]int) Errors {
	c := &checker{lines: lines}
	switch {
	case m.Tenant == "":
		c.add("tenant", "required")
	default:
		if err := ValidTenantID(m.Tenant); err != nil {
			c.add("tenant", "%v", err)
		}
	}
	if m.DefaultLocale != "" && !localeRe.MatchString(m.DefaultLocale) {
		c.add("default_locale", "invalid locale %q: use a language tag like en, fr or pt-BR", m.DefaultLocale)
	}
	m.checkSignInMethods(c)
	m.Flows.check(c)
	m.Branding.check(c)
	m.checkApps(c)
	m.checkRoutes(c)
	m.checkIdentityProviders(c)
	m.checkExtensions(c)
	return c.errs
}

func (m *Manifest) checkSignInMethods(c *checker) {
	idps := map[string]bool{}
	for _, p := range m.IdentityProviders {
		if p.ID != "" {
			idps[p.ID] = true
		}
	}
	for i, s := range m.SignInMethods {
		f := fmt.Sprintf("sign_in_methods[%d]", i)
		switch {
		case s == "":
			c.add(f, "must not be empty")
		case slices.Contains(builtinMethods, s) || idps[s]:
		default:
			allowed := append(slices.Clone(builtinMethods), slices.Sorted(maps.Keys(idps))...)
			if g := suggest(s, allowed); g != "" {
				c.add(f, "unknown sign-in method %q (did you mean %s?)", s, g)
			} else {
				c.add(f, "unknown sign-in method %q: use password, email_otp, passkey or the id of one of identity_providers", s)
			}
		}
	}
	c.unique("sign_in_methods", m.SignInMethods)
}

func (fl *Flows) check(c *checker) {
	names := map[string]int{}
	for i, a := range fl.SignUp.Attributes {
		p := fmt.Sprintf("flows.sign_up.attributes[%d]", i)
		switch {
		case a.Name == "":
			c.add(p+".name", "required")
		case !attrNameRe.MatchString(a.Name):
			c.add(p+".name", "invalid attribute name %q: use 1 to 64 lower-case letters, digits and _, starting with a letter", a.Name)
		default:
			if first, dup := names[a.Name]; dup {
				c.add(p+".name", "duplicate attribute %q (also flows.sign_up.attributes[%d])", a.Name, first)
			} else {
				names[a.Name] = i
			}
		}
		c.oneOf(p+".type", "attribute type", a.Type, attrTypes)
		if a.Pattern != "" {
			if _, err := regexp.Compile(a.Pattern); err != nil {
				c.add(p+".pattern", "does not compile as a Go regular expression: %v", err)
			}
		}
	}
	c.oneOf("flows.mfa.mode", "MFA mode", fl.MFA.Mode, mfaModes)
	for i, f := range fl.MFA.Methods {
		p := fmt.Sprintf("flows.mfa.methods[%d]", i)
		if f == "" {
			c.add(p, "must not be empty")
		}
		c.oneOf(p, "MFA method", f, factors)
	}
	c.unique("flows.mfa.methods", fl.MFA.Methods)
}

func (b *Branding) check(c *checker) {
	for _, k := range slices.Sorted(maps.Keys(b.Colors)) {
		p := joinKey("branding.colors", k)
		if !colorNameRe.MatchString(k) {
			c.add(p, "invalid color name: use lower-case letters, digits, _ and -, starting with a letter")
		}
		if v := b.Colors[k]; !colorRe.MatchString(v) {
			c.add(p, "invalid color %q: write \"#rgb\" or \"#rrggbb\"", v)
		}
	}
	if msg := checkLogo(b.Logo); msg != "" {
		c.add("branding.logo", "%s", msg)
	}
	for _, loc := range slices.Sorted(maps.Keys(b.Strings)) {
		p := joinKey("branding.strings", loc)
		if !localeRe.MatchString(loc) {
			c.add(p, "invalid locale %q: use a language tag like en, fr or pt-BR", loc)
		}
		for _, id := range slices.Sorted(maps.Keys(b.Strings[loc])) {
			if !messageIDRe.MatchString(id) {
				c.add(joinKey(p, id), "invalid message id %q: use letters, digits, _, . and -", id)
			}
		}
	}
}

// checkLogo accepts a file path, an https URL (http for loopback) or a data:image URL of at most MaxLogoSize.
func checkLogo(logo string) string {
	if logo == "" {
		return ""
	}
	if hasControl(logo) {
		return "must not contain control characters"
	}
	if strings.HasPrefix(strings.ToLower(logo), "data:") {
		m := dataLogoRe.FindString(logo)
		if m == "" {
			return "a data: URL logo must be data:image/png, jpeg, gif, webp or svg+xml, base64-encoded"
		}
		data, err := base64.StdEncoding.DecodeString(logo[len(m):])
		if err != nil {
			return "the data: URL logo is not valid base64"
		}
		if ByteSize(len(data)) > MaxLogoSize {
			return fmt.Sprintf("the logo is %s; at most %s is allowed", ByteSize(len(data)), MaxLogoSize)
		}
		return ""
	}
	u, err := url.Parse(logo)
	if err != nil || len(u.Scheme) <= 1 { // no scheme, or a Windows drive letter: a file path
		return ""
	}
	return checkWebURL(logo, "a logo must be a file path, an https URL or a data:image URL")
}

// checkWebURL accepts an absolute https URL, or http for a loopback host. what describes the field for the
// message about the scheme.
func checkWebURL(raw, what string) string {
	u, msg := parseAbsURL(raw)
	if msg != "" {
		return msg
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return "http is only allowed for a loopback host (localhost, *.localhost, 127.0.0.1, [::1]); use https"
		}
	default:
		return what
	}
	if u.Host == "" {
		return "must have a host"
	}
	if u.User != nil {
		return "must not contain a user name or password"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not contain a fragment (#...)"
	}
	return ""
}

// parseAbsURL parses an absolute URL with no spaces or control characters.
func parseAbsURL(raw string) (*url.URL, string) {
	if strings.IndexFunc(raw, unicode.IsSpace) >= 0 || hasControl(raw) {
		return nil, "must not contain spaces or control characters"
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Sprintf("not a valid URL: %v", err)
	}
	if u.Scheme == "" {
		return nil, "must be an absolute URL"
	}
	return u, ""
}

// loopback reports whether host (without port or brackets) names the local machine by one of the names a
// loopback redirect URI may use (RFC 8252 §7.3; *.localhost by RFC 6761).
func loopback(host string) bool {
	h := strings.ToLower(host)
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "127.0.0.1" || h == "::1"
}

// checkRedirectURI applies the rules for redirect_uris and post_logout_redirect_uris (RFC 6749 §3.1.2,
// RFC 8252 §7, OAuth 2.0 Security BCP): absolute, exact (no wildcards), no fragment, no credentials; https,
// or http for loopback; private-use schemes for native apps only.
func checkRedirectURI(raw string, native bool) string {
	if raw == "" {
		return "must not be empty"
	}
	if strings.Contains(raw, "*") {
		return "wildcards are not supported: redirect URIs are compared exactly"
	}
	u, msg := parseAbsURL(raw)
	if msg != "" {
		return msg
	}
	switch u.Scheme {
	case "javascript", "data", "vbscript", "file":
		return fmt.Sprintf("the %s: scheme is not allowed", u.Scheme)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not contain a fragment (#...) (RFC 6749 §3.1.2)"
	}
	if u.User != nil {
		return "must not contain a user name or password"
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return "must have a host"
		}
	case "http":
		if u.Host == "" {
			return "must have a host"
		}
		if !loopback(u.Hostname()) {
			return "http is only allowed for a loopback host (localhost, *.localhost, 127.0.0.1, [::1]); use https"
		}
	default:
		if !native {
			return fmt.Sprintf("the %s: scheme is not allowed: use https (or http for a loopback host); private-use schemes such as com.example.app:/callback are for native apps only", u.Scheme)
		}
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Sprintf("the private-use scheme %s: must be a reverse domain name such as com.example.app (RFC 8252 §7.1)", u.Scheme)
		}
	}
	return ""
}

// checkHost accepts a host name, an IP address, or either with a port; with wildcard, also "*.example.com".
func checkHost(s string, wildcard bool) string {
	switch {
	case s == "":
		return "must not be empty"
	case strings.Contains(s, "://"):
		return "must be a host name or host:port, without a scheme"
	case strings.ContainsAny(s, "/?#"):
		return "must be a host name or host:port, without a path"
	case strings.IndexFunc(s, unicode.IsSpace) >= 0 || hasControl(s) || strings.Contains(s, "@"):
		return "must be a host name or host:port"
	}
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i:], "]") {
		h, port, err := net.SplitHostPort(s)
		if err != nil {
			if strings.Count(s, ":") > 1 {
				return "an IPv6 address must be in brackets, like [::1]:8080"
			}
			return "must be a host name or host:port"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("invalid port %q", port)
		}
		host = h
	} else if strings.HasPrefix(s, "[") {
		if !strings.HasSuffix(s, "]") {
			return "must be a host name or host:port"
		}
		host = s[1 : len(s)-1]
	}
	if strings.HasPrefix(s, "[") {
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return fmt.Sprintf("invalid IPv6 address %q", host)
		}
		return ""
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	if host != strings.ToLower(host) {
		return "must be lower case"
	}
	if strings.HasPrefix(host, "*.") {
		if !wildcard {
			return "wildcard hosts are not supported"
		}
		host = host[2:]
	}
	if len(host) > 253 {
		return "host name too long"
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.IndexFunc(label, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) >= 0 {
			return fmt.Sprintf("invalid host name %q", host)
		}
	}
	return ""
}

func (m *Manifest) checkApps(c *checker) {
	routed := map[string]bool{}
	for _, r := range m.Routes {
		routed[r.App] = true
	}
	names := map[string]int{}
	clientIDs := map[string]int{}
	for i, a := range m.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		switch {
		case a.Name == "":
			c.add(p+".name", "required")
		case !nameRe.MatchString(a.Name):
			c.add(p+".name", "invalid app name %q: use 1 to 63 lower-case letters, digits, _ and -, starting with a letter or digit", a.Name)
		default:
			if first, dup := names[a.Name]; dup {
				c.add(p+".name", "duplicate app name %q (also apps[%d])", a.Name, first)
			} else {
				names[a.Name] = i
			}
		}
		known := a.Type != "" && c.oneOf(p+".type", "app type", a.Type, appTypes)
		if a.Type == "" {
			c.add(p+".type", "required: one of %s", orList(appTypes))
		}
		confidential := a.Type == AppWeb || a.Type == AppService
		if a.ClientID != "" {
			if !clientIDRe.MatchString(a.ClientID) {
				c.add(p+".client_id", "invalid client_id %q: use 3 to 128 letters, digits and . _ ~ -", a.ClientID)
			} else if first, dup := clientIDs[a.ClientID]; dup {
				c.add(p+".client_id", "duplicate client_id %q (also apps[%d])", a.ClientID, first)
			} else {
				clientIDs[a.ClientID] = i
			}
		}
		if a.ClientSecret != "" {
			switch {
			case known && !confidential:
				c.add(p+".client_secret", "a %s app is a public client and has no client_secret; remove it", a.Type)
			case utf8.RuneCountInString(a.ClientSecret) < MinClientSecretLength:
				c.add(p+".client_secret", "too short: at least %d characters; client secrets are stored with a fast hash, so they must be long random strings (leave it out to have one generated)", MinClientSecretLength)
			}
		}
		c.redirects(p+".redirect_uris", a, a.RedirectURIs, known && !routed[a.Name])
		c.redirects(p+".post_logout_redirect_uris", a, a.PostLogoutRedirectURIs, false)
		for j, g := range a.GrantTypes {
			f := fmt.Sprintf("%s.grant_types[%d]", p, j)
			if g == "" {
				c.add(f, "must not be empty")
				continue
			}
			if !c.oneOf(f, "grant type", g, grantTypes) || !known {
				continue
			}
			switch {
			case g == GrantClientCredentials && !confidential:
				c.add(f, "client_credentials is only for confidential clients (web and service apps)")
			case g != GrantClientCredentials && a.Type == AppService:
				c.add(f, "a service app only uses client_credentials")
			}
		}
		c.unique(p+".grant_types", a.GrantTypes)
		c.ttl(p+".access_token_ttl", a.AccessTokenTTL, MaxAccessTokenTTL)
		c.ttl(p+".id_token_ttl", a.IDTokenTTL, MaxIDTokenTTL)
		c.ttl(p+".refresh_token_ttl", a.RefreshTokenTTL, MaxRefreshTokenTTL)
		if a.SigningAlg != "" && !slices.Contains(signingAlgs, a.SigningAlg) {
			c.add(p+".signing_alg", "unsupported signing algorithm %q: use %s", a.SigningAlg, orList(signingAlgs))
		}
		if a.JWKS != "" {
			if known && !confidential {
				c.add(p+".jwks", "a %s app is a public client and cannot authenticate with a key", a.Type)
			} else if msg := CheckPublicJWKS(a.JWKS); msg != "" {
				c.add(p+".jwks", "%s", msg)
			}
		}
	}
}

// redirects checks one list of redirect URIs of app a; required says whether the list may be empty.
func (c *checker) redirects(field string, a App, uris []string, required bool) {
	if a.Type == AppService {
		if len(uris) > 0 {
			c.add(field, "a service app has no redirect URIs: it signs in with client_credentials")
		}
		return
	}
	if required && len(uris) == 0 {
		c.add(field, "at least one redirect URI is required for a %s app", a.Type)
	}
	for j, u := range uris {
		if msg := checkRedirectURI(u, a.Type == AppNative); msg != "" {
			c.add(fmt.Sprintf("%s[%d]", field, j), "%s", msg)
		}
	}
	c.unique(field, uris)
}

func (c *checker) ttl(field string, d, max Duration) {
	switch {
	case d < 0:
		c.add(field, "must not be negative")
	case d > max:
		c.add(field, "too long: at most %s", max)
	}
}

func (m *Manifest) checkRoutes(c *checker) {
	apps := map[string]App{}
	for _, a := range m.Apps {
		if _, dup := apps[a.Name]; !dup {
			apps[a.Name] = a
		}
	}
	hosts := map[string]int{}
	for i, r := range m.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Host == "" {
			c.add(p+".host", "required")
		} else if msg := checkHost(r.Host, false); msg != "" {
			c.add(p+".host", "%s", msg)
		} else if first, dup := hosts[r.Host]; dup {
			c.add(p+".host", "duplicate host %q (also routes[%d])", r.Host, first)
		} else {
			hosts[r.Host] = i
		}
		if r.Upstream == "" {
			c.add(p+".upstream", "required")
		} else if msg := checkUpstream(r.Upstream); msg != "" {
			c.add(p+".upstream", "%s", msg)
		}
		switch a, ok := apps[r.App]; {
		case r.App == "":
			c.add(p+".app", "required: the name of a web app in apps")
		case !ok:
			c.add(p+".app", "no app named %q in apps", r.App)
		case a.Type != AppWeb && slices.Contains(appTypes, a.Type): // an unknown type is reported on the app
			c.add(p+".app", "app %q is a %s app; a route needs a web app", r.App, a.Type)
		}
		c.groups(p+".allow.groups", r.Allow.Groups)
		for j, rule := range r.Allow.Paths {
			q := fmt.Sprintf("%s.allow.paths[%d]", p, j)
			if !strings.HasPrefix(rule.Prefix, "/") {
				c.add(q+".prefix", "must start with /")
			}
			for k, meth := range rule.Methods {
				if !slices.Contains(httpMethods, meth) {
					f := fmt.Sprintf("%s.methods[%d]", q, k)
					if slices.Contains(httpMethods, strings.ToUpper(meth)) {
						c.add(f, "HTTP methods are upper case: write %s", strings.ToUpper(meth))
					} else {
						c.add(f, "unknown HTTP method %q: use %s", meth, orList(httpMethods))
					}
				}
			}
			c.unique(q+".methods", rule.Methods)
			c.groups(q+".groups", rule.Groups)
		}
		for j, pp := range r.PublicPaths {
			if !strings.HasPrefix(pp, "/") {
				c.add(fmt.Sprintf("%s.public_paths[%d]", p, j), "must start with /")
			}
		}
		c.unique(p+".public_paths", r.PublicPaths)
	}
}

func (c *checker) groups(field string, groups []string) {
	for i, g := range groups {
		if strings.TrimSpace(g) == "" {
			c.add(fmt.Sprintf("%s[%d]", field, i), "must not be empty")
		}
	}
	c.unique(field, groups)
}

// checkUpstream accepts an absolute http or https URL with a host, no credentials, query or fragment.
func checkUpstream(raw string) string {
	u, msg := parseAbsURL(raw)
	switch {
	case msg != "":
		return msg
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL"
	case u.Host == "":
		return "must have a host"
	case u.User != nil:
		return "must not contain a user name or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not contain a query or fragment"
	}
	return ""
}

func (m *Manifest) checkIdentityProviders(c *checker) {
	ids := map[string]int{}
	for i, idp := range m.IdentityProviders {
		p := fmt.Sprintf("identity_providers[%d]", i)
		switch {
		case idp.ID == "":
			c.add(p+".id", "required")
		case slices.Contains(builtinMethods, idp.ID):
			c.add(p+".id", "%q is a built-in sign-in method; choose another id", idp.ID)
		case !nameRe.MatchString(idp.ID):
			c.add(p+".id", "invalid id %q: use 1 to 63 lower-case letters, digits, _ and -, starting with a letter or digit", idp.ID)
		default:
			if first, dup := ids[idp.ID]; dup {
				c.add(p+".id", "duplicate id %q (also identity_providers[%d])", idp.ID, first)
			} else {
				ids[idp.ID] = i
			}
		}
		if idp.Type == "" {
			c.add(p+".type", "required: one of %s", orList(idpTypes))
		} else {
			c.oneOf(p+".type", "identity provider type", idp.Type, idpTypes)
		}
		if idp.Issuer == "" {
			c.add(p+".issuer", "required")
		} else if msg := checkWebURL(idp.Issuer, "must be an https URL (http only for a loopback host)"); msg != "" {
			c.add(p+".issuer", "%s", msg)
		} else if u, _ := url.Parse(idp.Issuer); u.RawQuery != "" || u.ForceQuery {
			c.add(p+".issuer", "must not contain a query")
		}
		if idp.ClientID == "" && (idp.Type == IdPOIDC || idp.Type == IdPOAuth2) {
			c.add(p+".client_id", "required for an %s provider", idp.Type)
		}
		for j, s := range idp.Scopes {
			if !validScope(s) {
				c.add(fmt.Sprintf("%s.scopes[%d]", p, j), "invalid scope %q: one scope per item, printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)", s)
			}
		}
		c.unique(p+".scopes", idp.Scopes)
	}
}

// validScope reports whether s is a scope-token (RFC 6749 §3.3): 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

func (m *Manifest) checkExtensions(c *checker) {
	ids := map[string]int{}
	for i, x := range m.Extensions {
		p := fmt.Sprintf("extensions[%d]", i)
		switch {
		case x.ID == "":
			c.add(p+".id", "required")
		case !nameRe.MatchString(x.ID):
			c.add(p+".id", "invalid id %q: use 1 to 63 lower-case letters, digits, _ and -, starting with a letter or digit", x.ID)
		default:
			if first, dup := ids[x.ID]; dup {
				c.add(p+".id", "duplicate id %q (also extensions[%d])", x.ID, first)
			} else {
				ids[x.ID] = i
			}
		}
		switch {
		case x.Wasm == "" && x.URL == "":
			c.add(p, "set one of wasm (a WebAssembly module) or url (an HTTP endpoint)")
		case x.Wasm != "" && x.URL != "":
			c.add(p+".url", "set either wasm or url, not both")
		case x.URL != "":
			if msg := checkWebURL(x.URL, "must be an https URL (http only for a loopback host)"); msg != "" {
				c.add(p+".url", "%s", msg)
			}
		}
		if hasControl(x.Wasm) {
			c.add(p+".wasm", "must not contain control characters")
		}
		if len(x.Events) == 0 {
			c.add(p+".events", "at least one event is required: %s", orList(events))
		}
		for j, e := range x.Events {
			f := fmt.Sprintf("%s.events[%d]", p, j)
			if e == "" {
				c.add(f, "must not be empty")
				continue
			}
			c.oneOf(f, "event", e, events)
		}
		c.unique(p+".events", x.Events)
		if x.Timeout != 0 && (x.Timeout < MinExtensionTimeout || x.Timeout > MaxExtensionTimeout) {
			c.add(p+".timeout", "out of range: between %s and %s", MinExtensionTimeout, MaxExtensionTimeout)
		}
		wasmOnly := x.URL != "" && x.Wasm == ""
		if x.MemoryLimit != 0 {
			switch {
			case wasmOnly:
				c.add(p+".memory_limit", "applies to wasm extensions only")
			case x.MemoryLimit < MinExtensionMemory || x.MemoryLimit > MaxExtensionMemory:
				c.add(p+".memory_limit", "out of range: between %s and %s", MinExtensionMemory, MaxExtensionMemory)
			}
		}
		if x.MaxInstances != 0 && (x.MaxInstances < 1 || x.MaxInstances > MaxExtensionCalls) {
			c.add(p+".max_instances", "out of range: between 1 and %d", MaxExtensionCalls)
		}
		for _, lim := range []struct {
			name string
			v    ByteSize
		}{{"max_input", x.MaxInput}, {"max_output", x.MaxOutput}} {
			if lim.v != 0 && (lim.v < MinExtensionIO || lim.v > MaxExtensionIO) {
				c.add(p+"."+lim.name, "out of range: between %s and %s", MinExtensionIO, MaxExtensionIO)
			}
		}
		c.oneOf(p+".on_error", "on_error policy", x.OnError, onErrors)
		if wasmOnly && len(x.AllowedHosts) > 0 {
			c.add(p+".allowed_hosts", "applies to wasm extensions only")
		}
		for j, h := range x.AllowedHosts {
			if msg := checkHost(h, true); msg != "" {
				c.add(fmt.Sprintf("%s.allowed_hosts[%d]", p, j), "%s", msg)
			}
		}
		c.unique(p+".allowed_hosts", x.AllowedHosts)
		for _, k := range slices.Sorted(maps.Keys(x.Config)) {
			if k == "" {
				c.add(p+".config", "a key must not be empty")
			}
		}
		checkSecrets(c, p+".secrets", x.Secrets, wasmOnly)
	}
}

// secretNameRe is a secret's name: an identifier in most languages, so a guest can hold it in a constant.
var secretNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// checkSecrets checks an extension's secrets. No message repeats a value: problems are printed, logged
// and sent back by the admin API.
func checkSecrets(c *checker, field string, secrets map[string]string, httpExtension bool) {
	if len(secrets) == 0 {
		return
	}
	if httpExtension {
		c.add(field, "applies to wasm extensions only: an HTTP extension's service keeps its own secrets, and knows Postern's calls by their signed token")
		return
	}
	if len(secrets) > MaxExtensionSecrets {
		c.add(field, "%d secrets: at most %d", len(secrets), MaxExtensionSecrets)
	}
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		f := joinKey(field, name)
		if name == "" {
			c.add(field, "a secret's name must not be empty")
		} else if !secretNameRe.MatchString(name) {
			c.add(f, "invalid secret name %q: use 1 to 64 letters, digits and _, not starting with a digit", name)
		}
		switch v := secrets[name]; {
		case v == "":
			c.add(f, "must not be empty: leave the secret out, or check that the environment variable it names is not empty")
		case len(v) > int(MaxExtensionSecretSize):
			c.add(f, "too long: %d bytes, at most %s", len(v), MaxExtensionSecretSize)
		}
	}
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// orList formats ["a", "b", "c"] as "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// suggest returns the candidate closest to s when it is close enough to be a likely misspelling: compared
// without case, "_" and "-", at most two edits and fewer than a third of the candidate's length.
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	ns := fold(s)
	for _, cand := range candidates {
		nc := fold(cand)
		d := editDistance(ns, nc)
		if d < bestDist && d*3 <= len(nc) && cand != s {
			best, bestDist = cand, d
		}
	}
	return best
}

func fold(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// editDistance counts the insertions, deletions, substitutions and swaps of adjacent runes that turn a into b
// (the optimal string alignment distance): "lable" is one edit from "label".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// CheckPublicJWKS checks a client's key set: JSON {"keys": [...]}, each key an EC, RSA or OKP public key
// with a kid, and no private or symmetric member. It returns what is wrong, or "".
func CheckPublicJWKS(text string) string {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if len(text) > 64<<10 {
		return "the key set is larger than 64 KiB"
	}
	if err := json.Unmarshal([]byte(text), &set); err != nil {
		return "not a JSON Web Key Set: " + err.Error()
	}
	if len(set.Keys) == 0 {
		return "the key set has no keys"
	}
	for i, k := range set.Keys {
		kty, _ := k["kty"].(string)
		if kty != "EC" && kty != "RSA" && kty != "OKP" {
			return fmt.Sprintf("keys[%d]: kty must be EC, RSA or OKP", i)
		}
		if kid, _ := k["kid"].(string); kid == "" {
			return fmt.Sprintf("keys[%d]: a kid is required", i)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				return fmt.Sprintf("keys[%d]: has the private member %q: give public keys only", i, private)
			}
		}
	}
	return ""
}
