package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
)

// The OpenID Connect scenarios: the token endpoint and the sign-in pages of a real `postern dev` process,
// driven over loopback HTTP by fasthttp clients in this process. Each uses the sample tenant "demo" and
// makes its own app (and user) through the admin API, as an operator would.

const (
	oidcTenant      = "demo"
	oidcRedirectURI = "http://127.0.0.1:9/callback" // never called: the client reads the code from the redirect
	oidcEmail       = "bench@example.com"
	oidcPassword    = "bench-Quartz-Lantern-42-Ferry"
)

// es256BaselineName names the crypto-only limit of a token: the signature alone.
const es256BaselineName = "ES256 signatures (SHA-256 + ecdsa.SignASN1 on P-256, as SignJWT signs), 1 goroutine = 1 core"

// oidcClientCredentials measures the client_credentials grant (RFC 6749 section 4.4), which costs a client
// authentication, a claims set and one signature and no write: cfg.Writers clients, each on its own
// keep-alive connection, POST the token request with client_secret_basic. Besides the rate and latencies
// it gives tokens per second of the edge process's own CPU time ("per core"), beside ES256 signatures per
// second of one goroutine: the share of the server's CPU that is not the signature.
func oidcClientCredentials(cfg Config, bin *goBinary) Scenario {
	return Scenario{
		Name:     "oidc/client-credentials",
		Baseline: es256BaselineName,
		binaries: []*goBinary{bin},
		Run: func(ctx context.Context) (Figures, error) {
			dir, err := os.MkdirTemp(cfg.Dir, "postern-bench-oidc-cc-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			e, err := startDevEdge(ctx, bin, dir, cfg.logger())
			if err != nil {
				return nil, err
			}
			defer e.stop()
			var app createdApp
			if err := e.admin(ctx, "POST", "/admin/v1/tenants/"+oidcTenant+"/apps",
				map[string]any{"name": "bench-service", "type": "service"}, &app); err != nil {
				return nil, err
			}
			disc, err := discover(ctx, e)
			if err != nil {
				return nil, err
			}
			signingInput, err := checkClientCredentials(ctx, e, disc, app)
			if err != nil {
				return nil, fmt.Errorf("checking a client_credentials token: %w", err)
			}

			conns := max(cfg.Writers, 1)
			basic := basicAuth(app.ClientID, app.ClientSecret)
			clients := make([]*fasthttp.HostClient, conns) // kept from one phase to the next
			for w := range clients {
				clients[w] = edgeClient(e)
				defer clients[w].CloseIdleConnections()
			}
			cpu := cpuMeter{pid: e.pid()}
			tokens := func(d time.Duration) (*measure, error) {
				return cpu.around(func() (*measure, error) {
					return closedLoop(ctx, conns, d, func(w int) func(context.Context) error {
						hc := clients[w]
						req, resp := &fasthttp.Request{}, &fasthttp.Response{}
						req.Header.SetMethod(fasthttp.MethodPost)
						req.SetRequestURI(disc.TokenEndpoint)
						req.Header.SetContentType("application/x-www-form-urlencoded")
						req.Header.Set("Authorization", basic)
						req.SetBodyString("grant_type=client_credentials")
						return func(context.Context) error {
							if err := hc.Do(req, resp); err != nil {
								return fmt.Errorf("token request: %w", err)
							}
							if resp.StatusCode() != fasthttp.StatusOK {
								return fmt.Errorf("token request: HTTP %d %s", resp.StatusCode(), snippet(resp.Body()))
							}
							return nil
						}
					})
				})
			}
			signs, err := es256Signer(ctx, signingInput)
			if err != nil {
				return nil, err
			}
			m, base, err := alternate(cfg.Duration, tokens, signs)
			if err != nil {
				return nil, fmt.Errorf("requesting tokens: %w%s", err, e.logTail())
			}
			perCore, err := cpu.perSecond(m, "issuing tokens")
			if err != nil {
				return nil, err
			}
			cfg.logger().Info("client_credentials", "tokens_per_s", int(m.perSecond()), "connections", conns,
				"edge_cpus_busy", fmt.Sprintf("%.2f of %d", cpu.used.Seconds()/m.elapsed.Seconds(), runtime.NumCPU()))
			return Figures{
				rate("tokens/s per edge core (per second of the edge's CPU time)", perCore).against(base.perSecond()),
				rate(fmt.Sprintf("tokens/s, wall clock (%d keep-alive connections)", conns), m.perSecond()),
				latency("p50", m.p50()).against(float64(base.p50())),
				latency("p99", m.p99()).against(float64(base.p99())),
			}, nil
		},
	}
}

// oidcAuthCode measures authorization-code round trips of a signed-in browser: GET authorize with the
// session cookie and a PKCE challenge (302 to the client with a code), then POST the code and its verifier
// to the token endpoint (200 with ID, access and refresh tokens). A redemption is one raft write (the code
// redeemed and the refresh-token family created), so the baseline is that write alone: one-node raft
// writes from as many concurrent proposers, on the same disk, in the same run.
func oidcAuthCode(cfg Config, bin *goBinary) Scenario {
	return Scenario{
		Name:     "oidc/auth-code",
		Baseline: fmt.Sprintf("1-node raft writes, %d proposers, same disk (one per redemption)", max(cfg.Writers, 1)),
		binaries: []*goBinary{bin},
		Run: func(ctx context.Context) (Figures, error) {
			dir, err := os.MkdirTemp(cfg.Dir, "postern-bench-oidc-code-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			e, err := startDevEdge(ctx, bin, dir, cfg.logger())
			if err != nil {
				return nil, err
			}
			defer e.stop()
			app, err := setUpWebApp(ctx, e)
			if err != nil {
				return nil, err
			}
			disc, err := discover(ctx, e)
			if err != nil {
				return nil, err
			}
			// One password sign-in makes the session every round trip then uses.
			b := newBrowser(e)
			if _, err := b.signIn(disc, app, newPKCE()); err != nil {
				return nil, fmt.Errorf("signing in: %w", err)
			}
			session := b.cookies
			if err := checkRoundTrip(e, disc, app, session); err != nil {
				return nil, fmt.Errorf("checking a round trip: %w", err)
			}

			workers := max(cfg.Writers, 1)
			writes, closeRaft, err := raftWriter(ctx, cfg, dir, workers)
			if err != nil {
				return nil, err
			}
			defer closeRaft()
			// A browser per worker, each with its keep-alive connection, kept from one phase to the next.
			browsers := make([]*browser, workers)
			for w := range browsers {
				browsers[w] = newBrowser(e)
				maps.Copy(browsers[w].cookies, session)
				defer browsers[w].hc.CloseIdleConnections()
			}
			cpu := cpuMeter{pid: e.pid()}
			roundTrips := func(d time.Duration) (*measure, error) {
				return cpu.around(func() (*measure, error) {
					return closedLoop(ctx, workers, d, func(w int) func(context.Context) error {
						b, pk := browsers[w], newPKCE()
						return func(context.Context) error {
							code, err := b.authorizeSignedIn(disc, app, pk)
							if err != nil {
								return err
							}
							_, err = b.redeem(disc, app, code, pk)
							return err
						}
					})
				})
			}
			m, base, err := alternate(cfg.Duration, roundTrips, writes)
			if err != nil {
				return nil, fmt.Errorf("authorization-code round trips: %w%s", err, e.logTail())
			}
			perCore, err := cpu.perSecond(m, "the round trips")
			if err != nil {
				return nil, err
			}
			// The crypto-only limit: a round trip signs an ID token and an access token.
			signs, err := es256Signer(ctx, []byte(strings.Repeat("x", 400)))
			if err != nil {
				return nil, err
			}
			sm, err := signs(max(cfg.Duration/4, 100*time.Millisecond))
			if err != nil {
				return nil, err
			}
			cfg.logger().Info("authorization code", "round_trips_per_s", int(m.perSecond()), "browsers", workers,
				"edge_cpus_busy", fmt.Sprintf("%.2f of %d", cpu.used.Seconds()/m.elapsed.Seconds(), runtime.NumCPU()))
			return append(throughput("", "round trips/s", m, base),
				rate("round trips/s per edge core (per second of the edge's CPU time)", perCore).
					againstNamed("ES256 signatures/s ÷ 2 (ID + access token per round trip), 1 goroutine = 1 core", sm.perSecond()/2),
			), nil
		},
	}
}

// oidcPasswordSignIn measures password sign-ins through the hosted page, as a browser without a session
// makes them: GET authorize (302 to the sign-in page), GET the page (its CSRF token and cookie), POST the
// form (argon2id, then the session's raft write; 302 to the client with a code). The baseline is argon2id
// alone: directory.VerifyPassword of a hash of the same password, on as many goroutines. 2 per CPU are
// enough to keep every core on argon2id while some sign-ins wait for their write.
func oidcPasswordSignIn(cfg Config, bin *goBinary) Scenario {
	workers := 2 * runtime.NumCPU()
	return Scenario{
		Name:     "oidc/password-sign-in",
		Baseline: fmt.Sprintf("argon2id only (directory.VerifyPassword, m=19 MiB t=2 p=1), %d goroutines", workers),
		binaries: []*goBinary{bin},
		Run: func(ctx context.Context) (Figures, error) {
			dir, err := os.MkdirTemp(cfg.Dir, "postern-bench-oidc-signin-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			e, err := startDevEdge(ctx, bin, dir, cfg.logger())
			if err != nil {
				return nil, err
			}
			defer e.stop()
			app, err := setUpWebApp(ctx, e)
			if err != nil {
				return nil, err
			}
			disc, err := discover(ctx, e)
			if err != nil {
				return nil, err
			}
			// A sign-in gives a code that redeems for an ID token of the user.
			b, pk := newBrowser(e), newPKCE()
			code, err := b.signIn(disc, app, pk)
			if err != nil {
				return nil, fmt.Errorf("checking a sign-in: %w", err)
			}
			if err := checkTokens(disc, app, b, code, pk); err != nil {
				return nil, fmt.Errorf("checking a sign-in: %w", err)
			}

			clients := make([]*fasthttp.HostClient, workers) // kept from one phase to the next
			for w := range clients {
				clients[w] = edgeClient(e)
				defer clients[w].CloseIdleConnections()
			}
			edgeCPU := cpuMeter{pid: e.pid()}
			signIns := func(d time.Duration) (*measure, error) {
				return edgeCPU.around(func() (*measure, error) {
					return closedLoop(ctx, workers, d, func(w int) func(context.Context) error {
						hc, pk := clients[w], newPKCE()
						return func(context.Context) error {
							b := &browser{hc: hc, cookies: map[string]string{}} // a new browser, on the same connection
							_, err := b.signIn(disc, app, pk)
							return err
						}
					})
				})
			}
			hash, err := directory.HashPassword(oidcPassword)
			if err != nil {
				return nil, err
			}
			if ok, err := directory.VerifyPassword(hash, oidcPassword); !ok || err != nil {
				return nil, fmt.Errorf("checking the argon2id baseline: verified %v, %v", ok, err)
			}
			ownCPU := cpuMeter{pid: os.Getpid()}
			verifications := func(d time.Duration) (*measure, error) {
				return ownCPU.around(func() (*measure, error) {
					return closedLoop(ctx, workers, d, func(int) func(context.Context) error {
						return func(context.Context) error {
							ok, err := directory.VerifyPassword(hash, oidcPassword)
							if !ok && err == nil {
								err = errors.New("the password does not verify")
							}
							return err
						}
					})
				})
			}
			m, base, err := alternate(cfg.Duration, signIns, verifications)
			if err != nil {
				return nil, fmt.Errorf("signing in: %w%s", err, e.logTail())
			}
			perCore, err := edgeCPU.perSecond(m, "the sign-ins")
			if err != nil {
				return nil, err
			}
			basePerCore, err := ownCPU.perSecond(base, "the argon2id baseline")
			if err != nil {
				return nil, err
			}
			cfg.logger().Info("password sign-in", "sign_ins_per_s", fmt.Sprintf("%.1f", m.perSecond()), "browsers", workers,
				"edge_cpus_busy", fmt.Sprintf("%.2f of %d", edgeCPU.used.Seconds()/m.elapsed.Seconds(), runtime.NumCPU()),
				"baseline_cpus_busy", fmt.Sprintf("%.2f", ownCPU.used.Seconds()/base.elapsed.Seconds()))
			return append(throughput("", "sign-ins/s", m, base),
				rate("sign-ins/s per edge core (per second of the edge's CPU time; baseline: of this process's)", perCore).against(basePerCore),
			), nil
		},
	}
}

// createdApp is the admin API's answer to an app creation: the client secret is shown only there.
type createdApp struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// setUpWebApp creates a confidential web app (authorization code and refresh token grants) and a user
// with a password.
func setUpWebApp(ctx context.Context, e *devEdge) (createdApp, error) {
	var app createdApp
	if err := e.admin(ctx, "POST", "/admin/v1/tenants/"+oidcTenant+"/apps", map[string]any{"name": "bench-web", "type": "web",
		"redirect_uris": []string{oidcRedirectURI}}, &app); err != nil {
		return app, err
	}
	err := e.admin(ctx, "POST", "/admin/v1/tenants/"+oidcTenant+"/users", map[string]any{"email": oidcEmail,
		"password": oidcPassword, "email_verified": true}, nil)
	return app, err
}

// discovery is what the scenarios read of the tenant's OpenID Provider metadata.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	keys                  jose.JSONWebKeySet
}

// discover reads the demo tenant's discovery document and its JWKS, as a client configured with just the
// issuer does.
func discover(ctx context.Context, e *devEdge) (*discovery, error) {
	return discoverTenant(ctx, e, oidcTenant)
}

// discoverTenant is discover for any tenant.
func discoverTenant(ctx context.Context, e *devEdge, tenant string) (*discovery, error) {
	var d discovery
	if err := getJSON(ctx, e.http, e.issuer(tenant)+"/.well-known/openid-configuration", &d); err != nil {
		return nil, err
	}
	if d.Issuer != e.issuer(tenant) || d.TokenEndpoint == "" || d.AuthorizationEndpoint == "" || d.JWKSURI == "" {
		return nil, fmt.Errorf("discovery: unexpected metadata %+v", d)
	}
	if err := getJSON(ctx, e.http, d.JWKSURI, &d.keys); err != nil {
		return nil, err
	}
	return &d, nil
}

func getJSON(ctx context.Context, c *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// verifyJWT checks a token's ES256 signature against the tenant's JWKS (with go-jose, not Postern's own
// code), its typ header, its issuer and its expiry; it returns the claims and the signing input.
func (d *discovery) verifyJWT(tok, typ string) (map[string]any, []byte, error) {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, nil, err
	}
	h := jws.Signatures[0].Protected
	keys := d.keys.Key(h.KeyID)
	if len(keys) != 1 {
		return nil, nil, fmt.Errorf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, nil, err
	}
	if got, _ := h.ExtraHeaders["typ"].(string); !strings.EqualFold(got, typ) {
		return nil, nil, fmt.Errorf("typ %q, want %q", got, typ)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, nil, err
	}
	exp, _ := c["exp"].(float64)
	if c["iss"] != d.Issuer || time.Unix(int64(exp), 0).Before(time.Now()) {
		return nil, nil, fmt.Errorf("claims %v: wrong issuer or expired", c)
	}
	return c, []byte(tok[:strings.LastIndexByte(tok, '.')]), nil
}

// checkClientCredentials gets one token and verifies it; it returns the token's signing input, which the
// baseline signs.
func checkClientCredentials(ctx context.Context, e *devEdge, d *discovery, app createdApp) ([]byte, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, "POST", d.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(app.ClientID, app.ClientSecret))
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := doJSON(e.http, req, &out); err != nil {
		return nil, err
	}
	c, input, err := d.verifyJWT(out.AccessToken, "at+jwt")
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	if out.TokenType != "Bearer" || c["sub"] != app.ClientID || c["client_id"] != app.ClientID {
		return nil, fmt.Errorf("token type %q, claims %v", out.TokenType, c)
	}
	return input, nil
}

func doJSON(c *http.Client, req *http.Request, out any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d %s", req.Method, req.URL, resp.StatusCode, snippet(b.Bytes()))
	}
	return json.Unmarshal(b.Bytes(), out)
}

// checkRoundTrip runs one authorization-code round trip with the session and verifies its tokens.
func checkRoundTrip(e *devEdge, d *discovery, app createdApp, session map[string]string) error {
	b := newBrowser(e)
	defer b.hc.CloseIdleConnections()
	maps.Copy(b.cookies, session)
	pk := newPKCE()
	code, err := b.authorizeSignedIn(d, app, pk)
	if err != nil {
		return err
	}
	return checkTokens(d, app, b, code, pk)
}

// checkTokens redeems a code and verifies the ID and access tokens.
func checkTokens(d *discovery, app createdApp, b *browser, code string, pk pkce) error {
	body, err := b.redeem(d, app, code, pk)
	if err != nil {
		return err
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return err
	}
	idc, _, err := d.verifyJWT(out.IDToken, "JWT")
	if err != nil {
		return fmt.Errorf("ID token: %w", err)
	}
	if idc["aud"] != app.ClientID || idc["email"] != oidcEmail {
		return fmt.Errorf("ID token claims %v", idc)
	}
	if _, _, err := d.verifyJWT(out.AccessToken, "at+jwt"); err != nil {
		return fmt.Errorf("access token: %w", err)
	}
	if out.RefreshToken == "" {
		return errors.New("no refresh token")
	}
	return nil
}

// es256Signer checks, then returns, the phase of the ES256 baseline: input signed (SHA-256, then ECDSA on
// P-256, the work of one ES256 JWT signature) on one goroutine.
func es256Signer(ctx context.Context, input []byte) (func(time.Duration) (*measure, error), error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil || !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
		return nil, fmt.Errorf("checking the ES256 baseline: the signature does not verify (%v)", err)
	}
	return func(d time.Duration) (*measure, error) {
		return closedLoop(ctx, 1, d, func(int) func(context.Context) error {
			return func(context.Context) error {
				digest := sha256.Sum256(input)
				_, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
				return err
			}
		})
	}, nil
}

// raftWriter starts a single raft node on disk under parent, as raft-write/1-node does, checks it, and
// returns the phase of writers proposers writing through it, and how to stop it.
func raftWriter(ctx context.Context, cfg Config, parent string, writers int) (func(time.Duration) (*measure, error), func(), error) {
	dir, err := os.MkdirTemp(parent, "raft-")
	if err != nil {
		return nil, nil, err
	}
	c, err := startLocalCluster(ctx, dir, 1, cfg.logger())
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		c.close()
		os.RemoveAll(dir)
	}
	var seq atomic.Uint64
	propose := func(ctx context.Context, via *cluster.Node) (*directory.Result, error) {
		g := directory.Group{ID: directory.NewID(), Tenant: benchTenant, Name: fmt.Sprintf("g%d", seq.Add(1))}
		return via.Propose(ctx, directory.NewCommand(time.Now(), "bench", directory.MakeOp(directory.OpGroupCreate, g)))
	}
	if err := c.checkWrites(ctx, propose); err != nil {
		stop()
		return nil, nil, err
	}
	leader, _ := c.leaderAndFollower()
	return func(d time.Duration) (*measure, error) {
		return closedLoop(ctx, writers, d, func(int) func(context.Context) error {
			return func(ctx context.Context) error { _, err := propose(ctx, leader); return err }
		})
	}, stop, nil
}

// alternate measures a and its baseline b in turns, each for d in all, in slices of at least a second
// (ten at most), and merges each side's slices. On a machine whose speed drifts (a shared VM, where
// argon2id alone varies by a third from one second to the next) both sides then see the same
// conditions, which back-to-back phases do not. The order is reversed every other round (a b, b a, a b,
// ...), so that neither side always goes first after the other has run (warm caches, a collector still
// running, the previous phase's connections going idle). Idle, the side not being measured costs
// nothing: an edge or a raft node waiting for requests uses no CPU.
func alternate(d time.Duration, a, b func(time.Duration) (*measure, error)) (ma, mb *measure, err error) {
	ms, err := alternateAll(d, a, b)
	if err != nil {
		return nil, nil, err
	}
	return ms[0], ms[1], nil
}

// alternateAll is alternate for any number of phases, measured in turns in the order given, then in the
// reverse order, and so on: phases compared with each other go next to each other.
func alternateAll(d time.Duration, phases ...func(time.Duration) (*measure, error)) ([]*measure, error) {
	rounds := max(1, min(10, int(d/time.Second)))
	sums := make([]*measure, len(phases))
	for i := range sums {
		sums[i] = &measure{}
	}
	for r := range rounds {
		for j := range phases {
			i := j
			if r%2 == 1 {
				i = len(phases) - 1 - j
			}
			m, err := phases[i](d / time.Duration(rounds))
			if err != nil {
				return nil, err
			}
			sums[i].add(m)
		}
	}
	return sums, nil
}

// cpuMeter adds up a process's CPU time over the phases it is put around.
type cpuMeter struct {
	pid  int
	used time.Duration
}

func (c *cpuMeter) around(phase func() (*measure, error)) (*measure, error) {
	before, err := processCPUTime(c.pid)
	if err != nil {
		return nil, err
	}
	m, err := phase()
	if err != nil {
		return m, err
	}
	after, err := processCPUTime(c.pid)
	if err != nil {
		return nil, err
	}
	c.used += after - before
	return m, nil
}

// perSecond is m's operations per second of the process's CPU time.
func (c *cpuMeter) perSecond(m *measure, what string) (float64, error) {
	if c.used <= 0 {
		return 0, fmt.Errorf("process %d used no measurable CPU time during %s", c.pid, what)
	}
	return float64(m.ops) / c.used.Seconds(), nil
}

// edgeClient is one keep-alive connection to the edge.
func edgeClient(e *devEdge) *fasthttp.HostClient { return connection(e.edgeAddr()) }

// connection is one keep-alive connection to addr (host:port), whatever host a request names.
func connection(addr string) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr: addr, MaxConns: 1,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxIdleConnDuration: time.Minute,
	}
}

// browser is a user agent for the hosted pages: one connection, a cookie jar of one host, no redirects
// followed (the scenarios check each).
//
// Concurrency: one goroutine at a time.
type browser struct {
	hc      *fasthttp.HostClient
	cookies map[string]string
	req     fasthttp.Request
	resp    fasthttp.Response
}

func newBrowser(e *devEdge) *browser {
	return &browser{hc: edgeClient(e), cookies: map[string]string{}}
}

// do sends one request with the browser's cookies (form, when not nil, as the POST body) and keeps the
// cookies the answer sets. The answer is in b.resp until the next call.
func (b *browser) do(method, uri string, form url.Values) error {
	b.req.Reset()
	b.req.Header.SetMethod(method)
	b.req.SetRequestURI(uri)
	for k, v := range b.cookies {
		b.req.Header.SetCookie(k, v)
	}
	if form != nil {
		b.req.Header.SetContentType("application/x-www-form-urlencoded")
		b.req.SetBodyString(form.Encode())
	}
	if err := b.hc.Do(&b.req, &b.resp); err != nil {
		return fmt.Errorf("%s %s: %w", method, uri, err)
	}
	for k, v := range b.resp.Header.Cookies() {
		c := fasthttp.AcquireCookie()
		if c.ParseBytes(v) == nil {
			if len(c.Value()) == 0 || c.Expire().Equal(fasthttp.CookieExpireDelete) {
				delete(b.cookies, string(k))
			} else {
				b.cookies[string(k)] = string(c.Value())
			}
		}
		fasthttp.ReleaseCookie(c)
	}
	return nil
}

// redirect is the Location of a 302 answer, or an error describing the answer.
func (b *browser) redirect(what string) (string, error) {
	if b.resp.StatusCode() != fasthttp.StatusFound {
		return "", fmt.Errorf("%s: HTTP %d, want 302: %s", what, b.resp.StatusCode(), snippet(b.resp.Body()))
	}
	return string(b.resp.Header.Peek("Location")), nil
}

// pkce is a code verifier and its S256 challenge (RFC 7636).
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := make([]byte, 32)
	rand.Read(v)
	verifier := base64.RawURLEncoding.EncodeToString(v)
	sum := sha256.Sum256([]byte(verifier))
	return pkce{verifier, base64.RawURLEncoding.EncodeToString(sum[:])}
}

func authorizeURL(d *discovery, app createdApp, pk pkce, state string) string {
	return d.AuthorizationEndpoint + "?" + url.Values{"response_type": {"code"}, "client_id": {app.ClientID},
		"redirect_uri": {oidcRedirectURI}, "scope": {"openid email"}, "state": {state},
		"code_challenge": {pk.challenge}, "code_challenge_method": {"S256"}}.Encode()
}

// codeFrom reads the authorization response the client's redirect URI gets: code, state, iss (RFC 9207).
func codeFrom(d *discovery, location, state string) (string, error) {
	rest, ok := strings.CutPrefix(location, oidcRedirectURI+"?")
	if !ok {
		return "", fmt.Errorf("redirected to %q, not to the client", location)
	}
	q, err := url.ParseQuery(rest)
	if err != nil {
		return "", err
	}
	if q.Get("code") == "" || q.Get("state") != state || q.Get("iss") != d.Issuer {
		return "", fmt.Errorf("authorization response %v", q)
	}
	return q.Get("code"), nil
}

// authorizeSignedIn asks for a code with the browser's session: the answer is the redirect to the client.
func (b *browser) authorizeSignedIn(d *discovery, app createdApp, pk pkce) (string, error) {
	if err := b.do(fasthttp.MethodGet, authorizeURL(d, app, pk, "s1"), nil); err != nil {
		return "", err
	}
	loc, err := b.redirect("authorize with a session")
	if err != nil {
		return "", err
	}
	return codeFrom(d, loc, "s1")
}

var (
	csrfField  = regexp.MustCompile(`name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"`)
	formAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// signIn runs a password sign-in from the authorization request to the code: authorize redirects to the
// sign-in page, the page gives its form and CSRF token, and posting the form redirects to the client.
func (b *browser) signIn(d *discovery, app createdApp, pk pkce) (string, error) {
	loc, err := b.signInFrom(d, authorizeURL(d, app, pk, "s2"))
	if err != nil {
		return "", err
	}
	return codeFrom(d, loc, "s2")
}

// signInFrom runs a password sign-in from an authorization request (a URL of the issuer's authorize
// endpoint, made by the bench or by a relying party such as the proxy) and returns where the answer
// redirects: the client's redirect URI with the code.
func (b *browser) signInFrom(d *discovery, authorize string) (string, error) {
	if err := b.do(fasthttp.MethodGet, authorize, nil); err != nil {
		return "", err
	}
	page, err := b.redirect("authorize without a session")
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(page, d.Issuer+"/") {
		return "", fmt.Errorf("authorize without a session redirected to %q, not to a page of the issuer", page)
	}
	if err := b.do(fasthttp.MethodGet, page, nil); err != nil {
		return "", err
	}
	if b.resp.StatusCode() != fasthttp.StatusOK {
		return "", fmt.Errorf("sign-in page: HTTP %d %s", b.resp.StatusCode(), snippet(b.resp.Body()))
	}
	body := b.resp.Body()
	csrf, action := csrfField.FindSubmatch(body), formAction.FindSubmatch(body)
	if csrf == nil || action == nil {
		return "", fmt.Errorf("sign-in page without a form or CSRF field: %s", snippet(body))
	}
	form := url.Values{"csrf": {string(csrf[1]) + string(csrf[2])}, "email": {oidcEmail}, "password": {oidcPassword}}
	if err := b.do(fasthttp.MethodPost, html.UnescapeString(string(action[1])), form); err != nil {
		return "", err
	}
	return b.redirect("posting the sign-in form")
}

// redeem exchanges a code at the token endpoint (client_secret_basic) and returns the 200 answer's body.
func (b *browser) redeem(d *discovery, app createdApp, code string, pk pkce) ([]byte, error) {
	b.req.Reset()
	b.req.Header.SetMethod(fasthttp.MethodPost)
	b.req.SetRequestURI(d.TokenEndpoint)
	b.req.Header.SetContentType("application/x-www-form-urlencoded")
	b.req.Header.Set("Authorization", basicAuth(app.ClientID, app.ClientSecret))
	b.req.SetBodyString(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcRedirectURI},
		"code_verifier": {pk.verifier}}.Encode())
	if err := b.hc.Do(&b.req, &b.resp); err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	if b.resp.StatusCode() != fasthttp.StatusOK || !bytes.Contains(b.resp.Body(), []byte(`"id_token"`)) {
		return nil, fmt.Errorf("token request: HTTP %d %s", b.resp.StatusCode(), snippet(b.resp.Body()))
	}
	return b.resp.Body(), nil
}

// basicAuth is client_secret_basic (RFC 6749 section 2.3.1: each part form-urlencoded first).
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// snippet is the start of a body, for an error message.
func snippet(b []byte) string {
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
