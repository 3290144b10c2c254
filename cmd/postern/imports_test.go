package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules keeps the dependency directions of ARCHITECTURE.md: each heavy library stays in the one
// package that owns it, and packages import one way (cmd → edge → flows → wasm; edge/flows → directory;
// cluster → directory).
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "postern.dev/postern/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "postern.dev/postern/"
	owners := map[string][]string{ // library → the packages (by prefix) that may import it
		"github.com/dgraph-io/badger":   {"directory", "bench"},
		"github.com/hashicorp/raft":     {"cluster", "bench"},
		"github.com/valyala/fasthttp":   {"edge", "bench"},
		"github.com/tetratelabs/wazero": {"wasm", "bench"},
	}
	forbidden := map[string][]string{ // package → postern packages it must not import
		"directory": {"cluster", "edge", "flows", "wasm", "cmd", "bench"},
		"cluster":   {"edge", "flows", "wasm", "cmd"},
		"flows":     {"edge", "cluster", "cmd"},
		"wasm":      {"edge", "flows", "cluster", "cmd"},
		"edge":      {"cmd"},
	}
	under := func(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], mod), fields[1:]
		for _, imp := range imports {
			for lib, allowed := range owners {
				if !strings.HasPrefix(imp, lib) {
					continue
				}
				ok := false
				for _, a := range allowed {
					ok = ok || under(pkg, a)
				}
				if !ok {
					t.Errorf("%s imports %s, which only %v may import", pkg, imp, allowed)
				}
			}
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			target := strings.TrimPrefix(imp, mod)
			for dir, bad := range forbidden {
				if !under(pkg, dir) {
					continue
				}
				for _, b := range bad {
					if under(target, b) {
						t.Errorf("%s imports %s: %s must not depend on %s", pkg, target, dir, b)
					}
				}
			}
		}
	}
}
