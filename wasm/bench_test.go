package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

// BenchmarkInvoke is one call through the pool: a trivial Go guest (examples/echo), a Go guest that
// does an SDK round trip (examples/claims: decode the event, encode a response), a hand-written echo
// module (the runtime's own overhead), and a native Go function doing the same work as the echo (copy
// the request and check it is JSON). It reports p50 and p99 per-call latency beside ns/op.
func BenchmarkInvoke(b *testing.B) {
	input := []byte(event("microsoft.graph.authenticationEvent.tokenIssuanceStart",
		`{"@odata.type":"microsoft.graph.onTokenIssuanceStartCalloutData","authenticationContext":{"user":{"id":"u1","mail":"ann@acme.test"}}}`))
	h := newHarness(b, nil)
	// The claims guest gets the request Postern really sends (about a kilobyte), and must answer its
	// one claim.
	claimsExt := h.ext("bench", "go-claims", guest(b, "examples/claims"))
	claimsExt.Config = map[string]string{"claim_name": "loyalty_tier", "claim_value": "gold"}
	claimsIn := tokenRequest(b, claimsExt, directory.User{ID: "u1", Tenant: "acme", Email: "ann@acme.test",
		EmailVerified: true, Profile: directory.Profile{Name: "Ann Example", GivenName: "Ann", FamilyName: "Example"}})
	claimsOut := []byte(`{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[` +
		`{"@odata.type":"microsoft.graph.tokenIssuanceStart.provideClaimsForToken","claims":{"loyalty_tier":"gold"}}]}}`)
	for _, tc := range []struct {
		name     string
		ext      directory.Extension
		in, want []byte
	}{
		{"go-echo", h.ext("bench", "go-echo", guest(b, "examples/echo")), input, input},
		{"go-claims", claimsExt, claimsIn, claimsOut},
		{"wasm-echo", h.ext("bench", "wasm-echo", echoModule()), input, input},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ext, input := tc.ext, tc.in
			ctx := context.Background()
			if out, err := h.Invoke(ctx, ext, input); err != nil || !bytes.Equal(out, tc.want) {
				b.Fatalf("%s answered %s, %v; want %s", tc.name, out, err, tc.want)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if _, err := h.Invoke(ctx, ext, input); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
	b.Run("native", func(b *testing.B) {
		echo := func(in []byte) ([]byte, bool) { out := bytes.Clone(in); return out, json.Valid(out) }
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if _, ok := echo(input); !ok {
				b.Fatal("not JSON")
			}
			lat = append(lat, time.Since(start))
		}
		reportLatency(b, lat)
	})
}

// BenchmarkInvokeParallel is calls/s with every core busy on one extension.
func BenchmarkInvokeParallel(b *testing.B) {
	input := []byte(`{"type":"x","data":{}}`)
	h := newHarness(b, nil)
	ext := h.ext("bench", "echo", guest(b, "examples/echo"))
	h.mustInvoke(b, ext, string(input))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Invoke(context.Background(), ext, input); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkCompile is compiling the Go echo guest to machine code: without a cache, and from the
// on-disk cache of a previous run.
func BenchmarkCompile(b *testing.B) {
	wasm := guest(b, "examples/echo")
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		if raceEnabled {
			b.Skip("about 10 s a compile under the race detector")
		}
		for b.Loop() {
			r, err := New(Config{Module: (&blobs{}).get})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Precompile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			r.Close(ctx)
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		r, _ := New(Config{CacheDir: dir, Module: (&blobs{}).get})
		if err := r.Precompile(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		r.Close(ctx)
		for b.Loop() {
			r, _ := New(Config{CacheDir: dir, Module: (&blobs{}).get})
			if err := r.Precompile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			r.Close(ctx)
		}
	})
}

// BenchmarkInstantiate is starting one instance of the Go echo guest, _initialize included: what a
// call would pay without the pool.
func BenchmarkInstantiate(b *testing.B) {
	h := newHarness(b, nil)
	ext := h.ext("bench", "echo", guest(b, "examples/echo"))
	h.mustInvoke(b, ext, `{}`)
	v := h.current(ext)
	ctx := context.Background()
	for b.Loop() {
		inst, err := v.newInstance(ctx, ext)
		if err != nil {
			b.Fatal(err)
		}
		inst.close()
	}
}
