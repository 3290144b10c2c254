package wasm

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

func TestScanMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		wasm []byte
		want memoryInfo
	}{
		{"no max", abiModule(3, -1, answer(2)).bytes(), memoryInfo{min: 3}},
		{"max", abiModule(1, 17, answer(2)).bytes(), memoryInfo{min: 1, max: 17, hasMax: true}},
		{"big numbers", abiModule(300, 70000, answer(2)).bytes(), memoryInfo{min: 300, max: 70000, hasMax: true}},
		{"imported", func() []byte { m := &wmod{}; m.importMemory("env", "memory", 2); return m.bytes() }(),
			memoryInfo{imported: true}},
		{"none", (&wmod{}).bytes(), memoryInfo{}},
	} {
		got, err := scanMemory(tc.wasm)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range [][]byte{nil, []byte("not wasm"), []byte("\x00asm\x01\x00\x00\x00\x05\x7f"),
		[]byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x01\x80")} {
		if _, err := scanMemory(bad); err == nil {
			t.Errorf("scanMemory(%q) accepted it", bad)
		}
	}
}

// withImports is an ABI module that also imports the given host functions.
func withImports(imports func(m *wmod)) []byte {
	m := &wmod{}
	imports(m)
	m.mem(1, 1)
	m.exportMemory("memory")
	m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(1024)))
	m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI64}, nil, i64c(2)))
	return m.bytes()
}

func TestBadModules(t *testing.T) {
	init := func(body ...[]byte) []byte {
		m := abiModule(1, 1, answer(2))
		m.exportFunc("_initialize", m.fn(nil, nil, nil, body...))
		m.dataAt(0, []byte("{}"))
		return m.bytes()
	}
	cases := []struct {
		name  string
		wasm  []byte
		kinds []error
		msg   string
	}{
		{"not wasm", []byte("MZ\x90\x00 not a module"), []error{ErrBadModule}, "not a WebAssembly"},
		{"truncated", abiModule(1, 1, answer(2)).bytes()[:40], []error{ErrBadModule}, ""},
		{"no handle", func() []byte {
			m := &wmod{}
			m.mem(1, 1)
			m.exportMemory("memory")
			m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(0)))
			return m.bytes()
		}(), []error{ErrBadModule}, "does not export postern_handle(i32, i32) -> i64"},
		{"mistyped handle", func() []byte {
			m := &wmod{}
			m.mem(1, 1)
			m.exportMemory("memory")
			m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(0)))
			m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI32}, nil, i32c(0)))
			return m.bytes()
		}(), []error{ErrBadModule}, "exports postern_handle(i32, i32) -> i32, want postern_handle(i32, i32) -> i64"},
		{"no alloc", func() []byte {
			m := &wmod{}
			m.mem(1, 1)
			m.exportMemory("memory")
			m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI64}, nil, i64c(0)))
			return m.bytes()
		}(), []error{ErrBadModule}, "does not export postern_alloc"},
		{"no memory export", func() []byte {
			m := &wmod{}
			m.mem(1, 1)
			m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(0)))
			m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI64}, nil, i64c(0)))
			return m.bytes()
		}(), []error{ErrBadModule}, `does not export its memory as "memory"`},
		{"imported memory", func() []byte {
			m := &wmod{}
			m.importMemory("env", "memory", 1)
			m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(0)))
			m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI64}, nil, i64c(0)))
			return m.bytes()
		}(), []error{ErrBadModule}, "imports its memory"},
		{"unknown import module", withImports(func(m *wmod) { m.importFunc("env", "abort", nil, nil) }),
			[]error{ErrBadModule}, "imports env.abort: the host provides only postern and wasi_snapshot_preview1"},
		{"unknown host function", withImports(func(m *wmod) { m.importFunc("postern", "exec", nil, nil) }),
			[]error{ErrBadModule}, "imports postern.exec, which the host does not provide"},
		{"mistyped host function", withImports(func(m *wmod) { m.importFunc("postern", "log", []byte{tI32}, nil) }),
			[]error{ErrBadModule}, "imports postern.log as (i32), the host's is (i32, i32, i32)"},
		{"unknown WASI function", withImports(func(m *wmod) { m.importFunc("wasi_snapshot_preview1", "sock_open", nil, nil) }),
			[]error{ErrBadModule}, "which the host does not provide"},
		{"WASI command", func() []byte {
			m := &wmod{}
			m.mem(1, 1)
			m.exportMemory("memory")
			m.exportFunc("_start", m.fn(nil, nil, nil))
			return m.bytes()
		}(), []error{ErrBadModule}, "is a WASI command"},
		{"declared maximum over the limit", abiModule(1, 1000, answer(2)).bytes(), []error{ErrLimit},
			"declares up to 65536000 bytes of memory, over its 1048576-byte limit"},
		{"_initialize traps", init(opUnreachable), []error{ErrBadModule, ErrTrap}, "_initialize"},
		{"_initialize loops", init(opLoop, br(0), opEnd), []error{ErrBadModule, ErrTimeout}, "_initialize"},
	}
	h := newHarness(t, func(c *Config) { c.InitTimeout = 200 * time.Millisecond })
	b := newBystander(t, h)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext := h.ext("evil", tc.name, tc.wasm)
			ext.MemoryLimit = mib
			err := h.Prepare(context.Background(), ext)
			if err == nil {
				t.Fatal("Prepare accepted the module")
			}
			t.Logf("error: %v", err)
			wantKind(t, err, tc.kinds...)
			wantContains(t, err.Error(), tc.msg)
			// Invoke reports the same, without loading the module again.
			_, err2 := h.invoke(t, ext, `{}`)
			if err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Invoke: %v, want the load's error again", err2)
			}
		})
	}
	b.check(t)
}

func TestModuleLoadErrors(t *testing.T) {
	var reads atomic.Int32
	bl := &blobs{}
	h := newHarness(t, func(c *Config) {
		c.MaxModuleSize = 64 << 10
		c.Module = func(tenant, sha string) ([]byte, error) {
			reads.Add(1)
			return bl.get(tenant, sha)
		}
	})
	h.blobs = bl

	// Over the module size limit: refused, once.
	big := abiModule(1, 1, answer(2))
	big.dataAt(100, make([]byte, 70<<10))
	ext := h.ext("evil", "big", big.bytes())
	err := h.Prepare(context.Background(), ext)
	wantKind(t, err, ErrLimit)
	_, _ = h.invoke(t, ext, `{}`)
	if n := reads.Load(); n != 1 {
		t.Errorf("module read %d times, want once: its error is the module's own", n)
	}

	// Bytes that do not match their hash.
	ext = h.ext("evil", "forged", constModule(`{}`))
	bl.mu.Lock()
	bl.m["evil/"+ext.WasmSHA256] = constModule(`{"forged":true}`)
	bl.mu.Unlock()
	wantKind(t, h.Prepare(context.Background(), ext), ErrBadModule)

	// A module not (yet) stored is an internal error, tried again by the next call.
	good := constModule(`{"ok":1}`)
	ext = directory.Extension{ID: "late", Tenant: "acme", WasmSHA256: (&blobs{}).put("x", good), Version: 1}
	_, err = h.invoke(t, ext, `{}`)
	if !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("missing module: %v, want the store's ErrNotFound", err)
	}
	for _, k := range []error{ErrTrap, ErrTimeout, ErrLimit, ErrBadOutput, ErrBadModule, ErrFailed} {
		if errors.Is(err, k) {
			t.Errorf("missing module: %v is %v", err, k)
		}
	}
	bl.put("acme", good)
	if got := h.mustInvoke(t, ext, `{}`); got != `{"ok":1}` {
		t.Errorf("after the module was stored: %s", got)
	}
}

func TestFreeIsCalled(t *testing.T) {
	h := newHarness(t, nil)
	m := abiModule(1, 1, answer(2))
	m.dataAt(0, []byte("{}"))
	m.exportFunc("postern_free", m.fn([]byte{tI32, tI32}, nil, nil, opUnreachable))
	ext := h.ext("evil", "free", m.bytes())
	_, err := h.invoke(t, ext, `{}`)
	wantKind(t, err, ErrTrap)
	wantContains(t, err.Error(), "postern_free")
}
