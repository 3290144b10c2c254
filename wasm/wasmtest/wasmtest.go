// Package wasmtest builds Postern's Go extension guests for tests: each package once per test binary,
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, as an extension's author would.
package wasmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	builds = map[string]*build{}
)

type build struct {
	once sync.Once
	wasm []byte
	err  error
}

// Build compiles the Go main package pkg (an import path, e.g. "postern.dev/postern/wasm/examples/echo")
// to a WASI reactor module and returns its bytes. It fails tb when the build fails.
func Build(tb testing.TB, pkg string) []byte {
	tb.Helper()
	return BuildAll(tb, pkg)[pkg]
}

// BuildAll builds several packages at once, in parallel, and returns their modules by package.
func BuildAll(tb testing.TB, pkgs ...string) map[string][]byte {
	tb.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(runtime.NumCPU(), 2))
	bs := make([]*build, len(pkgs))
	for i, pkg := range pkgs {
		mu.Lock()
		b := builds[pkg]
		if b == nil {
			b = &build{}
			builds[pkg] = b
		}
		mu.Unlock()
		bs[i] = b
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.once.Do(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				b.wasm, b.err = compile(pkg)
			})
		}()
	}
	wg.Wait()
	out := make(map[string][]byte, len(pkgs))
	for i, pkg := range pkgs {
		if bs[i].err != nil {
			tb.Fatalf("wasmtest: building %s: %v", pkg, bs[i].err)
		}
		out[pkg] = bs[i].wasm
	}
	return out
}

func compile(pkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "postern-wasmtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	return os.ReadFile(out)
}

// goTool finds the go command: go test puts its GOROOT/bin first in PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// Precompile fills the wazero compilation cache at dir (the wasm.Config.CacheDir of the tests' runtime)
// with the modules' machine code, compiled by a separate process built without the race detector:
// under -race, wazero compiles a Go guest in about 10 s instead of 1 s. A runtime on the same cache then
// loads each module in a fraction of a second.
func Precompile(tb testing.TB, dir string, modules ...[]byte) {
	tb.Helper()
	tmp, err := os.MkdirTemp("", "postern-precompile-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// wazero keys its cache by its own version, read from the binary's build information, which a test
	// binary lacks ("dev"): stamp the same version into the precompiler.
	args := []string{"run", "-ldflags=-X=github.com/tetratelabs/wazero/internal/version.version=" + wazeroVersion(),
		"postern.dev/postern/wasm/wasmtest/precompile", "-cache", dir}
	for i, m := range modules {
		f := filepath.Join(tmp, fmt.Sprintf("m%d.wasm", i))
		if err := os.WriteFile(f, m, 0o600); err != nil {
			tb.Fatal(err)
		}
		args = append(args, f)
	}
	cmd := exec.Command(goTool(), args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("wasmtest: precompiling: %v: %s", err, out)
	}
}

// wazeroVersion is the version wazero finds for itself in this binary (its internal/version package).
func wazeroVersion() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		return "dev"
	}
	return v
}
