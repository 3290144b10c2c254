package directory

import (
	"errors"
	"strings"

	"postern.dev/postern/directory/manifest"
)

// CheckApp applies the manifest's rules for an app (redirect URI safety, grant types, lifetimes, names)
// to an app made through the admin API, so both ways in accept exactly the same apps.
func CheckApp(a App) error {
	m := manifest.Manifest{Tenant: a.Tenant, Apps: []manifest.App{{
		Name: a.Name, Type: a.Type, ClientID: a.ClientID, RedirectURIs: a.RedirectURIs,
		PostLogoutRedirectURIs: a.PostLogoutRedirectURIs, GrantTypes: a.GrantTypes,
		AccessTokenTTL: manifest.Duration(a.AccessTokenTTL), IDTokenTTL: manifest.Duration(a.IDTokenTTL),
		RefreshTokenTTL: manifest.Duration(a.RefreshTokenTTL), SigningAlg: a.SigningAlg, JWKS: a.JWKS,
	}}}
	var errs manifest.Errors
	if err := m.Validate(); !errors.As(err, &errs) {
		return err
	}
	var msgs []string
	for _, e := range errs {
		if strings.HasPrefix(e.Field, "apps[0]") {
			msgs = append(msgs, strings.TrimPrefix(strings.TrimPrefix(e.Field, "apps[0]"), ".")+": "+e.Message)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return invalid("%s", strings.Join(msgs, "; "))
}
