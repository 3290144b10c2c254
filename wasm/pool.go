package wasm

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"

	"postern.dev/postern/directory"
)

// A slot is one extension of one tenant: it bounds the extension's concurrent calls and points at its
// current module version.
//
// Swapping: when a call names another module (or memory limit) than the current version's, a new
// version becomes current at once and the old one is retired. Calls that already hold the old version
// finish on it; its instances are closed as they come back, and its compiled code once the last call
// has left. A call made with an older record (directory.Extension.Version) than one already seen runs
// as the newer record says, module and configuration: a replaced module never comes back.
type slot struct {
	sem chan struct{} // one token per running call: at most Config.MaxInstances

	mu     sync.Mutex
	cur    *version
	latest directory.Extension // the newest record seen (by Version)
	seen   bool
}

type slotKey struct{ tenant, id string }

func (s *slot) enter(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (s *slot) leave() { <-s.sem }

// record returns the extension record a call runs under: its own, or the newest seen when its own is
// older.
func (s *slot) record(ext directory.Extension) directory.Extension {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen && ext.Version < s.latest.Version {
		return s.latest
	}
	s.latest, s.seen = ext, true
	return ext
}

// version returns the version to run ext on, held (release it), once it is loaded.
func (s *slot) version(ctx context.Context, r *Runtime, ext directory.Extension, pages uint32) (*version, error) {
	key := versionKey{sha: ext.WasmSHA256, pages: pages}
	s.mu.Lock()
	v := s.cur
	var old *version
	if v == nil || v.key != key {
		nv := newVersion(r, ext, key)
		if !r.startLoad(func() { nv.load(ext) }) {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: extension %s", ErrClosed, extName(ext))
		}
		s.cur, old, v = nv, v, nv
		if old != nil && r.onSwap != nil {
			r.onSwap(old)
		}
	}
	v.hold()
	s.mu.Unlock()
	if old != nil {
		old.retire()
	}

	select {
	case <-v.ready:
	case <-ctx.Done():
		v.release()
		return nil, timeoutError(ctx, v.name, "waiting for the module to load")
	}
	if v.err != nil {
		err := v.err
		if !v.permanent {
			// Let the next call try again.
			s.mu.Lock()
			if s.cur == v {
				s.cur = nil
			}
			s.mu.Unlock()
			v.retire()
		}
		v.release()
		return nil, err
	}
	return v, nil
}

func (s *slot) retire() {
	s.mu.Lock()
	v := s.cur
	s.cur = nil
	s.mu.Unlock()
	if v != nil {
		v.retire()
	}
}

// versionKey is what makes a version: the module's content and the memory limit it was compiled
// under. The tenant and extension are the slot's.
type versionKey struct {
	sha   string
	pages uint32
}

// A version is one compiled module of one extension, with its pool of idle instances.
type version struct {
	r    *Runtime
	name string // tenant/extension@sha, for errors and logs
	key  versionKey

	ready chan struct{} // closed when loading ended; the fields below are then read-only
	err   error
	// permanent: err comes from the module's bytes, so retrying is pointless until it is replaced.
	permanent bool
	eng       *engine
	compiled  wazero.CompiledModule
	hasInit   bool
	hasFree   bool
	maxPages  uint32 // the instances' memory maximum: declared, or the limit

	mu      sync.Mutex
	idle    []*instance
	live    int // instances made and not yet closed, idle or in use
	refs    int // calls holding the version
	loaded  bool
	retired bool
	closed  bool
}

func newVersion(r *Runtime, ext directory.Extension, key versionKey) *version {
	sha := key.sha
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return &version{
		r:     r,
		name:  extName(ext) + "@" + sha,
		key:   key,
		ready: make(chan struct{}),
	}
}

func (v *version) hold() {
	v.mu.Lock()
	v.refs++
	v.mu.Unlock()
}

func (v *version) release() {
	v.mu.Lock()
	v.refs--
	done := v.doneLocked()
	v.mu.Unlock()
	if done {
		v.closeCompiled()
	}
}

// retire stops the version from taking new calls: idle instances close now, busy ones when their call
// ends, the compiled module when the last one has.
func (v *version) retire() {
	v.mu.Lock()
	v.retired = true
	idle := v.idle
	v.idle = nil
	v.live -= len(idle)
	done := v.doneLocked()
	v.mu.Unlock()
	for _, inst := range idle {
		inst.close()
	}
	if done {
		v.closeCompiled()
	}
}

// doneLocked reports, once, that the retired version has nothing left running.
func (v *version) doneLocked() bool {
	if v.retired && v.loaded && v.refs == 0 && v.live == 0 && !v.closed {
		v.closed = true
		return true
	}
	return false
}

func (v *version) closeCompiled() {
	if v.compiled != nil {
		_ = v.compiled.Close(context.Background())
	}
}

// get takes an idle instance, or starts one.
func (v *version) get(ctx context.Context, ext directory.Extension) (*instance, error) {
	v.mu.Lock()
	if n := len(v.idle); n > 0 {
		inst := v.idle[n-1]
		v.idle = v.idle[:n-1]
		v.mu.Unlock()
		return inst, nil
	}
	v.live++
	v.mu.Unlock()
	inst, err := v.newInstance(ctx, ext)
	if err != nil {
		v.mu.Lock()
		v.live--
		done := v.doneLocked()
		v.mu.Unlock()
		if done {
			v.closeCompiled()
		}
		return nil, err
	}
	return inst, nil
}

// put gives an instance back after a call: to the pool if the call left it healthy and the version is
// current, else to be closed.
func (v *version) put(inst *instance, healthy bool) {
	v.mu.Lock()
	keep := healthy && !v.retired
	if keep {
		v.idle = append(v.idle, inst)
	} else {
		v.live--
	}
	done := v.doneLocked()
	v.mu.Unlock()
	if !keep {
		inst.close()
	}
	if done {
		v.closeCompiled()
	}
}

// stats reports a version's instances, for tests.
func (v *version) stats() (live, idle int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.live, len(v.idle)
}

// memoryMax is the instances' memory maximum in bytes.
func (v *version) memoryMax() uint64 { return uint64(v.maxPages) * pageSize }
