package oidc

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/pages"
	"postern.dev/postern/edge/tokens"
	"postern.dev/postern/flows"
)

// Writer is what the provider needs of the cluster: a write that is replicated and applied here before it
// returns. *cluster.Node implements it.
type Writer interface {
	Propose(ctx context.Context, cmd directory.Command) (*directory.Result, error)
	Barrier(ctx context.Context) error
	WaitApplied(ctx context.Context, index uint64) error
}

// waitIndex lets this replica catch up to a write made on another edge (a session whose raft index a
// code or cookie carries), for at most a moment; reads fall back to a barrier if it is still behind.
func (p *Provider) waitIndex(index uint64) {
	if index == 0 || p.cfg.Store.AppliedIndex() >= index {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.cfg.Write.WaitApplied(ctx, index)
}

// fresh reads from the local replica and, when the record is not there, waits for a barrier (every
// committed write applied here) and reads again: a session, code grant or refresh family made on another
// edge a moment ago may not have reached this one. The common case costs nothing; the rare miss costs a
// round trip to the leader.
func fresh[T any](p *Provider, read func() (T, error)) (T, error) {
	return freshAfter(p, 0, read)
}

// freshAfter reads after this replica has reached index (when the writer of the record said which). A
// record still missing then is really missing: no barrier, so an old cookie or code cannot make an edge
// write to the log at will. Without an index it falls back to fresh's barrier.
func freshAfter[T any](p *Provider, index uint64, read func() (T, error)) (T, error) {
	if index > 0 {
		p.waitIndex(index)
		if p.cfg.Store.AppliedIndex() >= index {
			return read()
		}
	}
	v, err := read()
	if err == nil || !errors.Is(err, directory.ErrNotFound) {
		return v, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if berr := p.cfg.Write.Barrier(ctx); berr != nil {
		return v, err
	}
	return read()
}

// Config wires a provider.
type Config struct {
	Store *directory.Store
	Write Writer
	Keys  *tokens.KeyRing
	KEK   *directory.KEK
	// PublicURL is the edge's public base URL; a tenant's issuer is PublicURL + "/" + tenant.
	PublicURL string
	Log       *slog.Logger
	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time
	// Mail delivers a message (the sign-up code) to an address; nil refuses sign-ups that need email
	// verification.
	Mail func(ctx context.Context, tenant, to, subject, text string) error
	// Extensions runs the tenants' extensions at the journeys' events; nil: no extension runs.
	Extensions *flows.Runner
}

// Provider serves every tenant's OpenID Connect endpoints.
//
// Concurrency: Handle runs on many goroutines; Invalidate may be called from any goroutine.
type Provider struct {
	cfg   Config
	gen   atomic.Uint64 // bumped by every invalidation; a load that raced one is not cached
	cache sync.Map      // tenant id → *tenantEntry
	// assertions catches replayed private_key_jwt client assertions.
	assertions seenAssertions
	// csrf and codeKey are derived from the KEK once, not per request.
	csrf    *pages.CSRF
	codeKey []byte
}

type tenantEntry struct {
	tenant directory.Tenant
	apps   sync.Map                              // client_id → directory.App
	exts   atomic.Pointer[[]directory.Extension] // the tenant's extensions, loaded on first use
}

// New builds a provider.
func New(cfg Config) *Provider {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Provider{cfg: cfg, csrf: pages.NewCSRF(cfg.KEK.DeriveKey("csrf")), codeKey: cfg.KEK.DeriveKey("signup-code")}
}

// Invalidate drops cached records of a tenant after a change of the given kind ("" tenant: everything).
// Wire it to the cluster's apply notifications.
func (p *Provider) Invalidate(tenant, kind string) {
	p.gen.Add(1)
	if tenant == "" {
		p.cache.Clear()
	} else {
		switch kind {
		case "tenant", "app", "key", "route", "extension", "":
			p.cache.Delete(tenant)
		}
	}
	if p.cfg.Keys != nil && (kind == "key" || kind == "tenant" || kind == "") {
		p.cfg.Keys.Invalidate(tenant)
	}
}

func (p *Provider) issuer(tenant string) string { return p.cfg.PublicURL + "/" + tenant }

func (p *Provider) tenant(id string) (*tenantEntry, bool) {
	if e, ok := p.cache.Load(id); ok {
		return e.(*tenantEntry), true
	}
	if directory.ValidTenantID(id) != nil {
		return nil, false
	}
	gen := p.gen.Load()
	t, err := p.cfg.Store.Tenant(id)
	if err != nil {
		return nil, false
	}
	e := &tenantEntry{tenant: t}
	if p.gen.Load() == gen {
		if prev, loaded := p.cache.LoadOrStore(id, e); loaded {
			return prev.(*tenantEntry), true
		}
	}
	return e, true
}

// app finds a tenant's app by client_id, from the cache.
func (p *Provider) app(te *tenantEntry, clientID string) (directory.App, bool) {
	if a, ok := te.apps.Load(clientID); ok {
		return a.(directory.App), true
	}
	gen := p.gen.Load()
	a, err := p.cfg.Store.AppByClientID(te.tenant.ID, clientID)
	if err != nil {
		return directory.App{}, false
	}
	a, _, err = p.withRouteCallbacks(te.tenant.ID, a)
	if err != nil {
		return directory.App{}, false
	}
	if p.gen.Load() == gen {
		te.apps.Store(clientID, a)
	}
	return a, true
}

// Handle serves the request if its path belongs to a tenant's issuer and reports whether it did.
func (p *Provider) Handle(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.Path())
	if rest, ok := strings.CutPrefix(path, "/.well-known/oauth-authorization-server/"); ok {
		// RFC 8414 section 3: the well-known segment goes between host and the issuer's path.
		te, ok := p.tenant(rest)
		if !ok {
			return false
		}
		p.metadata(ctx, te, false)
		return true
	}
	tenantID, sub, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	te, ok := p.tenant(tenantID)
	if !ok {
		return false
	}
	method := string(ctx.Method())
	if p.cors(ctx, te, "/"+sub) && method == fasthttp.MethodOptions {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return true
	}
	switch "/" + sub {
	case "/.well-known/openid-configuration":
		p.metadata(ctx, te, true)
	case "/.well-known/oauth-authorization-server":
		p.metadata(ctx, te, false)
	case pathJWKS:
		p.jwks(ctx, te)
	case pathAuthorize:
		if method != fasthttp.MethodGet && method != fasthttp.MethodPost {
			methodNotAllowed(ctx, "GET, POST")
			break
		}
		p.authorize(ctx, te)
	case pathSignIn:
		p.signIn(ctx, te)
	case pathSignUp:
		p.signUp(ctx, te)
	case pathVerify:
		p.verify(ctx, te)
	case pathSignOut, pathEndSession:
		p.signOut(ctx, te)
	case pathToken:
		if method != fasthttp.MethodPost {
			methodNotAllowed(ctx, "POST")
			break
		}
		p.token(ctx, te)
	case pathUserinfo:
		if method != fasthttp.MethodGet && method != fasthttp.MethodPost {
			methodNotAllowed(ctx, "GET, POST")
			break
		}
		p.userinfo(ctx, te)
	case pathRevoke:
		if method != fasthttp.MethodPost {
			methodNotAllowed(ctx, "POST")
			break
		}
		p.revoke(ctx, te)
	case pathIntrospect:
		if method != fasthttp.MethodPost {
			methodNotAllowed(ctx, "POST")
			break
		}
		p.introspect(ctx, te)
	default:
		return false
	}
	return true
}

// Endpoint paths below an issuer.
const (
	pathAuthorize  = "/authorize"
	pathToken      = "/token"
	pathUserinfo   = "/userinfo"
	pathJWKS       = "/jwks"
	pathRevoke     = "/revoke"
	pathIntrospect = "/introspect"
	pathEndSession = "/end_session"
)

func methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set("Allow", allow)
	writeJSON(ctx, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "method not allowed"})
}

// cors lets browser apps (SPAs) call the token, userinfo and revocation endpoints from the origins of
// the tenant's registered redirect URIs, and nothing else (no wildcard on endpoints that take
// credentials). It reports whether the request was a CORS request it allowed.
func (p *Provider) cors(ctx *fasthttp.RequestCtx, te *tenantEntry, path string) bool {
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin == "" || (path != pathToken && path != pathUserinfo && path != pathRevoke) {
		return false
	}
	apps, err := p.cfg.Store.Apps(te.tenant.ID)
	if err != nil {
		return false
	}
	allowed := false
	for _, a := range apps {
		for _, u := range a.RedirectURIs {
			if formActionSource(u) == origin {
				allowed = true
			}
		}
	}
	if !allowed {
		return false
	}
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
	h.Set("Access-Control-Max-Age", "600")
	return true
}
