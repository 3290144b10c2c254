package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"postern.dev/postern/directory"
)

// An instance is one instantiated module: its own memory and globals, used by one call at a time.
type instance struct {
	v      *version
	mod    api.Module
	mem    api.Memory
	alloc  api.Function
	handle api.Function
	free   api.Function // nil when the module has no postern_free
	stack  [2]uint64
	// memBefore is the memory's size when the current call began.
	memBefore uint32

	// cur is the call running on the instance, for the host functions' state and the guest's
	// stdout and stderr. Only the goroutine running the call touches it.
	cur *callState
}

// newInstance instantiates the version's module with no filesystem, environment, arguments or
// sockets, real clocks and crypto/rand, and runs its _initialize.
func (v *version) newInstance(ctx context.Context, ext directory.Extension) (_ *instance, err error) {
	r := v.r
	ictx, cancel := context.WithTimeout(ctx, r.cfg.InitTimeout)
	defer cancel()
	inst := &instance{v: v}
	cs := r.newCallState(ext)
	defer func() { cs.finish(err) }()
	inst.cur = cs
	defer func() { inst.cur = nil }()
	ictx = context.WithValue(ictx, callKey{}, cs)

	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // a reactor: _initialize is called below, _start never
		WithStdin(bytes.NewReader(nil)).
		WithStdout(guestOutput{inst, slog.LevelInfo}).
		WithStderr(guestOutput{inst, slog.LevelWarn}).
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(boundedSleep)
	start := time.Now()
	mod, err := v.eng.rt.InstantiateModule(ictx, v.compiled, mc)
	if err != nil {
		return nil, inst.failed(ctx, ictx, r.cfg.InitTimeout, "instantiating", err)
	}
	inst.mod = mod
	if m := mod.Memory(); m != nil {
		inst.memBefore = m.Size()
	}
	if v.hasInit {
		if _, err := mod.ExportedFunction(exportInit).Call(ictx); err != nil {
			err = inst.failed(ctx, ictx, r.cfg.InitTimeout, exportInit, err)
			inst.close()
			return nil, err
		}
	}
	inst.mem = mod.Memory()
	inst.alloc = mod.ExportedFunction(exportAlloc)
	inst.handle = mod.ExportedFunction(exportHandle)
	if v.hasFree {
		inst.free = mod.ExportedFunction(exportFree)
	}
	r.cfg.Log.Debug("wasm: instance started", "tenant", ext.Tenant, "extension", ext.ID,
		"module", v.key.sha, "took", time.Since(start))
	return inst, nil
}

func (inst *instance) close() {
	if inst.mod != nil {
		_ = inst.mod.Close(context.Background())
	}
}

// call runs one event: postern_alloc for the input, the input copied in, postern_handle, the output
// copied out (and postern_free, if exported). See docs/wasm-abi.md.
func (inst *instance) call(ctx context.Context, ext directory.Extension, input []byte, timeout time.Duration) (_ []byte, err error) {
	r := inst.v.r
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cs := r.newCallState(ext)
	defer func() { cs.finish(err) }()
	inst.cur = cs
	defer func() { inst.cur = nil }()
	cctx = context.WithValue(cctx, callKey{}, cs)

	inst.memBefore = inst.mem.Size()
	stack := inst.stack[:]
	stack[0] = uint64(len(input))
	if err := inst.alloc.CallWithStack(cctx, stack); err != nil {
		return nil, inst.failed(ctx, cctx, timeout, exportAlloc, err)
	}
	ptr := uint32(stack[0])
	if !inst.mem.Write(ptr, input) {
		return nil, fmt.Errorf("%w: extension %s: %s returned %d, outside its memory for %d bytes",
			ErrBadOutput, inst.v.name, exportAlloc, ptr, len(input))
	}
	stack[0], stack[1] = uint64(ptr), uint64(len(input))
	if err := inst.handle.CallWithStack(cctx, stack); err != nil {
		return nil, inst.failed(ctx, cctx, timeout, exportHandle, err)
	}
	optr, olen := uint32(stack[0]>>32), uint32(stack[0])
	if olen == 0 {
		return nil, fmt.Errorf("%w: extension %s reported a failure (see its log)", ErrFailed, inst.v.name)
	}
	if maxOut := capTo(ext.MaxOutput, r.cfg.MaxOutput); int64(olen) > int64(maxOut) {
		return nil, fmt.Errorf("%w: extension %s: output of %d bytes is over the %d-byte limit",
			ErrLimit, inst.v.name, olen, maxOut)
	}
	view, ok := inst.mem.Read(optr, olen)
	if !ok {
		return nil, fmt.Errorf("%w: extension %s: its answer at %d (%d bytes) lies outside its memory",
			ErrBadOutput, inst.v.name, optr, olen)
	}
	out := bytes.Clone(view)
	if inst.free != nil {
		stack[0], stack[1] = uint64(optr), uint64(olen)
		if err := inst.free.CallWithStack(cctx, stack); err != nil {
			return nil, inst.failed(ctx, cctx, timeout, exportFree, err)
		}
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("%w: extension %s: its answer is not JSON: %.64q", ErrBadOutput, inst.v.name, out)
	}
	return out, nil
}

// failed turns an error from running guest code into one of the package's kinds. ctx is the caller's,
// cctx the one the guest ran under (ctx with its timeout).
func (inst *instance) failed(ctx, cctx context.Context, timeout time.Duration, what string, err error) error {
	name := inst.v.name
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return inst.timedOut(ctx, timeout, what)
		}
		return inst.atLimit(fmt.Errorf("%w: extension %s: %s: exited with code %d", ErrTrap, name, what, exit.ExitCode()))
	}
	if cctx.Err() != nil {
		return inst.timedOut(ctx, timeout, what)
	}
	var fault *guestFault
	if errors.As(err, &fault) {
		return fmt.Errorf("%w: extension %s: %s: %s", ErrTrap, name, what, fault.msg)
	}
	var hf *hostFailure
	if errors.As(err, &hf) {
		return fmt.Errorf("wasm: extension %s: %s: %w", name, what, hf.err)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n") // the first line; wazero adds the wasm stack trace
	return inst.atLimit(fmt.Errorf("%w: extension %s: %s: %s", ErrTrap, name, what, msg))
}

func (inst *instance) timedOut(ctx context.Context, timeout time.Duration, what string) error {
	if ctx.Err() != nil {
		return timeoutError(ctx, inst.v.name, what)
	}
	return fmt.Errorf("%w: extension %s: %s ran past its %v timeout", ErrTimeout, inst.v.name, what, timeout)
}

func timeoutError(ctx context.Context, name, what string) error {
	return fmt.Errorf("%w: extension %s: %s: %w", ErrTimeout, name, what, context.Cause(ctx))
}

// nearLimit is how close to its maximum an instance's memory must be for a trap to count as the
// memory limit's doing: a Go guest's heap grows by 4 MiB at a time.
const nearLimit = 4*mib + pageSize

// atLimit adds ErrLimit to a trap when the instance's memory grew during the call to (or close to) its
// maximum: that is how a memory.grow bomb or a Go guest out of memory ends.
func (inst *instance) atLimit(err error) error {
	if inst.mod == nil || inst.mod.Memory() == nil {
		return err
	}
	mem := inst.mod.Memory()
	size, max := uint64(mem.Size()), inst.v.memoryMax()
	if size <= uint64(inst.memBefore) || size+nearLimit < max {
		return err
	}
	return fmt.Errorf("%w: memory at %d of %d bytes: %w", ErrLimit, size, max, err)
}

// boundedSleep is the guests' nanosleep (WASI poll_oneoff on a clock): real time, but at most 10 ms
// per call, so that a sleeping guest returns to wasm code often enough to be stopped at its deadline.
func boundedSleep(ns int64) { time.Sleep(min(time.Duration(ns), 10*time.Millisecond)) }
