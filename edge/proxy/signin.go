package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/oidc"
)

// The paths Postern answers on every routed host (CONTRACT.md).
const (
	pathSignIn      = reservedPrefix + "sign_in"
	pathCallback    = oidc.CallbackPath
	pathSignOut     = reservedPrefix + "sign_out"
	pathAuth        = reservedPrefix + "auth"         // forward-auth: Traefik, Caddy, Envoy
	pathAuthRequest = reservedPrefix + "auth_request" // nginx auth_request
)

// signInTTL bounds a sign-in round trip through the tenant's pages (the state cookie's lifetime).
const signInTTL = 10 * time.Minute

// hostSession is the proxy's session cookie for one routed host: sealed under the KEK for that host,
// naming the tenant's session it stands for. It lives as long as that session (its absolute end) and
// dies with it: every request checks the session is still live.
type hostSession struct {
	Tenant string `json:"t"`
	Sub    string `json:"u"`
	SID    string `json:"s"`
	Exp    int64  `json:"exp"`
}

// signInState is what the proxy remembers between sending the browser to the tenant's authorize endpoint
// and its return: CSRF state, nonce, PKCE verifier and where to go afterwards.
type signInState struct {
	State    string `json:"st"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"rd"`
	Exp      int64  `json:"exp"`
}

// secure tells whether the browser reached the routed host over TLS, directly or through a proxy in
// front (X-Forwarded-Proto). A client lying about it only hurts itself: a Secure cookie over http is
// dropped, and the callback's http redirect URI is registered only on a development (http) edge.
func secure(ctx *fasthttp.RequestCtx) bool {
	return ctx.IsTLS() || bytes.EqualFold(ctx.Request.Header.Peek(fasthttp.HeaderXForwardedProto), []byte("https"))
}

func scheme(ctx *fasthttp.RequestCtx) string {
	if secure(ctx) {
		return "https"
	}
	return "http"
}

// cookieName: over TLS the __Host- prefix (Secure, Path=/, no Domain): no other host can set or read it.
func cookieName(ctx *fasthttp.RequestCtx, name string) string {
	if secure(ctx) {
		return "__Host-" + name
	}
	return name
}

const (
	sessionCookie     = "postern_proxy"
	stateCookie       = "postern_proxy_state"
	hostSessionCookie = "__Host-" + sessionCookie
)

func setCookie(ctx *fasthttp.RequestCtx, name, value string, maxAge time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(cookieName(ctx, name))
	c.SetValue(value)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	c.SetSecure(secure(ctx))
	if maxAge > 0 {
		c.SetMaxAge(int(maxAge.Seconds()))
	} else {
		c.SetExpire(fasthttp.CookieExpireDelete)
	}
	ctx.Response.Header.SetCookie(c)
}

func sessionContext(host string) string { return "proxy-session/" + strings.ToLower(host) }
func stateContext(host string) string   { return "proxy-state/" + strings.ToLower(host) }

func (p *Proxy) seal(v any, context string) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	s, err := p.cfg.KEK.Seal(b, context)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s), nil
}

func (p *Proxy) open(raw []byte, context string, v any) bool {
	if len(raw) == 0 || len(raw) > 4096 || p.cfg.KEK == nil {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(string(raw))
	if err != nil {
		return false
	}
	plain, err := p.cfg.KEK.Open(directory.Sealed(b), context)
	return err == nil && json.Unmarshal(plain, v) == nil
}

// cookieSession authenticates the request by the host's session cookie, if it has one. Opening the
// sealed cookie is done once per cookie value and cached like a verified token; the session's liveness
// and the user are checked on every request, from the caches that apply notifications keep true.
func (p *Proxy) cookieSession(ctx *fasthttp.RequestCtx, rt *directory.Route) (*identity, error) {
	name := sessionCookie
	if secure(ctx) {
		name = hostSessionCookie
	}
	raw := cookieValue(ctx.Request.Header.Peek(fasthttp.HeaderCookie), name)
	if len(raw) == 0 {
		return nil, errRefused
	}
	now := p.cfg.Now()
	v, ok := getHotBytes(p.cookies, raw)
	if ok && !now.Before(v.exp) {
		p.cookies.delete(string(raw))
		ok = false
	}
	if !ok || v.tenant != rt.Tenant || v.host != rt.Host {
		var hs hostSession
		if !p.open(raw, sessionContext(rt.Host), &hs) || hs.Tenant != rt.Tenant || hs.Sub == "" || hs.SID == "" {
			return nil, errRefused
		}
		v = verified{tenant: hs.Tenant, host: rt.Host, sub: hs.Sub, sid: hs.SID, exp: time.Unix(hs.Exp, 0)}
		if !now.Before(v.exp) {
			return nil, errRefused
		}
		p.cookies.put(string(raw), v)
	}
	live, err := p.sessionLive(rt.Tenant, v.sid, now)
	if err != nil {
		return nil, err
	}
	if !live {
		return nil, errRefused
	}
	id, err := p.identity(rt.Tenant, v.sub)
	if err != nil {
		return nil, err
	}
	if id.blocked {
		return nil, errRefused
	}
	return id, nil
}

// returnPath accepts a return URL only as a path on this same host: it must start with a single "/",
// and neither it nor any of its percent-decodings may start with "//" or "/\", hold a backslash or a
// control character, or parse with a scheme or host. Browsers read "/\evil", "/%09/evil" (a tab they
// drop) and "https:evil" as other hosts; a return URL that any decoding turns into one is refused.
func returnPath(rd string) (string, bool) {
	if rd == "" {
		return "/", true
	}
	if len(rd) > 2048 {
		return "", false
	}
	s := rd
	for range 4 {
		if !safePath(s) {
			return "", false
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", false
		}
		if d == s {
			return rd, true
		}
		s = d
	}
	return "", false // still decoding after four rounds: nobody writes that in good faith
}

func safePath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// callbackURL is the redirect URI the route's app has implicitly.
func callbackURL(ctx *fasthttp.RequestCtx, rt *directory.Route) string {
	return scheme(ctx) + "://" + rt.Host + pathCallback
}

// signIn starts the OIDC code flow with the tenant for this host: state, nonce and PKCE verifier in a
// sealed cookie, the browser to the tenant's authorize endpoint. A browser already signed in goes
// straight back.
func (p *Proxy) signIn(ctx *fasthttp.RequestCtx, rt *directory.Route) {
	rd, ok := returnPath(string(ctx.QueryArgs().Peek("rd")))
	if !ok {
		page(ctx, fasthttp.StatusBadRequest, "Bad request", "The return address is not a path on this site.", "")
		return
	}
	if id, err := p.cookieSession(ctx, rt); err == nil && id != nil {
		redirect(ctx, rd)
		return
	}
	client, err := p.clientID(rt)
	if err != nil {
		ref := p.fail(rt, "finding the route's app", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "This site's sign-in is not set up.", ref)
		return
	}
	st := signInState{State: randomString(24), Nonce: randomString(24), Verifier: randomString(32), Return: rd,
		Exp: p.cfg.Now().Add(signInTTL).Unix()}
	sealed, err := p.seal(st, stateContext(rt.Host))
	if err != nil {
		ref := p.fail(rt, "sealing the sign-in state", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
		return
	}
	setCookie(ctx, stateCookie, sealed, signInTTL)
	challenge := sha256.Sum256([]byte(st.Verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {client},
		"redirect_uri":          {callbackURL(ctx, rt)},
		"scope":                 {"openid email"},
		"state":                 {st.State},
		"nonce":                 {st.Nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	redirect(ctx, p.issuer(rt.Tenant)+"/authorize?"+q.Encode())
}

// clientID is the client_id of the app the route signs in with (routes name apps by name).
func (p *Proxy) clientID(rt *directory.Route) (string, error) {
	a, err := p.cfg.Store.AppByName(rt.Tenant, rt.App)
	if errors.Is(err, directory.ErrNotFound) {
		return "", errors.New("the route's app " + rt.App + " does not exist")
	}
	return a.ClientID, err
}

// callback finishes the code flow: the state must match the cookie's (CSRF), the iss the tenant's issuer
// (RFC 9207), the code is redeemed at the token endpoint with the PKCE verifier, and the ID token is
// verified as any relying party would (signature, issuer, audience, expiry, nonce).
func (p *Proxy) callback(ctx *fasthttp.RequestCtx, rt *directory.Route) {
	var st signInState
	ok := p.open(ctx.Request.Header.Cookie(cookieName(ctx, stateCookie)), stateContext(rt.Host), &st)
	setCookie(ctx, stateCookie, "", -1)
	args := ctx.QueryArgs()
	if !ok || p.cfg.Now().Unix() > st.Exp {
		page(ctx, fasthttp.StatusBadRequest, "Sign-in expired", "The sign-in took too long or was started elsewhere. Go back to the site and try again.", "")
		return
	}
	if subtle.ConstantTimeCompare(args.Peek("state"), []byte(st.State)) != 1 {
		page(ctx, fasthttp.StatusBadRequest, "Bad request", "The sign-in answer does not belong to this browser's sign-in.", "")
		return
	}
	issuer := p.issuer(rt.Tenant)
	if iss := args.Peek("iss"); len(iss) > 0 && string(iss) != issuer {
		page(ctx, fasthttp.StatusBadRequest, "Bad request", "The sign-in answer comes from another issuer.", "")
		return
	}
	if e := args.Peek("error"); len(e) > 0 {
		page(ctx, fasthttp.StatusForbidden, "Sign-in did not complete", "The sign-in was refused or cancelled ("+safeText(e)+").", "")
		return
	}
	client, err := p.clientID(rt)
	if err != nil {
		ref := p.fail(rt, "finding the route's app", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "This site's sign-in is not set up.", ref)
		return
	}
	if p.cfg.Exchange == nil {
		ref := p.fail(rt, "redeeming the code", errors.New("no token endpoint is wired to the proxy"))
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
		return
	}
	ts, err := p.cfg.Exchange(rt.Tenant, client, string(args.Peek("code")), callbackURL(ctx, rt), st.Verifier)
	if err != nil {
		var xe *oidc.ExchangeError
		if errors.As(err, &xe) && xe.Code == "invalid_grant" {
			page(ctx, fasthttp.StatusBadRequest, "Sign-in expired", "This sign-in was already used or has expired. Go back to the site and try again.", "")
			return
		}
		ref := p.fail(rt, "redeeming the code", err)
		page(ctx, fasthttp.StatusBadGateway, "Sign-in failed", "The sign-in could not be completed.", ref)
		return
	}
	now := p.cfg.Now()
	claims, err := p.cfg.Keys.VerifyIDToken(rt.Tenant, issuer, ts.IDToken, now)
	if err == nil && !audienceHas(claims["aud"], client) {
		err = errors.New("the ID token's audience is not the route's app")
	}
	nonce, _ := claims["nonce"].(string)
	if err == nil && subtle.ConstantTimeCompare([]byte(nonce), []byte(st.Nonce)) != 1 {
		err = errors.New("the ID token's nonce is not the one sent")
	}
	sub, _ := claims["sub"].(string)
	sid, _ := claims["sid"].(string)
	if err == nil && (sub == "" || sid == "") {
		err = errors.New("the ID token lacks sub or sid")
	}
	if err != nil {
		ref := p.fail(rt, "checking the ID token", err)
		page(ctx, fasthttp.StatusBadGateway, "Sign-in failed", "The sign-in could not be completed.", ref)
		return
	}
	exp := now.Add(12 * time.Hour)
	if s, serr := p.cfg.Store.Session(rt.Tenant, sid); serr == nil && !s.ExpiresAt.IsZero() {
		exp = s.ExpiresAt
	}
	sealed, err := p.seal(hostSession{Tenant: rt.Tenant, Sub: sub, SID: sid, Exp: exp.Unix()}, sessionContext(rt.Host))
	if err != nil {
		ref := p.fail(rt, "sealing the session cookie", err)
		page(ctx, fasthttp.StatusServiceUnavailable, "Service unavailable", "Try again in a moment.", ref)
		return
	}
	setCookie(ctx, sessionCookie, sealed, exp.Sub(now))
	rd, ok := returnPath(st.Return)
	if !ok {
		rd = "/"
	}
	redirect(ctx, rd)
}

// signOut ends the tenant session behind the host's cookie (so every app of the tenant sees it ended)
// and clears the cookie; then back to rd, if it is a path here, or a short page.
func (p *Proxy) signOut(ctx *fasthttp.RequestCtx, rt *directory.Route) {
	var hs hostSession
	if p.open(ctx.Request.Header.Cookie(cookieName(ctx, sessionCookie)), sessionContext(rt.Host), &hs) && hs.Tenant == rt.Tenant && p.cfg.Write != nil {
		cmd := directory.Command{Time: p.cfg.Now().UTC(), Actor: "proxy:" + rt.Host,
			Ops: []directory.Op{directory.MakeOp(directory.OpSessionRevoke, directory.Ref{Tenant: rt.Tenant, ID: hs.SID})}}
		c, cancel := writeContext()
		_, err := p.cfg.Write.Propose(c, cmd)
		cancel()
		if err != nil {
			p.fail(rt, "revoking the session at sign-out", err)
		}
	}
	setCookie(ctx, sessionCookie, "", -1)
	if rd, ok := returnPath(string(ctx.QueryArgs().Peek("rd"))); ok && ctx.QueryArgs().Has("rd") {
		redirect(ctx, rd)
		return
	}
	page(ctx, fasthttp.StatusOK, "Signed out", "You are signed out.", "")
}

func audienceHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, _ := x.(string); s == want {
				return true
			}
		}
	}
	return false
}

// safeText keeps an error code from the query to plain letters, digits and _ for the error page.
func safeText(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == '_' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			out = append(out, c)
		}
	}
	return string(out)
}

func redirect(ctx *fasthttp.RequestCtx, location string) {
	ctx.Response.Header.Set(fasthttp.HeaderLocation, location)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetStatusCode(fasthttp.StatusFound)
}
