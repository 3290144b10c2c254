package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"postern.dev/postern/directory"
	"postern.dev/postern/flows"
)

// assemblyScriptDir is the example extension in a second language: AssemblyScript, built by its own
// package.json (npm ci there first; .ci/run does).
const assemblyScriptDir = "examples/assemblyscript"

// errNoAssemblyScript is a missing outside program: the tests skip on a developer's machine and fail
// under CI.
var errNoAssemblyScript = errors.New("cannot build the AssemblyScript example")

// buildAssemblyScript runs the example's `npm run build` once per test binary, into a directory of its
// own rather than the example's build/, and returns the module.
var buildAssemblyScript = sync.OnceValues(func() ([]byte, error) {
	for _, prog := range []string{"node", "npm"} {
		if _, err := exec.LookPath(prog); err != nil {
			return nil, fmt.Errorf("%w: %s is not on PATH", errNoAssemblyScript, prog)
		}
	}
	if _, err := os.Stat(filepath.Join(assemblyScriptDir, "node_modules", "assemblyscript")); err != nil {
		return nil, fmt.Errorf("%w: no node_modules in wasm/%s (run npm ci there; .ci/run does)", errNoAssemblyScript, assemblyScriptDir)
	}
	out, err := os.MkdirTemp("", "postern-assemblyscript-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// asc takes the last --outFile and --textFile: these replace the script's build/ paths.
	cmd := exec.CommandContext(ctx, "npm", "run", "--silent", "build", "--",
		"--outFile", filepath.Join(out, "claims.wasm"), "--textFile", filepath.Join(out, "claims.wat"))
	cmd.Dir = assemblyScriptDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("npm run build in wasm/%s: %v\n%s", assemblyScriptDir, err, b)
	}
	return os.ReadFile(filepath.Join(out, "claims.wasm"))
})

func assemblyScriptModule(t testing.TB) []byte {
	t.Helper()
	w, err := buildAssemblyScript()
	if errors.Is(err, errNoAssemblyScript) && os.Getenv("CI") == "" {
		t.Skipf("%v: needs Node and npm, and npm ci in wasm/%s", err, assemblyScriptDir)
	}
	if err != nil {
		t.Fatalf("CI is set and the AssemblyScript example does not build: %v", err)
	}
	return w
}

// tokenRequest is the OnTokenIssuanceStart request Postern sends for user at the acme tenant's web app.
func tokenRequest(t testing.TB, ext directory.Extension, user directory.User) []byte {
	t.Helper()
	in := flows.TokenIssuanceStartInput{
		EventContext: flows.EventContext{
			Tenant:        "acme",
			App:           directory.App{ID: "web", Tenant: "acme", Name: "Acme Web", ClientID: "acme-web", Type: "confidential"},
			CorrelationID: "c0ffee00-0000-4000-8000-000000000001",
			ClientIP:      "192.0.2.7",
			Locale:        "en-GB",
		},
		User: user,
	}
	req, err := in.Request(ext)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestAssemblyScriptExample runs examples/assemblyscript, a guest written without the Go SDK, through
// the runtime: real OnTokenIssuanceStart requests in, answers that flows accepts out.
func TestAssemblyScriptExample(t *testing.T) {
	w := assemblyScriptModule(t)
	t.Logf("module: %d bytes", len(w))

	// The module imports only what Postern provides (no env.abort: the build maps abort to its own).
	rt := wazero.NewRuntime(context.Background())
	defer rt.Close(context.Background())
	cm, err := rt.CompileModule(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cm.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod != hostModule {
			t.Errorf("module imports %s.%s; want only %s functions", mod, name, hostModule)
		}
	}
	if _, ok := cm.ExportedFunctions()[exportInit]; !ok {
		t.Errorf("module does not export %s: its heap would start at 0, over its static data", exportInit)
	}

	h := newHarness(t, nil)
	ext := h.ext("acme", "as-claims", w)
	ctx := context.Background()
	call := func(t *testing.T, req []byte) flows.TokenDecision {
		t.Helper()
		out, err := h.Invoke(ctx, ext, req)
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		d, err := flows.ParseTokenIssuanceStart(out)
		if err != nil {
			t.Fatalf("ParseTokenIssuanceStart: %v\n%s", err, out)
		}
		return d
	}

	t.Run("claims", func(t *testing.T) {
		d := call(t, tokenRequest(t, ext, directory.User{ID: "u-42", Tenant: "acme", Email: "ann@acme.test",
			Profile: directory.Profile{Name: "Ann Example", Locale: "en-GB"}, CreatedAt: time.Now()}))
		want := map[string]any{"greeting": "hello from AssemblyScript", "user_id": "u-42"}
		if !reflect.DeepEqual(d.Claims, want) {
			t.Errorf("claims %v, want %v", d.Claims, want)
		}
	})

	t.Run("id with escapes", func(t *testing.T) {
		// The guest echoes the id's JSON token as it is, escapes and all.
		id := "ann \"admin\" \\ é 😀 <b>"
		d := call(t, tokenRequest(t, ext, directory.User{ID: id, Tenant: "acme"}))
		if d.Claims["user_id"] != id {
			t.Errorf("user_id %q, want %q", d.Claims["user_id"], id)
		}
	})

	t.Run("no user", func(t *testing.T) {
		d := call(t, []byte(event("microsoft.graph.authenticationEvent.tokenIssuanceStart",
			`{"@odata.type":"microsoft.graph.onTokenIssuanceStartCalloutData","authenticationContext":{"user":{"id":7},"x":[{"id":"no"}]}}`)))
		if want := map[string]any{"greeting": "hello from AssemblyScript"}; !reflect.DeepEqual(d.Claims, want) {
			t.Errorf("claims %v, want %v", d.Claims, want)
		}
	})

	t.Run("not an object", func(t *testing.T) {
		// The guest returns a zero length and logs why: ErrFailed, and the instance stays.
		if _, err := h.Invoke(ctx, ext, []byte(`["data"]`)); !errors.Is(err, ErrFailed) {
			t.Fatalf("Invoke: %v, want ErrFailed", err)
		}
		wantContains(t, h.log.String(), `"msg":"the request is not a JSON object","tenant":"acme","extension":"as-claims","source":"log"`)
		if live, idle := h.current(ext).stats(); live != 1 || idle != 1 {
			t.Errorf("after a reported failure: %d instances, %d idle; want the instance kept", live, idle)
		}
	})

	t.Run("memory is reused", func(t *testing.T) {
		// The stub runtime never frees; postern_alloc resets its heap at the start of each call. Were it
		// not so, 40 requests of 300 KB would need 12 MB, far over this 1 MiB limit.
		small := ext
		small.ID = "as-claims-1mib"
		small.MemoryLimit = 1 << 20
		req := tokenRequest(t, small, directory.User{ID: "u-big", Tenant: "acme",
			Profile: directory.Profile{Name: strings.Repeat("n", 300<<10)}})
		for i := range 40 {
			out, err := h.Invoke(ctx, small, req)
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if _, err := flows.ParseTokenIssuanceStart(out); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
}

// BenchmarkAssemblyScriptCall is one OnTokenIssuanceStart call through the pool to the AssemblyScript
// example, request as Postern builds it (~700 bytes): p50 and p99 beside ns/op.
func BenchmarkAssemblyScriptCall(b *testing.B) {
	w := assemblyScriptModule(b)
	h := newHarness(b, nil)
	ext := h.ext("bench", "as-claims", w)
	req := tokenRequest(b, ext, directory.User{ID: "u-42", Tenant: "acme", Email: "ann@acme.test",
		Profile: directory.Profile{Name: "Ann Example"}, CreatedAt: time.Now()})
	ctx := context.Background()
	out, err := h.Invoke(ctx, ext, req)
	if err != nil {
		b.Fatal(err)
	}
	if d, err := flows.ParseTokenIssuanceStart(out); err != nil || d.Claims["user_id"] != "u-42" {
		b.Fatalf("answer %s: %v", out, err)
	}
	b.SetBytes(int64(len(req)))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := h.Invoke(ctx, ext, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}
