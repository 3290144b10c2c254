package wasm

import (
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// An engine is one wazero runtime, for the modules of one memory limit. wazero's memory limit is a
// runtime setting, so each distinct limit gets its own runtime; they all share one compilation cache,
// so a module's machine code is compiled once per node whatever the limits it runs under.
type engine struct {
	pages uint32
	rt    wazero.Runtime
	// imports is what a module may import: module name → function name → definition.
	imports map[string]map[string]api.FunctionDefinition
}

func (r *Runtime) engine(pages uint32) (*engine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if e := r.engines[pages]; e != nil {
		return e, nil
	}
	rc := wazero.NewRuntimeConfig()
	if r.cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithCompilationCache(r.cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(pages)
	rt := wazero.NewRuntimeWithConfig(r.ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(r.ctx, rt); err != nil {
		_ = rt.Close(r.ctx)
		return nil, fmt.Errorf("wasm: instantiating WASI: %w", err)
	}
	host, err := r.instantiateHost(r.ctx, rt)
	if err != nil {
		_ = rt.Close(r.ctx)
		return nil, fmt.Errorf("wasm: instantiating the host functions: %w", err)
	}
	e := &engine{
		pages: pages,
		rt:    rt,
		imports: map[string]map[string]api.FunctionDefinition{
			wasi_snapshot_preview1.ModuleName: rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions(),
			hostModule:                        host.ExportedFunctionDefinitions(),
		},
	}
	r.engines[pages] = e
	return e, nil
}
