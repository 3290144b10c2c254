package proxy

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/tokens"
)

// Config wires a proxy.
type Config struct {
	Store *directory.Store
	Keys  *tokens.KeyRing
	// PublicURL is the edge's public base URL; a tenant's issuer is PublicURL + "/" + tenant.
	PublicURL string
	Log       *slog.Logger
	// Now is the clock (tests inject one); nil means time.Now.
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

	routes   sync.Map // lower-cased host → *routeEntry (nil route: not routed)
	negative atomic.Int64

	users sync.Map // tenant → *sync.Map (user id → *identity)

	tokens *tokenCache

	clients sync.Map // upstream URL → *upstream
}

// maxNegativeHosts bounds the cache of hosts that are not routed (the Host header is the client's to
// choose); past it the negatives are dropped and start again.
const maxNegativeHosts = 4096

type routeEntry struct {
	route *directory.Route // nil: the host is not routed
	up    *upstream
}

// New builds a proxy.
func New(cfg Config) *Proxy {
	if cfg.Now == nil {
		cfg.Now = time.Now
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
	return &Proxy{cfg: cfg, tokens: newTokenCache(cfg.TokenCacheSize)}
}

// Invalidate drops cached records of a tenant after a change of the given kind ("" tenant or kind:
// everything). Wire it to the cluster's apply notifications. Revocations (kinds "revoked" and
// "session") need nothing: they are read from the replica on every request.
func (p *Proxy) Invalidate(tenant, kind string) {
	p.gen.Add(1)
	all := tenant == "" || kind == ""
	if all || kind == "route" || kind == "tenant" {
		p.routes.Clear()
		p.negative.Store(0)
	}
	if all || kind == "user" || kind == "group" || kind == "tenant" {
		if tenant == "" {
			p.users.Clear()
		} else {
			p.users.Delete(tenant)
		}
	}
	if all || kind == "key" || kind == "tenant" {
		p.tokens.clear()
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
	if e, ok := p.routes.Load(string(host)); ok {
		return e.(*routeEntry)
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
		if p.negative.Add(1) > maxNegativeHosts {
			p.routes.Range(func(k, v any) bool {
				if v.(*routeEntry).route == nil {
					p.routes.Delete(k)
				}
				return true
			})
			p.negative.Store(1)
		}
	}
	if prev, loaded := p.routes.LoadOrStore(h, e); loaded {
		return prev.(*routeEntry)
	}
	return e
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
		return false
	}
	p.serve(ctx, e)
	return true
}
