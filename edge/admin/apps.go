package admin

import (
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

type appBody struct {
	Name                   *string             `json:"name,omitempty"`
	Type                   string              `json:"type,omitempty"`
	ClientID               string              `json:"client_id,omitempty"`
	ClientSecret           string              `json:"client_secret,omitempty"`
	RedirectURIs           *[]string           `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs *[]string           `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             *[]string           `json:"grant_types,omitempty"`
	AccessTokenTTL         *directory.Duration `json:"access_token_ttl,omitempty"`
	IDTokenTTL             *directory.Duration `json:"id_token_ttl,omitempty"`
	RefreshTokenTTL        *directory.Duration `json:"refresh_token_ttl,omitempty"`
	SigningAlg             *string             `json:"signing_alg,omitempty"`
	JWKS                   *string             `json:"jwks,omitempty"`
	// RotateSecret, on update, adds a new generated secret and keeps the old ones valid.
	RotateSecret bool `json:"rotate_secret,omitempty"`
}

// appView is an app as the API shows it: ClientSecret only in the answer that generated it.
type appView struct {
	directory.App
	ClientSecret string `json:"client_secret,omitempty"`
}

// findApp accepts an app's id, client_id or name in the URL.
func (s *Server) findApp(tenant, ref string) (directory.App, error) {
	if _, err := s.store.Tenant(tenant); err != nil {
		return directory.App{}, notFoundAs(err, "tenant", tenant)
	}
	for _, lookup := range []func(string, string) (directory.App, error){s.store.App, s.store.AppByClientID, s.store.AppByName} {
		if a, err := lookup(tenant, ref); err == nil {
			return a, nil
		}
	}
	return directory.App{}, notFoundAs(directory.ErrNotFound, "app", ref)
}

func (s *Server) listApps(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	if _, err := s.store.Tenant(c.param("tenant")); err != nil {
		return notFoundAs(err, "tenant", c.param("tenant"))
	}
	apps, err := s.store.Apps(c.param("tenant"))
	if err != nil {
		return err
	}
	out := make([]directory.App, len(apps))
	for i, a := range apps {
		out[i] = a.Public()
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, out)
}

func (s *Server) getApp(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	a, err := s.findApp(c.param("tenant"), c.param("app"))
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, a.Public())
}

func (s *Server) createApp(c *call) error {
	var b appBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	if b.Name == nil || *b.Name == "" {
		return badRequest("name is required")
	}
	app := directory.App{ID: directory.NewID(), Tenant: c.param("tenant"), Name: *b.Name, Type: b.Type, ClientID: b.ClientID}
	if app.ClientID == "" {
		app.ClientID = directory.NewID()
	}
	setIf(&app.RedirectURIs, b.RedirectURIs)
	setIf(&app.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs)
	setIf(&app.GrantTypes, b.GrantTypes)
	if len(app.GrantTypes) == 0 {
		app.GrantTypes = directory.DefaultGrantTypes(app.Type)
	}
	setIf(&app.AccessTokenTTL, b.AccessTokenTTL)
	setIf(&app.IDTokenTTL, b.IDTokenTTL)
	setIf(&app.RefreshTokenTTL, b.RefreshTokenTTL)
	setIf(&app.SigningAlg, b.SigningAlg)
	setIf(&app.JWKS, b.JWKS)
	if err := checkApp(app, b.ClientSecret); err != nil {
		return err
	}
	generated := ""
	if app.Confidential() {
		secret := b.ClientSecret
		if secret == "" {
			secret = directory.NewClientSecret()
			generated = secret
		}
		app.Secrets = []directory.SecretHash{{Hash: directory.HashClientSecret(secret), CreatedAt: time.Now().UTC()}}
	}
	keyOps, _, err := directory.MissingKeyOps(s.store, s.cfg.KEK, app.Tenant, app.SigningAlg)
	if err != nil {
		return err
	}
	res, err := s.propose(c, append([]directory.Op{directory.MakeOp(directory.OpAppCreate, app)}, keyOps...)...)
	if err != nil {
		return err
	}
	created, err := output[directory.App](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusCreated, appView{created, generated})
}

// checkApp applies the same rules to API-made apps as the manifest does to declared ones.
func checkApp(app directory.App, secret string) error {
	if err := directory.CheckApp(app); err != nil {
		return badRequest(err.Error())
	}
	if secret != "" && !app.Confidential() {
		return badRequest("a " + app.Type + " app is a public client and cannot have a client_secret")
	}
	if secret != "" && len(secret) < 32 {
		return badRequest("client_secret must be at least 32 characters (it is stored with a fast hash, so it must be random and long)")
	}
	return nil
}

func (s *Server) updateApp(c *call) error {
	var b appBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	app, err := s.findApp(c.param("tenant"), c.param("app"))
	if err != nil {
		return err
	}
	if b.Type != "" && b.Type != app.Type {
		return badRequest("an app's type cannot change; create a new app")
	}
	if b.ClientID != "" && b.ClientID != app.ClientID {
		return badRequest("an app's client_id cannot change; create a new app")
	}
	p := directory.AppPatch{Tenant: app.Tenant, ID: app.ID, Name: b.Name, RedirectURIs: b.RedirectURIs,
		PostLogoutRedirectURIs: b.PostLogoutRedirectURIs, GrantTypes: b.GrantTypes, AccessTokenTTL: b.AccessTokenTTL,
		IDTokenTTL: b.IDTokenTTL, RefreshTokenTTL: b.RefreshTokenTTL, SigningAlg: b.SigningAlg, JWKS: b.JWKS}
	// Check the app as it will be.
	next := app
	setIf(&next.Name, b.Name)
	setIf(&next.RedirectURIs, b.RedirectURIs)
	setIf(&next.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs)
	setIf(&next.GrantTypes, b.GrantTypes)
	setIf(&next.AccessTokenTTL, b.AccessTokenTTL)
	setIf(&next.IDTokenTTL, b.IDTokenTTL)
	setIf(&next.RefreshTokenTTL, b.RefreshTokenTTL)
	setIf(&next.SigningAlg, b.SigningAlg)
	setIf(&next.JWKS, b.JWKS)
	if err := checkApp(next, b.ClientSecret); err != nil {
		return err
	}
	generated := ""
	if b.ClientSecret != "" || b.RotateSecret {
		if !app.Confidential() {
			return badRequest("a " + app.Type + " app is a public client and has no secret")
		}
		secret := b.ClientSecret
		if secret == "" {
			secret = directory.NewClientSecret()
			generated = secret
		}
		secrets := []directory.SecretHash{{Hash: directory.HashClientSecret(secret), CreatedAt: time.Now().UTC()}}
		if b.RotateSecret {
			secrets = append(secrets, app.Secrets...)
		}
		p.Secrets = &secrets
	}
	keyOps, _, err := directory.MissingKeyOps(s.store, s.cfg.KEK, app.Tenant, next.SigningAlg)
	if err != nil {
		return err
	}
	res, err := s.propose(c, append([]directory.Op{directory.MakeOp(directory.OpAppUpdate, p)}, keyOps...)...)
	if err != nil {
		return err
	}
	updated, err := output[directory.App](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, appView{updated, generated})
}

func (s *Server) deleteApp(c *call) error {
	app, err := s.findApp(c.param("tenant"), c.param("app"))
	if err != nil {
		return err
	}
	if _, err := s.propose(c, directory.MakeOp(directory.OpAppDelete, directory.Ref{Tenant: app.Tenant, ID: app.ID})); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}
