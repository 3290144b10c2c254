package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

// CallbackPath is the redirect URI path a proxy route registers for its app on the route's host
// (CONTRACT.md): the app of a route may be sent back to {scheme}://{host}/.postern/callback without
// listing it in redirect_uris.
const CallbackPath = "/.postern/callback"

// routeCallbacks lists the implicit redirect URIs of an app: the callback on each of its tenant's routes
// that sign in with it. https always; http as well when the edge itself is served over http (a
// development setup), so a production edge never sends codes over plain http to a routed host.
func (p *Provider) routeCallbacks(tenant string, app directory.App) ([]string, error) {
	routes, err := p.cfg.Store.Routes(tenant)
	if err != nil {
		return nil, err
	}
	plain := strings.HasPrefix(p.cfg.PublicURL, "http://")
	var out []string
	for _, rt := range routes {
		if rt.App != app.Name {
			continue
		}
		out = append(out, "https://"+rt.Host+CallbackPath)
		if plain {
			out = append(out, "http://"+rt.Host+CallbackPath)
		}
	}
	return out, nil
}

// withRouteCallbacks returns the app with its implicit route callbacks added to its redirect URIs, and
// whether any route signs in with it.
func (p *Provider) withRouteCallbacks(tenant string, app directory.App) (directory.App, bool, error) {
	cbs, err := p.routeCallbacks(tenant, app)
	if err != nil || len(cbs) == 0 {
		return app, false, err
	}
	uris := slices.Clone(app.RedirectURIs)
	for _, cb := range cbs {
		if !slices.Contains(uris, cb) {
			uris = append(uris, cb)
		}
	}
	app.RedirectURIs = uris
	return app, true, nil
}

// internalClient is the user value that marks a token request made inside this process by the proxy
// for a route's app. Network clients cannot set user values, and the provider honours it only for an
// app that a route of the tenant signs in with: the proxy holds no client secret (the directory keeps
// only its hash), and does not need one, being part of the same trusted binary.
type internalClient struct{}

// TokenSet is the answer of a token request (RFC 6749 section 5.1, OIDC Core section 3.1.3.3).
type TokenSet struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// ExchangeCode redeems an authorization code at the tenant's token endpoint for a route's app, as the
// proxy's sign-in does: a real token request with the code, redirect_uri and PKCE verifier, served by
// the same handler as any client's (single use decided in raft, PKCE, redirect URI and expiry checked),
// dispatched in process rather than over the network.
func (p *Provider) ExchangeCode(tenant, clientID, code, redirectURI, verifier string) (TokenSet, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"code_verifier": {verifier}, "client_id": {clientID}}
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(p.issuer(tenant) + pathToken)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.SetBodyString(form.Encode())
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	ctx.SetUserValue(internalClient{}, clientID)
	if !p.Handle(&ctx) {
		return TokenSet{}, fmt.Errorf("tenant %q has no token endpoint here", tenant)
	}
	body := ctx.Response.Body()
	if ctx.Response.StatusCode() != fasthttp.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			return TokenSet{}, fmt.Errorf("token endpoint answered %d", ctx.Response.StatusCode())
		}
		return TokenSet{}, &ExchangeError{Code: e.Error, Description: e.Description}
	}
	var ts TokenSet
	if err := json.Unmarshal(body, &ts); err != nil {
		return TokenSet{}, fmt.Errorf("reading the token response: %w", err)
	}
	if ts.IDToken == "" || ts.AccessToken == "" {
		return TokenSet{}, errors.New("the token response lacks an ID token or access token")
	}
	return ts, nil
}

// ExchangeError is an OAuth error answer of the token endpoint (RFC 6749 section 5.2).
type ExchangeError struct {
	Code        string
	Description string
}

func (e *ExchangeError) Error() string { return e.Code + ": " + e.Description }
