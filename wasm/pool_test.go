package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

// TestSwapUnderLoad replaces an extension's module while 1,000 calls are in flight: every call
// completes, with the old module's answer or the new one's, and a call made with the new record
// always gets the new module. Whether calls are still running on the old module at the instant of the
// swap depends on the scheduler (an echo call takes microseconds), so the experiment runs again, with
// a fresh extension, until one caught some (every attempt's calls are checked all the same).
func TestSwapUnderLoad(t *testing.T) {
	h := newHarness(t, nil)
	echo, claims := guest(t, "examples/echo"), guest(t, "examples/claims")
	const attempts = 5
	for a := range attempts {
		if swapUnderLoad(t, h, fmt.Sprint("swap-", a), echo, claims) {
			return
		}
	}
	t.Errorf("in %d attempts the swap never happened with calls running on the old module", attempts)
}

// swapUnderLoad runs one attempt of TestSwapUnderLoad and reports whether the swap caught calls in
// flight on the old module.
func swapUnderLoad(t *testing.T, h *harness, id string, oldWasm, newWasm []byte) bool {
	t.Helper()
	old := h.ext("acme", id, oldWasm)
	input := event("microsoft.graph.authenticationEvent.tokenIssuanceStart", `{}`)
	if got := h.mustInvoke(t, old, input); got != input {
		t.Fatalf("old module answered %s", got)
	}
	oldVersion := h.current(old)
	var inflight atomic.Int32 // calls holding the old version when it was replaced
	h.onSwap = func(v *version) {
		v.mu.Lock()
		inflight.Store(int32(v.refs))
		v.mu.Unlock()
	}
	defer func() { h.onSwap = nil }()

	nw := h.ext("acme", id, newWasm)
	nw.Version = 2
	nw.Config = map[string]string{"claim_name": "v", "claim_value": "new"}

	const calls = 1000
	var (
		cur     atomic.Pointer[directory.Extension]
		started atomic.Int32
		wg      sync.WaitGroup
		outs    = make([]string, calls)
		errs    = make([]error, calls)
		gotNew  = make([]bool, calls)
	)
	cur.Store(&old)
	ready := make(chan struct{})
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			ext := cur.Load()
			if started.Add(1) == calls/3 {
				cur.Store(&nw) // the directory applied the new record
			}
			gotNew[i] = ext.Version == 2
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := h.Invoke(ctx, *ext, []byte(input))
			outs[i], errs[i] = string(out), err
		}()
	}
	close(ready)
	wg.Wait()

	var nOld, nNew int
	for i := range calls {
		if errs[i] != nil {
			t.Errorf("%s: call %d: %v", id, i, errs[i])
			continue
		}
		switch {
		case outs[i] == input:
			nOld++
			if gotNew[i] {
				t.Errorf("%s: call %d with the new record got the old module's answer", id, i)
			}
		case strings.Contains(outs[i], `"claims":{"v":"new"}`):
			nNew++
		default:
			t.Errorf("%s: call %d answered %s", id, i, outs[i])
		}
	}
	t.Logf("%s: %d calls answered by the old module, %d by the new; calls running on the old one when it was replaced: %d",
		id, nOld, nNew, inflight.Load())
	if nOld == 0 || nNew == 0 {
		t.Errorf("%s: old %d, new %d: the swap did not happen during the calls", id, nOld, nNew)
	}

	// The old version is closed, instances and compiled code; the new one serves.
	oldVersion.mu.Lock()
	closed, live := oldVersion.closed, oldVersion.live
	oldVersion.mu.Unlock()
	if !closed || live != 0 {
		t.Errorf("%s: old version: closed %v, %d instances; want closed with none", id, closed, live)
	}
	if v := h.current(nw); v == oldVersion || v.key.sha != nw.WasmSHA256 {
		t.Errorf("%s: the new module is not current", id)
	}
	if live, _ := h.current(nw).stats(); live > h.cfg.MaxInstances {
		t.Errorf("%s: %d instances of the new module, over MaxInstances %d", id, live, h.cfg.MaxInstances)
	}
	return inflight.Load() > 0
}

// TestStaleRecord: a call made with an older record than the current version's runs on the current
// version rather than bringing the old module back.
func TestStaleRecord(t *testing.T) {
	h := newHarness(t, nil)
	v1 := h.ext("acme", "ext", constModule(`{"v":1}`))
	v2 := h.ext("acme", "ext", constModule(`{"v":2}`))
	v2.Version = 2
	h.mustInvoke(t, v1, `{}`)
	if got := h.mustInvoke(t, v2, `{}`); got != `{"v":2}` {
		t.Fatalf("new record: %s", got)
	}
	if got := h.mustInvoke(t, v1, `{}`); got != `{"v":2}` {
		t.Errorf("stale record: %s, want the current version's answer", got)
	}
}

func TestPoolBoundsInstances(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInstances = 3 })
	ext := h.ext("acme", "echo", echoModule())
	var wg sync.WaitGroup
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				in := `{"g":` + strings.Repeat("1", g+1) + `,"i":` + strings.Repeat("2", i+1) + `}`
				if got, err := h.invoke(t, ext, in); err != nil || got != in {
					t.Errorf("echo: %q, %v; want %q", got, err, in)
					return
				}
			}
		}()
	}
	wg.Wait()
	live, idle := h.current(ext).stats()
	if live > 3 || live != idle {
		t.Errorf("%d instances (%d idle) after 600 concurrent calls, want at most 3, all idle", live, idle)
	}
}

// TestWaitForFreeInstance: with every instance busy, a caller waits until its context is done.
func TestWaitForFreeInstance(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInstances = 1 })
	ext := h.ext("acme", "slow", abiModule(1, 1, opLoop, br(0), opEnd, opUnreachable).bytes())
	ext.Timeout = directory.Duration(time.Second)
	bystander := h.ext("acme", "other", echoModule())

	done := make(chan error, 1)
	go func() {
		_, err := h.Invoke(context.Background(), ext, []byte(`{}`))
		done <- err
	}()
	// Wait until the slow call holds the extension's only place.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.RLock()
		s := h.slots[slotKey{"acme", "slow"}]
		h.mu.RUnlock()
		if s != nil && len(s.sem) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow call never started")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := h.Invoke(ctx, ext, []byte(`{}`))
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "waiting for a free instance") {
		t.Errorf("second call: %v, want ErrTimeout waiting for a free instance", err)
	}
	// Another extension is not held up by this one's bound.
	if got := h.mustInvoke(t, bystander, `{"x":1}`); got != `{"x":1}` {
		t.Errorf("other extension: %s", got)
	}
	if err := <-done; !errors.Is(err, ErrTimeout) {
		t.Errorf("slow call: %v, want ErrTimeout", err)
	}
}

func TestInputAndMemoryLimits(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInput = 100 })
	ext := h.ext("acme", "echo", echoModule())
	_, err := h.invoke(t, ext, `"`+strings.Repeat("a", 100)+`"`)
	if !errors.Is(err, ErrLimit) {
		t.Errorf("input over MaxInput: %v, want ErrLimit", err)
	}
	ext.MemoryLimit = 1 << 40
	if _, err := h.invoke(t, ext, `{}`); !errors.Is(err, ErrLimit) {
		t.Errorf("memory limit over the node's: %v, want ErrLimit", err)
	}
}

func TestDropAndClose(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("acme", "echo", echoModule())
	h.mustInvoke(t, ext, `{}`)
	v := h.current(ext)
	h.Drop("acme", "echo")
	v.mu.Lock()
	closed := v.closed
	v.mu.Unlock()
	if !closed || h.current(ext) != nil {
		t.Errorf("after Drop: version closed %v, slot %v", closed, h.current(ext))
	}
	h.mustInvoke(t, ext, `{}`) // loads again

	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.invoke(t, ext, `{}`); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLogBounds: a guest's log lines are cut, and those over the call's budget dropped and counted.
func TestLogBounds(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("acme", "probe", guest(t, "testdata/probe"))
	h.mustInvoke(t, ext, `{"log":100,"stdout":2}`)
	logs := h.log.String()
	lines := strings.Count(logs, `"source":"log"`)
	if lines == 0 || lines > h.cfg.LogCallBytes/h.cfg.LogLineBytes+1 {
		t.Errorf("%d log lines of the guest's 100, want at most %d", lines, h.cfg.LogCallBytes/h.cfg.LogLineBytes+1)
	}
	if strings.Contains(logs, strings.Repeat("x", h.cfg.LogLineBytes)) {
		t.Error("a log line longer than LogLineBytes got through")
	}
	wantContains(t, logs, `"msg":"wasm: extension log lines dropped","tenant":"acme","extension":"probe","dropped":`)
	// stdout goes to the log as well, within the same budget (here already spent).
	if strings.Contains(logs, "stdout line") {
		t.Error("stdout beyond the budget got through")
	}
	h.mustInvoke(t, ext, `{"stdout":1}`)
	wantContains(t, h.log.String(), `"msg":"stdout line 0","tenant":"acme","extension":"probe","source":"stdout"`)
}

// An extension's own bounds (from its manifest) apply below the node's: input, output and concurrent
// calls.
func TestPerExtensionLimits(t *testing.T) {
	h := newHarness(t, nil)
	ext := h.ext("acme", "echo", echoModule())
	ext.MaxInput = 2048
	if _, err := h.invoke(t, ext, `"`+strings.Repeat("a", 3000)+`"`); !errors.Is(err, ErrLimit) {
		t.Errorf("input over the extension's max_input: %v, want ErrLimit", err)
	}
	ext.MaxInput, ext.MaxOutput = 0, 1024 // echo answers its input: 1,502 bytes out
	if _, err := h.invoke(t, ext, `"`+strings.Repeat("a", 1500)+`"`); !errors.Is(err, ErrLimit) {
		t.Errorf("output over the extension's max_output: %v, want ErrLimit", err)
	}
	if _, err := h.invoke(t, ext, `"small"`); err != nil {
		t.Errorf("within the bounds: %v", err)
	}
	one := h.ext("acme", "single", echoModule())
	one.MaxInstances = 1
	h.mustInvoke(t, one, `{}`)
	h.mu.Lock()
	s := h.slots[slotKey{"acme", "single"}]
	h.mu.Unlock()
	if s == nil || cap(s.sem) != 1 {
		t.Errorf("max_instances 1: the extension may run %d calls at once", cap(s.sem))
	}
}
