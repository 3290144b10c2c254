package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The auth proxy scenario: requests for a routed host, sent to a real `postern dev` process with a user's
// credentials, forwarded to an upstream app the bench runs; beside them, the same requests through a bare
// fasthttp reverse proxy to the same upstream. Upstream and bare proxy are peers (see peer.go): processes
// of their own, so that the postern process and its baseline are measured in the same conditions.

const (
	proxyTenant = "bench-proxy"
	proxyApp    = "bench-proxy-web"
	proxyHost   = "bench.localhost" // the route's host, with the edge's port
)

// warmUp is how long each turn of the proxy scenario runs unmeasured before it is measured: the first
// moments after a switch from one proxy to the other (threads waking, caches refilled) cost whichever
// side comes second, and the order of turns then decides a part of the ratio.
const warmUp = 250 * time.Millisecond

// proxyForward measures GET requests forwarded by the auth proxy for a signed-in user, in either way the
// proxy knows: a bearer access token of the tenant, or the host's session cookie, sent with every request
// as an app's client or a browser sends it. The upstream answers 200 with upstreamBodySize bytes.
//
// First saturation: cfg.Writers clients, each on its own keep-alive connection, in a closed loop, give
// requests per second and the CPU time the edge process spends on each. Then an open loop at half the bare
// proxy's saturation rate, a load every server should take at ease, gives the latencies a user sees. The
// bare proxy, the bearer token and the session cookie are measured in turns (alternateAll). On a machine
// of few cores, where the load generator, the upstream and the proxy share them, the p99 reads the
// machine's scheduling hiccups as much as the proxy: the CPU time per request and the p50 are steadier.
//
// The scenario declares a tenant of its own rather than adding a route to the sample tenant: a manifest
// declares a whole tenant, and re-declaring the sample's would tie the bench to it. The proxy does the
// same work for any tenant.
func proxyForward(cfg Config, bin, peer *goBinary) Scenario {
	conns := max(cfg.Writers, 1)
	return Scenario{
		Name:     "proxy/forward",
		Baseline: "bare fasthttp reverse proxy (HostClient.Do over a keep-alive pool, its own process, the edge's client read and idle timeouts), same upstream",
		binaries: []*goBinary{bin, peer},
		Run: func(ctx context.Context) (Figures, error) {
			dir, err := os.MkdirTemp(cfg.Dir, "postern-bench-proxy-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			e, err := startDevEdge(ctx, bin, dir, cfg.logger())
			if err != nil {
				return nil, err
			}
			defer e.stop()
			up, err := startPeer(ctx, peer, dir, "upstream")
			if err != nil {
				return nil, err
			}
			defer up.stop()
			bare, err := startPeer(ctx, peer, dir, "bare-proxy", "-upstream", up.addr)
			if err != nil {
				return nil, err
			}
			defer bare.stop()
			cfg.logger().Info("started the proxy's peers", "upstream", up.addr, "bare_proxy", bare.addr)

			host, app, err := setUpProxyRoute(ctx, e, up.addr)
			if err != nil {
				return nil, err
			}
			disc, err := discoverTenant(ctx, e, proxyTenant)
			if err != nil {
				return nil, err
			}
			cr, err := signInToProxy(e, disc, app, host)
			if err != nil {
				return nil, fmt.Errorf("getting credentials: %w%s", err, e.logTail())
			}
			if err := checkProxy(e, bare.addr, host, cr); err != nil {
				return nil, fmt.Errorf("checking the proxy: %w%s", err, e.logTail())
			}

			// One set of connections to each server, kept from one phase to the next.
			edgeConns, bareConns := make([]*fasthttp.HostClient, conns), make([]*fasthttp.HostClient, conns)
			for w := range conns {
				edgeConns[w], bareConns[w] = connection(e.edgeAddr()), connection(bare.addr)
				defer edgeConns[w].CloseIdleConnections()
				defer bareConns[w].CloseIdleConnections()
			}
			// Pairs of (bare proxy, postern) sent the very same request, credentials included: the bare
			// proxy reads and forwards the token or cookie too, as any proxy in front of an app would.
			bearer, cookie := "Bearer "+cr.bearer, proxySessionCookie+"="+cr.cookie
			targets := []proxyTarget{
				{name: "bare proxy, bearer header", conns: bareConns, uri: "http://" + bare.addr + "/", header: "Authorization",
					value: bearer, cpu: cpuMeter{pid: bare.pid()}},
				{name: "bearer token", conns: edgeConns, uri: "http://" + host + "/", header: "Authorization",
					value: bearer, cpu: cpuMeter{pid: e.pid()}},
				{name: "bare proxy, cookie header", conns: bareConns, uri: "http://" + bare.addr + "/", header: "Cookie",
					value: cookie, cpu: cpuMeter{pid: bare.pid()}},
				{name: "session cookie", conns: edgeConns, uri: "http://" + host + "/", header: "Cookie",
					value: cookie, cpu: cpuMeter{pid: e.pid()}},
			}
			saturated := make([]func(time.Duration) (*measure, error), len(targets))
			for i := range targets {
				t := &targets[i]
				profiled := i%2 == 0 || cfg.ProfileDir == "" // the bare proxy is not Postern's to profile
				saturated[i] = func(d time.Duration) (*measure, error) {
					if !profiled {
						profiled = true
						file := filepath.Join(cfg.ProfileDir, "proxy-edge-"+strings.ReplaceAll(t.name, " ", "-")+".pprof")
						go func() {
							if err := e.profile(ctx, d-time.Second, file); err != nil {
								cfg.logger().Warn("proxy: no edge profile", "err", err)
							}
						}()
					}
					if _, err := closedLoop(ctx, conns, warmUp, t.op); err != nil {
						return nil, err
					}
					return t.cpu.around(func() (*measure, error) { return closedLoop(ctx, conns, d, t.op) })
				}
			}
			sat, err := alternateAll(cfg.Duration, saturated...)
			if err != nil {
				return nil, fmt.Errorf("saturating the proxies: %w%s", err, e.logTail())
			}
			half := sat[0].perSecond() / 2
			steady := make([]func(time.Duration) (*measure, error), len(targets))
			for i := range targets {
				t := &targets[i]
				steady[i] = func(d time.Duration) (*measure, error) {
					if _, err := openLoop(ctx, conns, half, warmUp, t.op); err != nil {
						return nil, err
					}
					return openLoop(ctx, conns, half, d, t.op)
				}
			}
			lat, err := alternateAll(cfg.Duration, steady...)
			if err != nil {
				return nil, fmt.Errorf("loading the proxies at %.0f requests/s: %w%s", half, err, e.logTail())
			}
			cpu := make([]time.Duration, len(targets))
			for i, t := range targets {
				if cpu[i], err = t.cpu.perOp(sat[i], t.name+" at saturation"); err != nil {
					return nil, err
				}
				cfg.logger().Info("proxy", "via", t.name, "saturated_per_s", int(sat[i].perSecond()),
					"cpus_busy", fmt.Sprintf("%.2f of %d", t.cpu.used.Seconds()/sat[i].elapsed.Seconds(), runtime.NumCPU()),
					"cpu_per_request", cpu[i], "open_loop_per_s", int(lat[i].perSecond()),
					"open_loop_p50", lat[i].p50(), "open_loop_p99", lat[i].p99())
			}
			figs := Figures{}
			for i := 1; i < len(targets); i += 2 {
				t, b := &targets[i], i-1
				mRate, bRate := medianRound(sat[i], sat[b])
				figs = append(figs,
					rate(fmt.Sprintf("%s: requests/s, saturated (%d keep-alive connections)", t.name, conns), sat[i].perSecond()).
						againstNamed(targets[b].name, sat[b].perSecond()),
					latency(t.name+": edge CPU time per request, saturated", cpu[i]).
						againstNamed(targets[b].name, float64(cpu[b])),
					rate(fmt.Sprintf("%s: requests/s, saturated, the median of %d alternating rounds by ratio", t.name, len(sat[i].turnRates)), mRate).
						againstNamed(targets[b].name+", same round", bRate),
				)
			}
			figs = append(figs, rate("open loop: offered requests/s (half the bare proxy's saturation)", half))
			for i := 1; i < len(targets); i += 2 {
				t, b := &targets[i], i-1
				figs = append(figs,
					latency(t.name+", open loop: p50", lat[i].p50()).againstNamed(targets[b].name, float64(lat[b].p50())),
					latency(t.name+", open loop: p99", lat[i].p99()).againstNamed(targets[b].name, float64(lat[b].p99())),
					latency(t.name+", open loop: p99 added (minus the bare proxy's)", lat[i].p99()-lat[b].p99()),
					latency(fmt.Sprintf("%s, open loop: p99 added (median over %d alternating turns)", t.name, len(lat[i].turns)),
						medianTurnDiff(lat[i], lat[b])),
				)
			}
			return figs, nil
		},
	}
}

// proxyTarget is what one side of the proxy scenario sends: a GET of uri, on conns, with one header of
// credentials (the same for the bare proxy as for Postern), and the CPU time of the process that answers it.
type proxyTarget struct {
	name          string
	conns         []*fasthttp.HostClient
	uri           string
	header, value string
	cpu           cpuMeter
}

// op is worker w's request, on its own connection; anything but 200 is an error.
func (t *proxyTarget) op(w int) func(context.Context) error {
	hc := t.conns[w]
	req, resp := &fasthttp.Request{}, &fasthttp.Response{}
	req.SetRequestURI(t.uri)
	if t.header != "" {
		req.Header.Set(t.header, t.value)
	}
	return func(context.Context) error {
		if err := hc.Do(req, resp); err != nil {
			return fmt.Errorf("GET %s via the %s: %w", t.uri, t.name, err)
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			return fmt.Errorf("GET %s via the %s: HTTP %d %s", t.uri, t.name, resp.StatusCode(), snippet(resp.Body()))
		}
		return nil
	}
}

// perOp is the process's CPU time per operation of m.
func (c *cpuMeter) perOp(m *measure, what string) (time.Duration, error) {
	if c.used <= 0 || m.ops == 0 {
		return 0, fmt.Errorf("process %d used no measurable CPU time during %s", c.pid, what)
	}
	return c.used / time.Duration(m.ops), nil
}

// peerProcess is a running peer (cmd/postern-bench-peer) and where it listens.
type peerProcess struct {
	*child
	addr string // host:port
}

var peerListening = regexp.MustCompile(`listening on (\S+)`)

// startPeer starts a peer in role and waits until it listens. The caller stops it.
func startPeer(ctx context.Context, bin *goBinary, dir, role string, args ...string) (_ *peerProcess, err error) {
	path, err := bin.get(ctx)
	if err != nil {
		return nil, err
	}
	c, err := startChild(role, path, append([]string{role}, args...), nil, dir, role)
	if err != nil {
		return nil, err
	}
	p := &peerProcess{child: c}
	defer func() {
		if err != nil {
			p.stop()
			err = fmt.Errorf("%w%s", err, p.logTail())
		}
	}()
	listening := func() bool {
		if m := peerListening.FindSubmatch(p.output()); m != nil {
			p.addr = string(m[1])
		}
		return p.addr != "" || p.hasExited()
	}
	if err := waitUntil(ctx, 30*time.Second, "the "+role+" listens", listening); err != nil {
		return nil, err
	}
	if p.addr == "" {
		return nil, fmt.Errorf("the %s exited at start-up: %v", role, p.cmd.ProcessState)
	}
	return p, nil
}

// setUpProxyRoute applies the scenario's tenant, as an operator would with `postern apply`: a web app
// (its secret generated by the apply) and a route for proxyHost on the edge's port to upstream that
// any signed-in user may use; then it adds a user with a password. It returns the route's host and the
// app.
func setUpProxyRoute(ctx context.Context, e *devEdge, upstream string) (string, createdApp, error) {
	_, port, err := net.SplitHostPort(e.edgeAddr())
	if err != nil {
		return "", createdApp{}, err
	}
	host := proxyHost + ":" + port
	manifest := map[string]any{
		"tenant": proxyTenant,
		"apps":   []any{map[string]any{"name": proxyApp, "type": "web", "redirect_uris": []string{oidcRedirectURI}}},
		"routes": []any{map[string]any{"host": host, "upstream": "http://" + upstream, "app": proxyApp,
			"allow": map[string]any{"authenticated": true}}},
	}
	var applied struct {
		Apps []struct {
			Name string `json:"name"`
			createdApp
		} `json:"apps"`
	}
	if err := e.admin(ctx, "PUT", "/admin/v1/tenants/"+proxyTenant+"/manifest", manifest, &applied); err != nil {
		return "", createdApp{}, err
	}
	var app createdApp
	for _, a := range applied.Apps {
		if a.Name == proxyApp {
			app = a.createdApp
		}
	}
	if app.ClientID == "" || app.ClientSecret == "" {
		return "", createdApp{}, fmt.Errorf("applying the manifest: no client_id and secret for %s in %+v", proxyApp, applied)
	}
	if err := e.admin(ctx, "POST", "/admin/v1/tenants/"+proxyTenant+"/users", map[string]any{"email": oidcEmail,
		"password": oidcPassword, "email_verified": true}, nil); err != nil {
		return "", createdApp{}, err
	}
	// The edge learns of the route when its replica applies the manifest: wait until it decides the host.
	var status int
	routed := func() bool {
		status, _, err = proxyGet(e.edgeAddr(), "http://"+host+"/", "", "")
		return err == nil && status == fasthttp.StatusUnauthorized
	}
	if werr := waitUntil(ctx, 10*time.Second, "the edge routes "+host, routed); werr != nil {
		return "", createdApp{}, fmt.Errorf("%w (last answer: HTTP %d, %v)", werr, status, err)
	}
	return host, app, nil
}

// proxyGet sends one GET of uri to addr, on a connection of its own, with one header when header is not
// empty, and returns the answer's status and body.
func proxyGet(addr, uri, header, value string) (int, string, error) {
	hc := connection(addr)
	defer hc.CloseIdleConnections()
	req, resp := &fasthttp.Request{}, &fasthttp.Response{}
	req.SetRequestURI(uri)
	if header != "" {
		req.Header.Set(header, value)
	}
	if err := hc.Do(req, resp); err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", uri, err)
	}
	return resp.StatusCode(), string(resp.Body()), nil
}

// proxySessionCookie is the proxy's session cookie on a host reached over plain http (over TLS it takes
// the __Host- prefix).
const proxySessionCookie = "postern_proxy"

// proxyCredentials are a user's two ways through the proxy.
type proxyCredentials struct {
	sub    string // the user, as the upstream must see them in X-Forwarded-User
	bearer string // an access token (at+jwt) of the tenant, with a sid
	cookie string // the route host's session cookie
}

// signInToProxy gets both credentials of the user, each from its own password sign-in on the tenant's
// hosted page: the access token as the app would (authorization code with PKCE, redeemed with the app's
// secret), the cookie as a browser does (the proxy's /.postern/sign_in, the tenant's pages, the proxy's
// callback). Requests for the route's host go to the edge's listener with that Host.
func signInToProxy(e *devEdge, d *discovery, app createdApp, host string) (proxyCredentials, error) {
	var cr proxyCredentials
	b, pk := newBrowser(e), newPKCE()
	defer b.hc.CloseIdleConnections()
	code, err := b.signIn(d, app, pk)
	if err != nil {
		return cr, fmt.Errorf("signing in for a token: %w", err)
	}
	body, err := b.redeem(d, app, code, pk)
	if err != nil {
		return cr, err
	}
	var ts struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &ts); err != nil {
		return cr, fmt.Errorf("token answer: %w", err)
	}
	claims, _, err := d.verifyJWT(ts.AccessToken, "at+jwt")
	if err != nil {
		return cr, fmt.Errorf("access token: %w", err)
	}
	cr.sub, _ = claims["sub"].(string)
	if sid, _ := claims["sid"].(string); cr.sub == "" || sid == "" {
		return cr, fmt.Errorf("access token without sub or sid: %v", claims)
	}
	cr.bearer = ts.AccessToken

	// The route's host and the issuer are two sites: a browser keeps their cookies apart.
	site, pages := newBrowser(e), newBrowser(e)
	defer site.hc.CloseIdleConnections()
	defer pages.hc.CloseIdleConnections()
	if err := site.do(fasthttp.MethodGet, "http://"+host+"/.postern/sign_in?rd=/", nil); err != nil {
		return cr, err
	}
	authorize, err := site.redirect("the proxy's sign-in")
	if err != nil {
		return cr, err
	}
	if !strings.HasPrefix(authorize, d.AuthorizationEndpoint+"?") {
		return cr, fmt.Errorf("the proxy's sign-in redirected to %q, not to the tenant's authorize endpoint", authorize)
	}
	callback, err := pages.signInFrom(d, authorize)
	if err != nil {
		return cr, fmt.Errorf("signing in for a session cookie: %w", err)
	}
	if !strings.HasPrefix(callback, "http://"+host+"/.postern/callback?") {
		return cr, fmt.Errorf("the sign-in redirected to %q, not to the proxy's callback", callback)
	}
	if err := site.do(fasthttp.MethodGet, callback, nil); err != nil {
		return cr, err
	}
	back, err := site.redirect("the proxy's callback")
	if err != nil {
		return cr, err
	}
	if back != "/" {
		return cr, fmt.Errorf("the proxy's callback redirected to %q, not to rd=/", back)
	}
	if cr.cookie = site.cookies[proxySessionCookie]; cr.cookie == "" {
		return cr, fmt.Errorf("the proxy's callback set no %s cookie (cookies: %v)", proxySessionCookie, site.cookies)
	}
	return cr, nil
}

// checkProxy checks, before anything is measured, that each side forwards what it should: without
// credentials the proxy answers 401; with either credential it answers the upstream's 200, whose body
// shows the X-Forwarded-User the upstream got is the user; the bare proxy answers the upstream's 200,
// with no user.
func checkProxy(e *devEdge, bareAddr, host string, cr proxyCredentials) error {
	status, body, err := proxyGet(e.edgeAddr(), "http://"+host+"/", "", "")
	if err != nil {
		return err
	}
	if status != fasthttp.StatusUnauthorized {
		return fmt.Errorf("without credentials: HTTP %d, want 401: %s", status, snippet([]byte(body)))
	}
	user := upstreamUserPrefix + cr.sub + " "
	for _, c := range []struct{ what, header, value string }{
		{"bearer token", "Authorization", "Bearer " + cr.bearer},
		{"session cookie", "Cookie", proxySessionCookie + "=" + cr.cookie},
	} {
		status, body, err := proxyGet(e.edgeAddr(), "http://"+host+"/", c.header, c.value)
		if err != nil {
			return err
		}
		if status != fasthttp.StatusOK || !strings.HasPrefix(body, user) || len(body) < upstreamBodySize {
			return fmt.Errorf("with a %s: HTTP %d %q, want 200 from the upstream with X-Forwarded-User %s", c.what, status, body, cr.sub)
		}
	}
	status, body, err = proxyGet(bareAddr, "http://"+bareAddr+"/", "", "")
	if err != nil {
		return err
	}
	if status != fasthttp.StatusOK || !strings.HasPrefix(body, upstreamUserPrefix+" ") || len(body) != upstreamBodySize {
		return fmt.Errorf("through the bare proxy: HTTP %d %q, want 200 from the upstream, no user", status, body)
	}
	return nil
}
