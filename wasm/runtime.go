package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

	"postern.dev/postern/directory"
)

// Runtime runs tenants' extension modules on this node: one wazero compilation cache shared by one
// wazero runtime per distinct memory limit, compiled modules versioned by (tenant, extension,
// SHA-256, memory limit), and a pool of ready instances per version.
//
// All methods are safe for concurrent use.
type Runtime struct {
	cfg    Config
	ctx    context.Context // lives until Close: loading modules and warming instances run under it
	cancel context.CancelFunc
	cache  wazero.CompilationCache
	client *http.Client
	loads  sync.WaitGroup

	mu      sync.RWMutex
	closed  bool
	engines map[uint32]*engine // by memory limit in pages
	slots   map[slotKey]*slot

	onSwap func(old *version) // test hook: a version is being replaced
}

// New makes a Runtime. Nothing is compiled until an extension is first prepared or invoked.
func New(cfg Config) (*Runtime, error) {
	if cfg.Module == nil {
		return nil, errors.New("wasm: Config.Module is required")
	}
	cfg = cfg.withDefaults()
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: opening the compilation cache: %w", err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		cache:   cache,
		client:  newFetchClient(cfg.Fetch),
		engines: map[uint32]*engine{},
		slots:   map[slotKey]*slot{},
	}, nil
}

// Close ends every instance, including those of calls still running (which then fail), and releases
// compiled code. The on-disk cache stays for the next start.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	slots, engines := r.slots, r.engines
	r.slots, r.engines = nil, nil
	r.mu.Unlock()

	r.cancel()
	r.loads.Wait()
	for _, s := range slots {
		s.retire()
	}
	var errs []error
	for _, e := range engines {
		errs = append(errs, e.rt.Close(ctx))
	}
	errs = append(errs, r.cache.Close(ctx))
	return errors.Join(errs...)
}

// Invoke runs ext's module for one event: input is the event's request JSON, the result the module's
// response JSON (checked to be valid JSON, not checked against the event's contract).
//
// The module is loaded (by ext.WasmSHA256, through Config.Module) and compiled on first use, and
// again when ext names another module or memory limit; calls already running on the previous
// version finish on it. A record older (by Version) than one already seen is replaced by the newer. A call waits for a free instance of the extension until ctx is done, then
// runs for at most ext.Timeout (Config.DefaultTimeout when zero).
//
// Errors wrap ErrTrap, ErrTimeout, ErrLimit, ErrBadOutput, ErrBadModule, ErrFailed or ErrClosed, and
// name the extension; anything else is an internal failure. A failed call never affects another.
func (r *Runtime) Invoke(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error) {
	if maxIn := capTo(ext.MaxInput, r.cfg.MaxInput); len(input) > maxIn {
		return nil, fmt.Errorf("%w: extension %s: input of %d bytes is over the %d-byte limit",
			ErrLimit, extName(ext), len(input), maxIn)
	}
	s, err := r.slot(ext)
	if err != nil {
		return nil, err
	}
	ext = s.record(ext)
	lim, err := r.limits(ext)
	if err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("%w: extension %s: waiting for a free instance: %w", ErrTimeout, extName(ext), err)
	}
	defer s.leave()
	v, err := s.version(ctx, r, ext, lim.pages)
	if err != nil {
		return nil, err
	}
	defer v.release()
	inst, err := v.get(ctx, ext)
	if err != nil {
		return nil, err
	}
	out, err := inst.call(ctx, ext, input, lim.timeout)
	v.put(inst, err == nil || errors.Is(err, ErrFailed))
	return out, err
}

// Prepare loads and compiles ext's module and starts one instance of it, so that the first call does
// not wait for them. It reports the module's problems (ErrBadModule, ErrLimit) without running it:
// call it when an extension is uploaded or replaced.
func (r *Runtime) Prepare(ctx context.Context, ext directory.Extension) error {
	s, err := r.slot(ext)
	if err != nil {
		return err
	}
	ext = s.record(ext)
	lim, err := r.limits(ext)
	if err != nil {
		return err
	}
	v, err := s.version(ctx, r, ext, lim.pages)
	if err != nil {
		return err
	}
	v.release()
	return nil
}

// Drop forgets a tenant's extension (deleted from the directory): its idle instances are closed now,
// those of calls still running when they finish.
func (r *Runtime) Drop(tenant, id string) {
	r.mu.Lock()
	s := r.slots[slotKey{tenant, id}]
	delete(r.slots, slotKey{tenant, id})
	r.mu.Unlock()
	if s != nil {
		s.retire()
	}
}

type limits struct {
	pages   uint32
	timeout time.Duration
}

func (r *Runtime) limits(ext directory.Extension) (limits, error) {
	if ext.WasmSHA256 == "" {
		return limits{}, fmt.Errorf("%w: extension %s has no wasm module", ErrBadModule, extName(ext))
	}
	mem := ext.MemoryLimit
	if mem <= 0 {
		mem = r.cfg.DefaultMemoryLimit
	}
	if mem > r.cfg.MaxMemoryLimit {
		return limits{}, fmt.Errorf("%w: extension %s asks for %d bytes of memory, over this node's %d",
			ErrLimit, extName(ext), mem, r.cfg.MaxMemoryLimit)
	}
	timeout := time.Duration(ext.Timeout)
	if timeout <= 0 {
		timeout = r.cfg.DefaultTimeout
	}
	timeout = min(timeout, r.cfg.MaxTimeout)
	return limits{pages: uint32((mem + pageSize - 1) / pageSize), timeout: timeout}, nil
}

func (r *Runtime) slot(ext directory.Extension) (*slot, error) {
	key := slotKey{ext.Tenant, ext.ID}
	r.mu.RLock()
	s, closed := r.slots[key], r.closed
	r.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("%w: extension %s", ErrClosed, extName(ext))
	}
	if s != nil {
		return s, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w: extension %s", ErrClosed, extName(ext))
	}
	if s = r.slots[key]; s == nil {
		s = &slot{sem: make(chan struct{}, capTo(int64(ext.MaxInstances), r.cfg.MaxInstances))}
		r.slots[key] = s
	}
	return s, nil
}

// extName names an extension in errors and logs.
func extName(ext directory.Extension) string { return ext.Tenant + "/" + ext.ID }

// startLoad runs f in the background unless the runtime is closed; Close waits for it.
func (r *Runtime) startLoad(f func()) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return false
	}
	r.loads.Add(1)
	go func() {
		defer r.loads.Done()
		f()
	}()
	return true
}

// Precompile compiles a module into the compilation cache without running it: with Config.CacheDir
// set, a node can be warmed before it takes traffic (and tests can compile outside the race detector).
// It checks the module against the ABI too, reporting ErrBadModule.
func (r *Runtime) Precompile(ctx context.Context, wasm []byte) error {
	pages := uint32((r.cfg.MaxMemoryLimit + pageSize - 1) / pageSize)
	eng, err := r.engine(pages)
	if err != nil {
		return err
	}
	cm, err := eng.rt.CompileModule(ctx, wasm)
	if err != nil {
		return fmt.Errorf("%w: compiling: %v", ErrBadModule, err)
	}
	defer cm.Close(ctx)
	if _, _, err := checkModule(cm, eng); err != nil {
		return fmt.Errorf("%w: %v", ErrBadModule, err)
	}
	return nil
}

// capTo is an extension's own bound where it sets one, never above the node's.
func capTo(own int64, node int) int {
	if own <= 0 || own > int64(node) {
		return node
	}
	return int(own)
}
