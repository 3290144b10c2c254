package oidc

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/pages"
)

// Paths of the hosted pages below an issuer.
const (
	pathSignIn  = "/sign-in"
	pathSignUp  = "/sign-up"
	pathVerify  = "/verify"
	pathSignOut = "/sign-out"
)

// authorize is the authorization endpoint (GET and POST, RFC 6749 section 3.1).
func (p *Provider) authorize(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	args := ctx.QueryArgs()
	if ctx.IsPost() {
		args = ctx.PostArgs()
	}
	r, _, e, redirectable := p.parseAuthorize(args, te)
	if e != nil {
		if redirectable {
			p.redirectError(ctx, te, r, e)
		} else {
			p.errorPage(ctx, te, fasthttp.StatusBadRequest, e.Description, string(args.Peek("ui_locales")))
		}
		return
	}
	now := p.cfg.Now()
	if s, idx, ok := p.currentSession(ctx, te); ok && r.sessionSatisfies(s, now) {
		p.issueCode(ctx, te, r, s, idx)
		return
	}
	if r.Prompt == "none" {
		p.redirectError(ctx, te, r, oauthError(fasthttp.StatusBadRequest, "login_required", "the user is not signed in"))
		return
	}
	r.ExpiresAt = now.Add(journeyLifetime)
	j, err := p.sealJourney(te.tenant.ID, r)
	if err != nil {
		p.redirectError(ctx, te, r, errServer(err))
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	redirect(ctx, p.issuer(te.tenant.ID)+pathSignIn+"?j="+url.QueryEscape(j), fasthttp.StatusFound)
}

// csrfBinding returns the browser's pre-session random value (setting it when missing), to which CSRF
// tokens are bound.
func (p *Provider) csrfBinding(ctx *fasthttp.RequestCtx, te *tenantEntry) string {
	name := p.cookieName(ctx, te.tenant.ID, "postern_csrf")
	if v := ctx.Request.Header.Cookie(name); len(v) >= 22 && len(v) <= 64 {
		return string(v)
	}
	var b [24]byte
	rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	p.setCookie(ctx, name, v, 0)
	ctx.Request.Header.SetCookie(name, v) // so a page rendered now binds to it
	return v
}

// signIn shows (GET) and handles (POST) the password sign-in page of a journey.
func (p *Provider) signIn(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	args := ctx.QueryArgs()
	if ctx.IsPost() {
		args = ctx.PostArgs()
	}
	j := string(ctx.QueryArgs().Peek("j"))
	r, ok := p.openJourney(te.tenant.ID, j)
	if !ok {
		p.errorPage(ctx, te, fasthttp.StatusBadRequest, "journey_expired", "")
		return
	}
	locale := pages.Negotiate(r.UILocales, string(ctx.Request.Header.Peek("Accept-Language")), te.tenant.DefaultLocale)
	binding := p.csrfBinding(ctx, te)
	page := pages.Page{Kind: "sign_in", Locale: locale, Tenant: te.tenant.ID, Branding: te.tenant.Settings.Branding,
		Action: p.issuer(te.tenant.ID) + pathSignIn + "?j=" + url.QueryEscape(j), Email: r.LoginHint,
		Links: map[string]string{"sign_up": p.issuer(te.tenant.ID) + pathSignUp + "?j=" + url.QueryEscape(j)}}
	if ctx.IsPost() {
		now := p.cfg.Now()
		if !p.csrf.Check(string(args.Peek("csrf")), binding, now, journeyLifetime) {
			page.FormErrorID = "csrf"
			p.renderPage(ctx, te, page, binding, r)
			return
		}
		email, password := string(args.Peek("email")), string(args.Peek("password"))
		page.Email = email
		user, ok := p.checkPassword(te, email, password)
		if !ok {
			// The same page, status and (near enough) time whether the email is unknown or the password
			// wrong: argon2id runs either way.
			page.FormErrorID = "invalid_credentials"
			p.renderPage(ctx, te, page, binding, r)
			return
		}
		s, idx, err := p.startSession(ctx, te, user, []string{"pwd"})
		if err != nil {
			page.FormErrorID = "generic_error"
			p.cfg.Log.Error("starting a session", "tenant", te.tenant.ID, "error", err)
			p.renderPage(ctx, te, page, binding, r)
			return
		}
		p.issueCode(ctx, te, r, s, idx)
		return
	}
	p.renderPage(ctx, te, page, binding, r)
}

// dummyHash is verified against when the email is unknown, so that answer costs what a wrong password does.
var dummyHash, _ = directory.HashPassword("postern-timing-equaliser")

func (p *Provider) checkPassword(te *tenantEntry, email, password string) (directory.User, bool) {
	if len(password) > 1024 {
		return directory.User{}, false
	}
	u, err := p.cfg.Store.UserByEmail(te.tenant.ID, email)
	hash := u.PasswordHash
	if err != nil || hash == "" {
		hash = dummyHash
	}
	ok, verr := directory.VerifyPassword(hash, password)
	if err != nil || u.PasswordHash == "" || verr != nil || !ok || u.Blocked {
		return directory.User{}, false
	}
	return u, true
}

// renderPage writes a journey's page. Its CSP lets forms post to the edge only, and lets the redirects
// that follow a post go on to the client's redirect URI (browsers check form-action on them too).
func (p *Provider) renderPage(ctx *fasthttp.RequestCtx, te *tenantEntry, page pages.Page, binding string, r authRequest) {
	page.CSRF = p.csrf.Token(binding, p.cfg.Now())
	var buf bytes.Buffer
	if err := pages.Render(&buf, page); err != nil {
		p.cfg.Log.Error("rendering a page", "tenant", te.tenant.ID, "page", page.Kind, "error", err)
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		return
	}
	setPageHeaders(ctx, page, formActionSource(r.RedirectURI))
	ctx.SetBody(buf.Bytes())
}

func setPageHeaders(ctx *fasthttp.RequestCtx, page pages.Page, formAction string) {
	if formAction != "" {
		formAction = " " + formAction
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Frame-Options", "DENY")
	ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Content-Security-Policy", "default-src 'none'; img-src https: data:; style-src '"+pages.StyleHash(page)+"'; form-action 'self'"+formAction+"; frame-ancestors 'none'; base-uri 'none'")
}

// errorPage is the branded error page, with a correlation id that links it to the log.
func (p *Provider) errorPage(ctx *fasthttp.RequestCtx, te *tenantEntry, status int, message, uiLocales string) {
	p.errorPageRef(ctx, te, status, message, uiLocales, directory.NewID()[:12])
}

// errorPageRef is errorPage under a correlation id the caller already logged its cause with.
func (p *Provider) errorPageRef(ctx *fasthttp.RequestCtx, te *tenantEntry, status int, message, uiLocales, id string) {
	p.cfg.Log.Info("error page", "tenant", te.tenant.ID, "correlation_id", id, "status", status, "message", message)
	page := pages.Page{Kind: "error", Locale: pages.Negotiate(uiLocales, string(ctx.Request.Header.Peek("Accept-Language")), te.tenant.DefaultLocale),
		Tenant: te.tenant.ID, Branding: te.tenant.Settings.Branding, Message: message, CorrelationID: id}
	var buf bytes.Buffer
	if err := pages.Render(&buf, page); err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		return
	}
	setPageHeaders(ctx, page, "")
	ctx.SetStatusCode(status)
	ctx.SetBody(buf.Bytes())
}

// signOut ends the browser's session for the tenant.
func (p *Provider) signOut(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	if s, _, ok := p.currentSession(ctx, te); ok {
		if _, err := p.propose(directory.MakeOp(directory.OpSessionRevoke, directory.Ref{Tenant: te.tenant.ID, ID: s.ID})); err != nil {
			p.cfg.Log.Warn("revoking a session at sign-out", "tenant", te.tenant.ID, "error", err)
		}
	}
	p.setCookie(ctx, p.cookieName(ctx, te.tenant.ID, "postern_session"), "", -1)
	// RP-initiated logout: back to the client only to a post_logout_redirect_uri it registered.
	args := ctx.QueryArgs()
	if ctx.IsPost() {
		args = ctx.PostArgs()
	}
	if back := string(args.Peek("post_logout_redirect_uri")); back != "" {
		clientID := string(args.Peek("client_id"))
		if hint := string(args.Peek("id_token_hint")); hint != "" {
			c, err := p.cfg.Keys.VerifyIDTokenHint(te.tenant.ID, p.issuer(te.tenant.ID), hint, p.cfg.Now())
			aud, _ := c["aud"].(string)
			if err != nil || (clientID != "" && clientID != aud) {
				p.errorPage(ctx, te, fasthttp.StatusBadRequest, "generic_error", "")
				return
			}
			clientID = aud
		}
		app, ok := p.app(te, clientID)
		if ok && slices.Contains(app.PostLogoutRedirectURIs, back) {
			if st := string(args.Peek("state")); st != "" {
				sep := "?"
				if strings.Contains(back, "?") {
					sep = "&"
				}
				back += sep + "state=" + url.QueryEscape(st)
			}
			redirect(ctx, back, fasthttp.StatusFound)
			return
		}
	}
	page := pages.Page{Kind: "signed_out", Locale: pages.Negotiate("", string(ctx.Request.Header.Peek("Accept-Language")), te.tenant.DefaultLocale),
		Tenant: te.tenant.ID, Branding: te.tenant.Settings.Branding}
	var buf bytes.Buffer
	if err := pages.Render(&buf, page); err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		return
	}
	setPageHeaders(ctx, page, "")
	ctx.SetBody(buf.Bytes())
}
