package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"postern.dev/postern/directory"
	"postern.dev/postern/flows"
	"postern.dev/postern/wasm"
)

// The extension scenario measures one extension call the way the journeys make it: an
// OnTokenIssuanceStart request (about a kilobyte of JSON) to the trivial Go guest wasm/examples/echo,
// through the node's runtime and its pool of ready instances, on one goroutine (so calls/s is per core).
// Beside it, in the same run: a native Go function doing the same work (copying the request into the
// answer), the same contract over HTTP to a loopback server (flows.HTTPInvoker, with its ES256 bearer
// token per call), which is what tenants with webhooks get elsewhere, and wasm/examples/claims, a guest
// that uses the Go SDK as tenants do (it decodes the event and encodes a response with one claim).

const (
	echoGuest   = "postern.dev/postern/wasm/examples/echo"
	claimsGuest = "postern.dev/postern/wasm/examples/claims"
)

func wasmExtensionCall(cfg Config) Scenario {
	wasmGuest := func(pkg string) *goBinary {
		return &goBinary{pkg: pkg, parent: cfg.Dir, log: cfg.logger(),
			env: []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"}, flags: []string{"-buildmode=c-shared"}}
	}
	guest, claimsBin := wasmGuest(echoGuest), wasmGuest(claimsGuest)
	return Scenario{
		Name:     "wasm/extension-call",
		Baseline: "a native Go function doing the same work (copy the request into the answer), 1 goroutine",
		binaries: []*goBinary{guest, claimsBin},
		Run: func(ctx context.Context) (Figures, error) {
			modules := map[string][]byte{} // by SHA-256
			load := func(b *goBinary) (string, error) {
				path, err := b.get(ctx)
				if err != nil {
					return "", err
				}
				module, err := os.ReadFile(path)
				if err != nil {
					return "", err
				}
				sum := sha256.Sum256(module)
				modules[hex.EncodeToString(sum[:])] = module
				return hex.EncodeToString(sum[:]), nil
			}
			echoSum, err := load(guest)
			if err != nil {
				return nil, err
			}
			claimsSum, err := load(claimsBin)
			if err != nil {
				return nil, err
			}
			ext := directory.Extension{ID: "echo", Tenant: "bench", Events: []string{string(flows.EventTokenIssuanceStart)},
				WasmSHA256: echoSum, Timeout: directory.Duration(time.Second), OnError: "fail", Version: 1}
			claimsExt := ext
			claimsExt.ID, claimsExt.WasmSHA256 = "claims", claimsSum
			claimsExt.Config = map[string]string{"claim_name": "loyalty_tier", "claim_value": "gold"}
			input, err := flows.TokenIssuanceStartInput{
				EventContext: flows.EventContext{Tenant: "bench", CorrelationID: "c0ffee", ClientIP: "127.0.0.1", Locale: "en",
					App: directory.App{ID: "a1", Tenant: "bench", Name: "shop-web", ClientID: "shop-web", Type: directory.AppWeb}},
				User: directory.User{ID: "u1", Tenant: "bench", Email: "ann@example.com", EmailVerified: true,
					Profile: directory.Profile{Name: "Ann Example", GivenName: "Ann", FamilyName: "Example"}},
			}.Request(ext)
			if err != nil {
				return nil, err
			}

			cache, err := os.MkdirTemp(cfg.Dir, "postern-bench-wasm-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(cache)
			rt, err := wasm.New(wasm.Config{CacheDir: cache, Module: func(_, sum string) ([]byte, error) {
				if m, ok := modules[sum]; ok {
					return m, nil
				}
				return nil, fmt.Errorf("no module %s", sum)
			}})
			if err != nil {
				return nil, err
			}
			defer rt.Close(context.Background())
			start := time.Now()
			if err := rt.Prepare(ctx, ext); err != nil {
				return nil, fmt.Errorf("compiling and starting the echo guest: %w", err)
			}
			cfg.logger().Info("extension ready", "compile_and_first_instance", time.Since(start).Round(time.Millisecond))
			out, err := rt.Invoke(ctx, ext, input)
			if err != nil || !bytes.Equal(out, input) {
				return nil, fmt.Errorf("checking the echo guest: %v (answer %d bytes, want the request's %d)", err, len(out), len(input))
			}
			if err := rt.Prepare(ctx, claimsExt); err != nil {
				return nil, fmt.Errorf("compiling and starting the claims guest: %w", err)
			}
			decision, err := rt.Invoke(ctx, claimsExt, input)
			if err == nil {
				var d flows.TokenDecision
				if d, err = flows.ParseTokenIssuanceStart(decision); err == nil && d.Claims["loyalty_tier"] != "gold" {
					err = fmt.Errorf("answer %s", decision)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("checking the claims guest: %w", err)
			}

			// The HTTP variant: a loopback server doing the same work, called with a signed token each time.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.Write(b)
			})}
			go srv.Serve(ln)
			defer srv.Close()
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
			if err != nil {
				return nil, err
			}
			httpExt := ext
			httpExt.WasmSHA256, httpExt.URL = "", "http://"+ln.Addr().String()+"/hook"
			hi := &flows.HTTPInvoker{
				Sign: func(_ string, claims map[string]any) (string, error) {
					return jwt.Signed(signer).Claims(claims).Serialize()
				},
				Issuer: func(t string) string { return "http://127.0.0.1/" + t },
			}
			if out, err := hi.Invoke(ctx, httpExt, input); err != nil || !bytes.Equal(out, input) {
				return nil, fmt.Errorf("checking the HTTP variant: %v", err)
			}

			native := func(in []byte) []byte { return append([]byte(nil), in...) }
			one := func(op func(context.Context) error) func(time.Duration) (*measure, error) {
				return func(d time.Duration) (*measure, error) {
					return closedLoop(ctx, 1, d, func(int) func(context.Context) error { return op })
				}
			}
			ms, err := alternateAll(cfg.Duration,
				one(func(c context.Context) error {
					if len(native(input)) != len(input) {
						return fmt.Errorf("native copy lost bytes")
					}
					return nil
				}),
				one(func(c context.Context) error { _, err := rt.Invoke(c, ext, input); return err }),
				one(func(c context.Context) error { _, err := hi.Invoke(c, httpExt, input); return err }),
				one(func(c context.Context) error { _, err := rt.Invoke(c, claimsExt, input); return err }),
			)
			if err != nil {
				return nil, err
			}
			nat, wm, ht, cl := ms[0], ms[1], ms[2], ms[3]
			const httpName = "the same call over HTTP to a loopback server (ES256 token per call), 1 goroutine"
			const echoName = "the Wasm echo guest, same run"
			return Figures{
				rate("Wasm echo guest through the pool: calls/s, 1 goroutine", wm.perSecond()).against(nat.perSecond()),
				latency("Wasm call p50", wm.p50()).against(float64(nat.p50())),
				latency("Wasm call p99", wm.p99()).against(float64(nat.p99())),
				rate("Wasm calls/s beside the HTTP variant", wm.perSecond()).againstNamed(httpName, ht.perSecond()),
				latency("Wasm call p50 beside the HTTP variant", wm.p50()).againstNamed(httpName, float64(ht.p50())),
				latency("Wasm call p99 beside the HTTP variant", wm.p99()).againstNamed(httpName, float64(ht.p99())),
				latency("Wasm claims guest (Go SDK) p50", cl.p50()).againstNamed(echoName, float64(wm.p50())),
				latency("Wasm claims guest (Go SDK) p99", cl.p99()).againstNamed(echoName, float64(wm.p99())),
			}, nil
		},
	}
}
