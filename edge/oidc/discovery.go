package oidc

import (
	"github.com/valyala/fasthttp"
)

// metadata answers OpenID Connect Discovery 1.0 section 4 and RFC 8414 (the same document; OIDC adds
// its own members).
func (p *Provider) metadata(ctx *fasthttp.RequestCtx, te *tenantEntry, oidc bool) {
	iss := p.issuer(te.tenant.ID)
	m := map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + pathAuthorize,
		"token_endpoint":                                iss + pathToken,
		"jwks_uri":                                      iss + pathJWKS,
		"revocation_endpoint":                           iss + pathRevoke,
		"introspection_endpoint":                        iss + pathIntrospect,
		"userinfo_endpoint":                             iss + pathUserinfo,
		"end_session_endpoint":                          iss + pathEndSession,
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials"},
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query", "form_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		"token_endpoint_auth_methods_supported":         clientAuthMethods,
		"revocation_endpoint_auth_methods_supported":    clientAuthMethods,
		"introspection_endpoint_auth_methods_supported": clientAuthMethods,
		"scopes_supported":                              []string{"openid", "profile", "email", "offline_access"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{"ES256", "RS256", "EdDSA"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash",
			"azp", "email", "email_verified", "name", "given_name", "family_name", "nickname", "picture", "locale",
			"zoneinfo", "phone_number"},
		"authorization_response_iss_parameter_supported": true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     false,
	}
	if !oidc {
		delete(m, "subject_types_supported")
		delete(m, "id_token_signing_alg_values_supported")
		delete(m, "claims_supported")
		delete(m, "end_session_endpoint") // OpenID RP-Initiated Logout: not an RFC 8414 member
	}
	ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
	writeJSON(ctx, fasthttp.StatusOK, m)
	ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	ctx.Response.Header.Del("Pragma")
}

func (p *Provider) jwks(ctx *fasthttp.RequestCtx, te *tenantEntry) {
	b, err := p.cfg.Keys.JWKS(te.tenant.ID)
	if err != nil {
		p.cfg.Log.Error("building jwks", "tenant", te.tenant.ID, "error", err)
		writeJSONError(ctx, errServer(err))
		return
	}
	ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
	ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	ctx.SetContentType("application/jwk-set+json")
	ctx.SetBody(b)
}
