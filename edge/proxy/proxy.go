package proxy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge"
	"postern.dev/postern/edge/oidc"
	"postern.dev/postern/edge/tokens"
	"postern.dev/postern/flows"
)

// Writer is what the proxy needs of the cluster: a replicated write (sign-out) and a barrier (to find a
// session made on another edge a moment ago). *cluster.Node implements it.
type Writer interface {
	Propose(ctx context.Context, cmd directory.Command) (*directory.Result, error)
	Barrier(ctx context.Context) error
}

// Exchange redeems an authorization code at the tenant's token endpoint for the app client
// (oidc.Provider.ExchangeCode).
type Exchange func(tenant, client, code, redirectURI, verifier string) (oidc.TokenSet, error)

// Config wires a proxy.
type Config struct {
	Store *directory.Store
	Keys  *tokens.KeyRing
	// KEK seals the host session and sign-in state cookies.
	KEK      *directory.KEK
	Write    Writer
	Exchange Exchange
	// Extensions runs the tenants' OnProxyRequest extensions; nil: none runs.
	Extensions *flows.Runner
	// PublicURL is the edge's public base URL; a tenant's issuer is PublicURL + "/" + tenant.
	PublicURL string
	Log       *slog.Logger
	// Now is the clock (tests inject one); nil means a clock read from memory, at most about 10 ms
	// behind time.Now (clock.go).
	Now func() time.Time
	// UpstreamTimeout bounds each read from and write to an upstream (an idle timeout); 0 means 60 s.
	UpstreamTimeout time.Duration
	// DialTimeout bounds connecting to an upstream; 0 means 5 s.
	DialTimeout time.Duration
	// TokenCacheSize bounds the cache of verified access tokens; 0 means 16384.
	TokenCacheSize int
}

// Proxy serves the routed hosts of every tenant.
//
// Concurrency: Handle runs on many goroutines; Invalidate may be called from any goroutine.
type Proxy struct {
	cfg Config
	gen atomic.Uint64 // bumped by every invalidation; a load that raced one is not cached

	// Lower-cased host → entry: the routed hosts (a snapshot: read on every proxied request), and those
	// found not routed (bounded, since the Host header is the client's to choose).
	routes   snapshot[string, *routeEntry]
	unrouted *cache[string, *routeEntry]

	users *hotCache[recordKey, *identity]

	exts snapshot[string, []directory.Extension] // tenant of a route → its OnProxyRequest extensions

	tokens  *hotCache[string, verified] // bearer token → its verified claims
	cookies *hotCache[string, verified] // session cookie value → what it opened to
	state   stateCache

	clients sync.Map // upstream URL → *upstream
}

// maxHosts bounds the cache of hosts, routed or not (the Host header is the client's to choose).
const maxHosts = 8192

type routeEntry struct {
	route *directory.Route // nil: the host is not routed
	up    *upstream
	app   atomic.Pointer[directory.App] // the route's app, read on first need (extension requests name it)
}

// New builds a proxy.
func New(cfg Config) *Proxy {
	if cfg.Now == nil {
		cfg.Now = coarse.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 60 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.TokenCacheSize <= 0 {
		cfg.TokenCacheSize = 16384
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	n := cfg.TokenCacheSize
	return &Proxy{cfg: cfg,
		unrouted: newCache[string, *routeEntry](maxHosts), users: newHotCache[recordKey, *identity](n, hashRecord),
		tokens: newHotCache[string, verified](n, hashString), cookies: newHotCache[string, verified](n, hashString),
		state: stateCache{sessions: newHotCache[recordKey, sessionState](n, hashRecord), revoked: newHotCache[recordKey, bool](n, hashRecord)}}
}

// Invalidate drops what the proxy cached of a record after a change to it (Kind and ID of a
// [directory.Change]; "" tenant or kind: everything). Wire it to the cluster's apply notifications: the
// proxy's revocation checks rely on it (see state.go).
func (p *Proxy) Invalidate(tenant, kind, id string) {
	p.gen.Add(1)
	all := tenant == "" || kind == ""
	if all || kind == "route" || kind == "tenant" || kind == "app" {
		p.routes.clear()
		p.unrouted.clear()
	}
	ofTenant := func(k recordKey, _ *identity) bool { return k.tenant == tenant }
	switch {
	case all:
		p.users.clear()
		p.state.clear()
	case kind == "tenant":
		p.users.deleteFunc(ofTenant)
		p.state.clear()
	case kind == "group":
		p.users.deleteFunc(ofTenant)
	case kind == "user":
		p.users.delete(recordKey{tenant, id})
	case kind == "session":
		p.state.sessions.delete(recordKey{tenant, id})
	case kind == "revoked":
		p.state.revoked.delete(recordKey{tenant, id})
	}
	if all || kind == "extension" || kind == "tenant" {
		p.exts.clear()
	}
	if all || kind == "key" || kind == "tenant" {
		p.tokens.clear()
		p.cookies.clear()
		if p.cfg.Keys != nil {
			p.cfg.Keys.Invalidate(tenant)
		}
	}
}

func (p *Proxy) issuer(tenant string) string { return p.cfg.PublicURL + "/" + tenant }

// route finds the route of a Host header, from the cache.
func (p *Proxy) route(host []byte) *routeEntry {
	if hasUpper(host) {
		host = bytes.ToLower(host)
	}
	if e, ok := getSnapshotBytes(&p.routes, host); ok {
		return e
	}
	if e, ok := getBytes(p.unrouted, host); ok {
		return e
	}
	h := string(host)
	gen := p.gen.Load()
	e := &routeEntry{}
	rt, err := p.cfg.Store.RouteByHost(h)
	switch {
	case err == nil:
		e.route = &rt
		up, uerr := p.upstream(rt.Upstream)
		if uerr != nil {
			p.cfg.Log.Error("proxy: route has an unusable upstream", "host", h, "tenant", rt.Tenant, "err", uerr)
		}
		e.up = up
	case errors.Is(err, directory.ErrNotFound):
	default:
		// The replica failed: answer as not routed this time, and do not remember it.
		p.cfg.Log.Error("proxy: reading route", "host", h, "err", err)
		return e
	}
	if p.gen.Load() != gen {
		return e
	}
	if e.route == nil {
		return p.unrouted.putIfAbsent(h, e)
	}
	return p.routes.putIfAbsent(h, e)
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// Handle serves the request if its Host is a route's and reports whether it did.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx) bool {
	e := p.route(ctx.Host())
	if e.route == nil {
		if path := ctx.Path(); bytes.HasPrefix(path, []byte(pathAuth)) && forwardAuthPath(string(path)) {
			p.forwardAuth(ctx, string(path))
			return true
		}
		return false
	}
	p.serve(ctx, e)
	return true
}

// writeContext bounds a write or barrier the proxy waits for.
func writeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// StreamsRequestBody tells the edge server that the proxy passes request bodies upstream as they arrive,
// so uploads through it are not bounded by the server's buffer.
func (p *Proxy) StreamsRequestBody() bool { return true }

var _ edge.BodyStreamer = (*Proxy)(nil)
