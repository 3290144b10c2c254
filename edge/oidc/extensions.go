package oidc

import (
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/flows"
)

// Tenant extensions in the journeys (issue 5): the provider asks flows.Runner at each event and does
// what the decision says. Without a Runner (Config.Extensions nil), or without extensions for the event,
// the journeys are unchanged and cost nothing more.

// extensionBudget bounds all the extension calls of one event in a journey, whatever each extension's
// own timeout: a page must answer.
const extensionBudget = 10 * time.Second

// extensionsFor lists the tenant's extensions subscribed to ev, from the tenant's cache entry (dropped
// on any extension change).
func (p *Provider) extensionsFor(te *tenantEntry, ev flows.Event) ([]directory.Extension, error) {
	if p.cfg.Extensions == nil {
		return nil, nil
	}
	all := te.exts.Load()
	if all == nil {
		list, err := p.cfg.Store.Extensions(te.tenant.ID)
		if err != nil {
			return nil, err
		}
		all = &list
		te.exts.Store(all)
	}
	return flows.Subscribed(*all, ev), nil
}

// eventContext describes the journey to an extension.
func (p *Provider) eventContext(ctx *fasthttp.RequestCtx, te *tenantEntry, clientID, locale string) flows.EventContext {
	app, _ := p.app(te, clientID)
	return flows.EventContext{Tenant: te.tenant.ID, App: app, CorrelationID: directory.NewID()[:12],
		ClientIP: ctx.RemoteIP().String(), Locale: locale}
}

// extensionFailed shows the branded error page for a journey an extension stopped (on_error: fail) and
// logs why, under the page's correlation id.
func (p *Provider) extensionFailed(ctx *fasthttp.RequestCtx, te *tenantEntry, uiLocales string, err error) {
	ref := directory.NewID()[:12]
	var xe *flows.ExtensionError
	if errors.As(err, &xe) {
		p.cfg.Log.Warn("an extension stopped the journey (on_error: fail)", "tenant", te.tenant.ID,
			"event", string(xe.Event), "extension", xe.Extension, "correlation_id", ref, "error", xe.Err)
	} else {
		p.cfg.Log.Error("running extensions", "tenant", te.tenant.ID, "correlation_id", ref, "error", err)
	}
	p.errorPageRef(ctx, te, fasthttp.StatusServiceUnavailable, "extension_failed", uiLocales, ref)
}

// blockPage shows an extension's block page (showBlockPage): its message on the tenant's error page.
func (p *Provider) blockPage(ctx *fasthttp.RequestCtx, te *tenantEntry, uiLocales string, b *flows.Block) {
	msg := b.Message
	if msg == "" {
		msg = b.Title
	}
	if msg == "" {
		msg = "sign_up_blocked"
	}
	p.cfg.Log.Info("an extension blocked the journey", "tenant", te.tenant.ID, "extension", b.Extension)
	p.errorPage(ctx, te, fasthttp.StatusForbidden, msg, uiLocales)
}

func extensionContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), extensionBudget)
}

// tokenClaims runs OnTokenIssuanceStart for the user about to get tokens at the client, and returns the
// claims the extensions provide (nil when none).
func (p *Provider) tokenClaims(ctx *fasthttp.RequestCtx, te *tenantEntry, clientID, locale, userID string) (map[string]any, error) {
	exts, err := p.extensionsFor(te, flows.EventTokenIssuanceStart)
	if err != nil || len(exts) == 0 {
		return nil, err
	}
	user, err := fresh(p, func() (directory.User, error) { return p.cfg.Store.User(te.tenant.ID, userID) })
	if err != nil {
		return nil, err
	}
	c, cancel := extensionContext()
	defer cancel()
	d, err := p.cfg.Extensions.TokenIssuanceStart(c, exts, flows.TokenIssuanceStartInput{
		EventContext: p.eventContext(ctx, te, clientID, locale), User: user})
	if err != nil {
		return nil, err
	}
	return d.Claims, nil
}

// addClaims puts extension claims into a token's claims, never over one the provider set.
func addClaims(dst map[string]any, extra map[string]any) {
	for k, v := range extra {
		if _, taken := dst[k]; !taken && !flows.ProtectedClaim(k) {
			dst[k] = v
		}
	}
}
