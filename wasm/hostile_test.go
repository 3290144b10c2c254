package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

// Hostile modules. Each test runs one against the runtime and then checks that the runtime is healthy:
// another tenant's extension, already warm, still answers correctly, and the hostile module's
// instance was discarded.

// bystander is another tenant's well-behaved Go extension, warmed before the hostile module runs.
type bystander struct {
	h   *harness
	ext directory.Extension
}

func newBystander(t *testing.T, h *harness) bystander {
	t.Helper()
	ext := h.ext("beta", "claims", guest(t, "examples/claims"))
	ext.Config = map[string]string{"claim_name": "tier", "claim_value": "gold"}
	b := bystander{h, ext}
	b.check(t)
	return b
}

func (b bystander) check(t *testing.T) {
	t.Helper()
	got := b.h.mustInvoke(t, b.ext, event("microsoft.graph.authenticationEvent.tokenIssuanceStart", `{}`))
	wantContains(t, got, `"claims":{"tier":"gold"}`)
}

// hostile runs wasm as tenant evil's extension and returns the call's error, after checking that the
// call failed, the instance was discarded and the bystander still answers.
func hostile(t *testing.T, h *harness, ext directory.Extension) error {
	t.Helper()
	b := newBystander(t, h)
	_, err := h.invoke(t, ext, `{"type":"x","data":{}}`)
	if err == nil {
		t.Fatal("hostile module's call succeeded")
	}
	t.Logf("error: %v", err)
	if v := h.current(ext); v != nil {
		if live, _ := v.stats(); live != 0 {
			t.Errorf("%d instances left after a failed call, want the instance discarded", live)
		}
	}
	b.check(t)
	return err
}

func wantKind(t *testing.T, err error, kinds ...error) {
	t.Helper()
	for _, k := range kinds {
		if !errors.Is(err, k) {
			t.Errorf("error %v is not %v", err, k)
		}
	}
	for _, other := range []error{ErrTrap, ErrTimeout, ErrLimit, ErrBadOutput, ErrBadModule, ErrFailed, ErrClosed} {
		want := false
		for _, k := range kinds {
			want = want || k == other
		}
		if !want && errors.Is(err, other) {
			t.Errorf("error %v is also %v", err, other)
		}
	}
	if !strings.Contains(err.Error(), "evil/") {
		t.Errorf("error %q does not name the extension", err)
	}
}

func TestHostileInfiniteLoop(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("evil", "loop", abiModule(1, 1, opLoop, br(0), opEnd, opUnreachable).bytes())
	ext.Timeout = directory.Duration(100 * time.Millisecond)
	err := hostile(t, h, ext)
	wantKind(t, err, ErrTimeout)
	wantContains(t, err.Error(), "ran past its 100ms timeout")
	start := time.Now()
	_, err = h.invoke(t, ext, `{}`)
	wantKind(t, err, ErrTimeout)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the loop was stopped after %v", took)
	}

	// The caller's own deadline stops it too.
	ext.Timeout = directory.Duration(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = h.Invoke(ctx, ext, []byte(`{}`))
	wantKind(t, err, ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the caller's deadline", err)
	}
}

func TestHostileMemoryGrowBomb(t *testing.T) {
	h := newHarness(t, nil)
	// Grow 16 pages at a time until memory.grow fails, then trap.
	m := abiModule(1, -1,
		opLoop, i32c(16), opMemGrow, i32c(-1), opI32Ne, brIf(0), opEnd,
		opUnreachable)
	ext := h.ext("evil", "bomb", m.bytes())
	ext.MemoryLimit = 8 * mib
	err := hostile(t, h, ext)
	wantKind(t, err, ErrLimit, ErrTrap)
	wantContains(t, err.Error(), "of 8388608 bytes")
}

// TestHostileGoOutOfMemory: a Go guest that allocates past its limit dies of it.
func TestHostileGoOutOfMemory(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("evil", "hog", guest(t, "testdata/probe"))
	ext.MemoryLimit = 32 * mib
	b := newBystander(t, h)
	_, err := h.invoke(t, ext, `{"alloc_mib":64}`)
	wantKind(t, err, ErrLimit, ErrTrap)
	if live, _ := h.current(ext).stats(); live != 0 {
		t.Errorf("%d instances left", live)
	}
	b.check(t)
}

func TestHostileNoMemoryMaximum(t *testing.T) {
	h := newHarness(t, nil)
	b := newBystander(t, h)

	// A module that declares no maximum still stops at its extension's limit: it grows one page at a
	// time until memory.grow refuses, and answers.
	m := abiModule(1, -1,
		opLoop, i32c(1), opMemGrow, i32c(-1), opI32Ne, brIf(0), opEnd,
		answer(len(`{"ok":true}`)))
	m.dataAt(0, []byte(`{"ok":true}`))
	ext := h.ext("evil", "grower", m.bytes())
	ext.MemoryLimit = 2 * mib
	if got := h.mustInvoke(t, ext, `{}`); got != `{"ok":true}` {
		t.Fatalf("answer %s", got)
	}
	v := h.current(ext)
	v.mu.Lock()
	size := v.idle[0].mem.Size()
	v.mu.Unlock()
	if size != 2*mib {
		t.Errorf("memory grew to %d bytes, want the 2 MiB limit", size)
	}

	// One that needs more than its limit at start is refused when loaded.
	big := abiModule(64, -1, answer(2))
	ext = h.ext("evil", "big", big.bytes())
	ext.MemoryLimit = 2 * mib
	err := h.Prepare(context.Background(), ext)
	wantKind(t, err, ErrLimit)
	wantContains(t, err.Error(), "needs 4194304 bytes of memory at start")

	// As is a Go guest given too little memory for its runtime.
	ext = h.ext("evil", "small-go", guest(t, "examples/echo"))
	ext.MemoryLimit = 64 << 10
	wantKind(t, h.Prepare(context.Background(), ext), ErrLimit)
	b.check(t)
}

func TestHostileTrap(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("evil", "trap", abiModule(1, 1, opUnreachable).bytes())
	err := hostile(t, h, ext)
	wantKind(t, err, ErrTrap)
	wantContains(t, err.Error(), "unreachable")
}

func TestHostileDeepRecursion(t *testing.T) {
	h := newHarness(t, nil)
	m := &wmod{}
	m.mem(1, 1)
	m.exportMemory("memory")
	m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(1024)))
	// f (function 1) calls itself forever; handle calls f.
	f := m.fn(nil, nil, nil, call(1))
	m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI64}, nil, call(f), opUnreachable))
	ext := h.ext("evil", "recursion", m.bytes())
	// wazero grows the call stack to about 100 MB before it reports the overflow: 0.1-0.2 s, ten
	// times that under the race detector.
	ext.Timeout = directory.Duration(60 * time.Second)
	err := hostile(t, h, ext)
	wantKind(t, err, ErrTrap)
	wantContains(t, err.Error(), "stack overflow")

}

func TestHostileHugeOutput(t *testing.T) {
	h := newHarness(t, nil)
	// 100 MB of output: grow to 1,600 pages and answer 100,000,000 bytes from address 0.
	m := abiModule(1, -1, i32c(1600), opMemGrow, opDrop, i64c(100_000_000))
	ext := h.ext("evil", "huge", m.bytes())
	ext.MemoryLimit = 128 * mib
	ext.Timeout = directory.Duration(30 * time.Second) // growing by 100 MB is slow under -race
	err := hostile(t, h, ext)
	wantKind(t, err, ErrLimit)
	wantContains(t, err.Error(), "output of 100000000 bytes is over the 1048576-byte limit")

	// An answer outside the module's memory is malformed.
	ext = h.ext("evil", "outside", abiModule(1, 1, i64c(0x0000_fff0_0000_0100)).bytes())
	wantKind(t, hostile(t, h, ext), ErrBadOutput)
}

func TestHostileMalformedAnswer(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("evil", "notjson", constModule(`{"data": not json`))
	err := hostile(t, h, ext)
	wantKind(t, err, ErrBadOutput)
	wantContains(t, err.Error(), "not JSON")

	// alloc answering an address where the input does not fit.
	m := &wmod{}
	m.mem(1, 1)
	m.exportMemory("memory")
	m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(-16)))
	m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI64}, nil, i64c(2)))
	ext = h.ext("evil", "badalloc", m.bytes())
	wantKind(t, hostile(t, h, ext), ErrBadOutput)
}

func TestHostileHostFunctionArguments(t *testing.T) {
	h := newHarness(t, nil)
	// log with a pointer outside memory.
	m := &wmod{}
	logf := m.importFunc("postern", "log", []byte{tI32, tI32, tI32}, nil)
	m.mem(1, 1)
	m.exportMemory("memory")
	m.exportFunc("postern_alloc", m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(1024)))
	m.exportFunc("postern_handle", m.fn([]byte{tI32, tI32}, []byte{tI64}, nil,
		i32c(1), i32c(-100), i32c(50), call(logf), i64c(2)))
	ext := h.ext("evil", "badptr", m.bytes())
	err := hostile(t, h, ext)
	wantKind(t, err, ErrTrap)
	wantContains(t, err.Error(), "outside the module's memory")
}

// TestHostileWASI runs the probe guest: files, environment, arguments and sockets all come back empty
// or failing, while the host functions it is given work.
func TestHostileWASI(t *testing.T) {
	t.Setenv("POSTERN_TEST_SECRET", "must-not-leak")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()

	h := newHarness(t, nil)
	b := newBystander(t, h)
	ext := h.ext("evil", "probe", guest(t, "testdata/probe"))
	ext.Config = map[string]string{"greeting": "hello"}
	before := time.Now().UnixMilli()
	out := h.mustInvoke(t, ext, `{"dial":"`+ln.Addr().String()+`"}`)
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: %s", out)
	for _, key := range []string{"read_file", "read_dir", "read_cwd", "create", "dial"} {
		if s, _ := got[key].(string); s == "" {
			t.Errorf("%s succeeded", key)
		}
	}
	for _, key := range []string{"env_secret", "environ", "args"} {
		if s, _ := got[key].(string); s != "" {
			t.Errorf("%s = %q, want nothing", key, s)
		}
	}
	for _, key := range []string{"preopens", "sockets"} {
		if n, _ := got[key].(float64); n != 0 {
			t.Errorf("%s = %v, want 0", key, n)
		}
	}
	select {
	case <-accepted:
		t.Error("the guest reached a socket on the host")
	case <-time.After(100 * time.Millisecond):
	}

	// What it is given works: configuration, real clocks, crypto/rand (not wazero's fixed source).
	if got["config"] != "hello" || got["config_missing"] != true {
		t.Errorf("config: %v %v", got["config"], got["config_missing"])
	}
	for _, key := range []string{"now_ms", "time_now_ms"} {
		if ms, _ := got[key].(float64); int64(ms) < before || int64(ms) > time.Now().UnixMilli() {
			t.Errorf("%s = %v, want the real time", key, ms)
		}
	}
	out2 := h.mustInvoke(t, ext, `{}`)
	var got2 map[string]any
	_ = json.Unmarshal([]byte(out2), &got2)
	for _, key := range []string{"random", "crypto_rand"} {
		if s, _ := got[key].(string); len(s) != 32 || got2[key] == s {
			t.Errorf("%s: %v then %v, want fresh random bytes", key, s, got2[key])
		}
	}
	b.check(t)
}

func TestHostileGoPanic(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("evil", "panic", guest(t, "testdata/probe"))
	b := newBystander(t, h)
	_, err := h.invoke(t, ext, `{"panic":true}`)
	wantKind(t, err, ErrTrap)
	// The panic's text reaches the log through stderr.
	wantContains(t, h.log.String(), "probe: asked to panic")
	if live, _ := h.current(ext).stats(); live != 0 {
		t.Errorf("%d instances left after the panic", live)
	}
	// The extension itself recovers with a fresh instance.
	if _, err := h.invoke(t, ext, `{}`); err != nil {
		t.Errorf("call after the panic: %v", err)
	}
	b.check(t)
}
