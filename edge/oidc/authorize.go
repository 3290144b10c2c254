package oidc

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// authRequest is a validated authorization request (RFC 6749 section 4.1.1, OIDC Core 3.1.2.1), kept
// while the person signs in.
type authRequest struct {
	ClientID     string    `json:"client_id"`
	RedirectURI  string    `json:"redirect_uri"`
	ResponseMode string    `json:"response_mode"`
	State        string    `json:"state,omitempty"`
	Nonce        string    `json:"nonce,omitempty"`
	Scopes       []string  `json:"scopes,omitempty"`
	Challenge    string    `json:"code_challenge,omitempty"`
	Prompt       string    `json:"prompt,omitempty"`
	MaxAge       int       `json:"max_age"` // -1: not given
	LoginHint    string    `json:"login_hint,omitempty"`
	UILocales    string    `json:"ui_locales,omitempty"`
	ExpiresAt    time.Time `json:"exp"`
}

// journeyLifetime bounds how long a sign-in started from an authorization request may take.
const journeyLifetime = 30 * time.Minute

// parseAuthorize validates an authorization request. Until client_id and redirect_uri are known good,
// errors are shown on a page (never redirected: that would make Postern an open redirector); after, they
// go back to the client (section 4.1.2.1).
func (p *Provider) parseAuthorize(args *fasthttp.Args, te *tenantEntry) (authRequest, directory.App, *Error, bool) {
	r := authRequest{MaxAge: -1}
	for _, n := range []string{"client_id", "redirect_uri", "response_type", "response_mode", "state", "nonce", "scope",
		"code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "ui_locales"} {
		if len(args.PeekMulti(n)) > 1 {
			return r, directory.App{}, errInvalidRequest("parameter %s is repeated", n), false
		}
	}
	r.ClientID = string(args.Peek("client_id"))
	app, ok := p.app(te, r.ClientID)
	if r.ClientID == "" || !ok {
		return r, app, errInvalidRequest("unknown client"), false
	}
	if !slices.Contains(app.GrantTypes, "authorization_code") {
		return r, app, errUnauthorizedClient("this client may not use the authorization code flow"), false
	}
	r.RedirectURI = string(args.Peek("redirect_uri"))
	if !redirectAllowed(app, r.RedirectURI) {
		return r, app, errInvalidRequest("redirect_uri is not registered for this client"), false
	}
	// From here on, errors are redirected to the client.
	r.State = string(args.Peek("state"))
	r.ResponseMode = string(args.Peek("response_mode"))
	switch r.ResponseMode {
	case "", "query":
		r.ResponseMode = "query"
	case "form_post":
	default:
		r.ResponseMode = "query"
		return r, app, errInvalidRequest("response_mode must be query or form_post"), true
	}
	if rt := string(args.Peek("response_type")); rt != "code" {
		return r, app, oauthError(fasthttp.StatusBadRequest, "unsupported_response_type", "only response_type=code is supported"), true
	}
	scopes, e := parseScope(string(args.Peek("scope")))
	if e != nil {
		return r, app, e, true
	}
	r.Scopes = scopes
	r.Nonce = string(args.Peek("nonce"))
	r.Challenge = string(args.Peek("code_challenge"))
	method := string(args.Peek("code_challenge_method"))
	switch {
	case r.Challenge == "" && method != "":
		return r, app, errInvalidRequest("code_challenge_method without code_challenge"), true
	case r.Challenge != "" && method != "S256":
		return r, app, errInvalidRequest("code_challenge_method must be S256 (plain is not allowed)"), true
	case r.Challenge != "" && (len(r.Challenge) != 43 || strings.ContainsAny(r.Challenge, "+/=")):
		return r, app, errInvalidRequest("code_challenge must be a base64url SHA-256 (43 characters)"), true
	case r.Challenge == "" && !app.Confidential():
		return r, app, errInvalidRequest("PKCE (code_challenge with S256) is required for public clients"), true
	}
	for _, pr := range strings.Fields(string(args.Peek("prompt"))) {
		switch pr {
		case "none", "login", "consent", "select_account":
		default:
			return r, app, errInvalidRequest("prompt %q is not supported", pr), true
		}
	}
	prompts := strings.Fields(string(args.Peek("prompt")))
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return r, app, errInvalidRequest("prompt=none cannot be combined with other values"), true
	}
	if slices.Contains(prompts, "none") {
		r.Prompt = "none"
	} else if slices.Contains(prompts, "login") {
		r.Prompt = "login"
	}
	if v := string(args.Peek("max_age")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return r, app, errInvalidRequest("max_age must be a non-negative integer"), true
		}
		r.MaxAge = n
	}
	r.LoginHint = string(args.Peek("login_hint"))
	r.UILocales = string(args.Peek("ui_locales"))
	return r, app, nil, true
}

// sessionSatisfies reports whether an existing session may answer the request without a new sign-in.
func (r authRequest) sessionSatisfies(s directory.Session, now time.Time) bool {
	if r.Prompt == "login" {
		return false
	}
	if r.MaxAge >= 0 && now.Sub(s.AuthTime) > time.Duration(r.MaxAge)*time.Second {
		return false
	}
	return true
}

// issueCode answers the request with a fresh code for the session's user.
func (p *Provider) issueCode(ctx *fasthttp.RequestCtx, te *tenantEntry, r authRequest, s directory.Session, index uint64) {
	// OnTokenIssuanceStart runs before the code exists: under on_error "fail" a failed extension means no
	// code, hence no token, and the person sees the tenant's error page.
	claims, err := p.tokenClaims(ctx, te, r.ClientID, r.UILocales, s.UserID)
	if err != nil {
		p.extensionFailed(ctx, te, r.UILocales, err)
		return
	}
	now := p.cfg.Now()
	code, err := p.sealCode(te.tenant.ID, grantCode{
		ID: directory.NewID(), ClientID: r.ClientID, RedirectURI: r.RedirectURI, Challenge: r.Challenge, Nonce: r.Nonce,
		SessionID: s.ID, Subject: s.UserID, AuthTime: s.AuthTime, Scopes: r.Scopes, AMR: s.AMR, ExpiresAt: now.Add(codeLifetime),
		Index: index, Claims: claims,
	})
	if err != nil {
		p.redirectError(ctx, te, r, errServer(err))
		return
	}
	p.respond(ctx, te, r, url.Values{"code": {code}})
}

// redirectError sends an error back to the client's registered redirect URI.
func (p *Provider) redirectError(ctx *fasthttp.RequestCtx, te *tenantEntry, r authRequest, e *Error) {
	if e.cause != nil {
		p.cfg.Log.Error("authorization request failed", "tenant", te.tenant.ID, "client_id", r.ClientID, "error", e.cause)
	}
	p.respond(ctx, te, r, url.Values{"error": {e.Code}, "error_description": {e.Description}})
}

// respond delivers an authorization response by the request's response mode, always with iss (RFC 9207)
// and state.
func (p *Provider) respond(ctx *fasthttp.RequestCtx, te *tenantEntry, r authRequest, v url.Values) {
	v.Set("iss", p.issuer(te.tenant.ID))
	if r.State != "" {
		v.Set("state", r.State)
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if r.ResponseMode == "form_post" {
		// OAuth 2.0 Form Post Response Mode: an auto-submitting form. The one inline script is allowed by
		// its hash in the page's Content-Security-Policy.
		var b strings.Builder
		b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>Signing in</title></head><body onload="document.forms[0].submit()">`)
		b.WriteString(`<form method="post" action="` + html.EscapeString(r.RedirectURI) + `">`)
		for k, vs := range v {
			for _, x := range vs {
				b.WriteString(`<input type="hidden" name="` + html.EscapeString(k) + `" value="` + html.EscapeString(x) + `">`)
			}
		}
		b.WriteString(`<noscript><button type="submit">Continue</button></noscript></form></body></html>`)
		ctx.Response.Header.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-hashes' 'sha256-"+formPostScriptHash+"'; form-action "+cmp.Or(formActionSource(r.RedirectURI), "'none'"))
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBodyString(b.String())
		return
	}
	sep := "?"
	if strings.Contains(r.RedirectURI, "?") {
		sep = "&"
	}
	redirect(ctx, r.RedirectURI+sep+v.Encode(), fasthttp.StatusFound)
}

// formPostScriptHash is the CSP hash of the form_post page's onload handler.
const formPostScriptHash = "ePniVEkSivX/c7XWBGafqh8tSpiRrKiqYeqbG7N1TOE="

// formActionSource is the CSP source that lets a form or its redirects reach a client's redirect URI:
// its origin, or for a native app's private-use scheme, the scheme.
func formActionSource(uri string) string {
	u, err := url.Parse(uri)
	switch {
	case err != nil || u.Scheme == "":
		return ""
	case u.Host != "" && (u.Scheme == "http" || u.Scheme == "https"):
		return u.Scheme + "://" + u.Host
	case u.Scheme != "http" && u.Scheme != "https":
		return u.Scheme + ":"
	}
	return ""
}

// Journeys: the authorization request travels sealed (to this tenant, with an expiry) through the
// sign-in pages, so an edge needs no state to resume it and nobody can alter it.

func (p *Provider) sealJourney(tenant string, r authRequest) (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	s, err := p.cfg.KEK.Seal(b, "journey/"+tenant)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s), nil
}

func (p *Provider) openJourney(tenant, j string) (authRequest, bool) {
	var r authRequest
	raw, err := base64.RawURLEncoding.DecodeString(j)
	if err != nil || len(j) > 8192 {
		return r, false
	}
	b, err := p.cfg.KEK.Open(directory.Sealed(raw), "journey/"+tenant)
	if err != nil || json.Unmarshal(b, &r) != nil || !p.cfg.Now().Before(r.ExpiresAt) {
		return r, false
	}
	return r, true
}

// redirect answers with a Location header set verbatim: fasthttp's Redirect would parse and rebuild the
// URI, and a client's redirect URI (a private-use scheme, say) must reach it exactly as registered.
func redirect(ctx *fasthttp.RequestCtx, location string, status int) {
	ctx.Response.Header.Set("Location", location)
	ctx.SetStatusCode(status)
}
