package wasm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"postern.dev/postern/directory"
)

// hostModule is the import module of Postern's host functions. See docs/wasm-abi.md.
const hostModule = "postern"

// Host function limits that are part of the ABI.
const (
	maxKeyBytes    = 1 << 10  // config_get's key
	maxRandomBytes = 64 << 10 // one random call
)

// callKey carries a call's *callState in the context the guest runs under; wazero hands that context
// to host functions.
type callKey struct{}

// callState is what host functions know of the call they serve.
type callState struct {
	r   *Runtime
	ext directory.Extension
	log *slog.Logger // made on the first line

	logBytes int       // log bytes written in this call
	dropped  int       // log lines dropped over the budget
	lines    []LogLine // for Config.Audit, when it is set
	unkept   int       // lines over MaxAuditLines
	fetches  int
	result   []byte // the pending result of config_get, secret_get or http_fetch, read by result_read
}

func (r *Runtime) newCallState(ext directory.Extension) *callState {
	return &callState{r: r, ext: ext}
}

func stateOf(ctx context.Context) *callState {
	cs, _ := ctx.Value(callKey{}).(*callState)
	if cs == nil {
		panic(&guestFault{"host function called outside a call"})
	}
	return cs
}

// guestFault is a host function's refusal of a guest's bad arguments (a pointer outside its memory,
// too long a key): the call ends with ErrTrap.
type guestFault struct{ msg string }

func (f *guestFault) Error() string { return f.msg }

func fault(format string, args ...any) { panic(&guestFault{fmt.Sprintf(format, args...)}) }

// read returns a view of n guest bytes at ptr, or faults.
func read(m api.Module, fn string, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		fault("%s: %d bytes at %d lie outside the module's memory", fn, n, ptr)
	}
	return b
}

// logLine writes one guest log line, within the call's budget.
func (cs *callState) logLine(level slog.Level, msg []byte, source string) {
	cfg := &cs.r.cfg
	if cs.logBytes >= cfg.LogCallBytes {
		cs.dropped++
		return
	}
	if len(msg) > cfg.LogLineBytes {
		msg = cutRunes(msg, cfg.LogLineBytes)
	}
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	cs.logBytes += len(msg)
	if cs.log == nil {
		cs.log = cfg.Log.With("tenant", cs.ext.Tenant, "extension", cs.ext.ID)
	}
	line := string(msg)
	cs.log.Log(context.Background(), level, line, "source", source)
	if cfg.Audit != nil {
		cs.keep(level, line, source)
	}
}

// finish ends the call's log with the count of dropped lines, if any, and hands its lines to
// Config.Audit; err is the call's error.
func (cs *callState) finish(err error) {
	if cs.dropped > 0 {
		cs.r.cfg.Log.Warn("wasm: extension log lines dropped", "tenant", cs.ext.Tenant, "extension", cs.ext.ID,
			"dropped", cs.dropped, "budget_bytes", cs.r.cfg.LogCallBytes)
	}
	cs.audit(err)
}

// guestOutput takes a guest's stdout or stderr into its log.
type guestOutput struct {
	inst  *instance
	level slog.Level
}

func (o guestOutput) Write(p []byte) (int, error) {
	if cs := o.inst.cur; cs != nil {
		source := "stdout"
		if o.level >= slog.LevelWarn {
			source = "stderr"
		}
		cs.logLine(o.level, p, source)
	}
	return len(p), nil
}

func logLevel(l int32) slog.Level {
	switch {
	case l <= 0:
		return slog.LevelDebug
	case l == 1:
		return slog.LevelInfo
	case l == 2:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// instantiateHost defines the "postern" module's functions in rt.
func (r *Runtime) instantiateHost(ctx context.Context, rt wazero.Runtime) (api.Module, error) {
	b := rt.NewHostModuleBuilder(hostModule)
	def := func(name string, fn api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, results).Export(name)
	}
	none := []api.ValueType{}

	// log(level i32, ptr i32, len i32)
	def("log", func(ctx context.Context, m api.Module, stack []uint64) {
		cs := stateOf(ctx)
		n := min(uint32(stack[2]), uint32(r.cfg.LogLineBytes)+utf8.UTFMax)
		cs.logLine(logLevel(int32(stack[0])), read(m, "log", uint32(stack[1]), n), "log")
	}, []api.ValueType{i32, i32, i32}, none)

	// config_get(key_ptr i32, key_len i32) -> i64: the value's length, or -1
	def("config_get", func(ctx context.Context, m api.Module, stack []uint64) {
		cs := stateOf(ctx)
		n := uint32(stack[1])
		if n > maxKeyBytes {
			fault("config_get: key of %d bytes is over %d", n, maxKeyBytes)
		}
		v, ok := cs.ext.Config[string(read(m, "config_get", uint32(stack[0]), n))]
		if !ok {
			cs.result = nil
			stack[0] = api.EncodeI64(-1)
			return
		}
		cs.result = []byte(v)
		stack[0] = api.EncodeI64(int64(len(v)))
	}, []api.ValueType{i32, i32}, []api.ValueType{i64})

	// secret_get(name_ptr i32, name_len i32) -> i64: the value's length, or -1
	def("secret_get", r.secretGet, []api.ValueType{i32, i32}, []api.ValueType{i64})

	// http_fetch(req_ptr i32, req_len i32) -> i64: the response JSON's length
	def("http_fetch", func(ctx context.Context, m api.Module, stack []uint64) {
		cs := stateOf(ctx)
		n := uint32(stack[1])
		var out []byte
		if int64(n) > int64(r.cfg.Fetch.MaxRequestBytes) {
			out = fetchFailure("request of %d bytes is over the %d-byte limit", n, r.cfg.Fetch.MaxRequestBytes)
		} else {
			req := append([]byte(nil), read(m, "http_fetch", uint32(stack[0]), n)...)
			out = r.fetch(ctx, cs, req)
		}
		cs.result = out
		stack[0] = api.EncodeI64(int64(len(out)))
	}, []api.ValueType{i32, i32}, []api.ValueType{i64})

	// result_read(ptr i32, len i32) -> i32: bytes copied
	def("result_read", func(ctx context.Context, m api.Module, stack []uint64) {
		cs := stateOf(ctx)
		n := min(uint32(stack[1]), uint32(len(cs.result)))
		copy(read(m, "result_read", uint32(stack[0]), n), cs.result)
		stack[0] = api.EncodeU32(n)
	}, []api.ValueType{i32, i32}, []api.ValueType{i32})

	// now_unix_ms() -> i64
	def("now_unix_ms", func(ctx context.Context, m api.Module, stack []uint64) {
		stack[0] = api.EncodeI64(time.Now().UnixMilli())
	}, none, []api.ValueType{i64})

	// random(ptr i32, len i32)
	def("random", func(ctx context.Context, m api.Module, stack []uint64) {
		n := uint32(stack[1])
		if n > maxRandomBytes {
			fault("random: %d bytes is over %d per call", n, maxRandomBytes)
		}
		if _, err := rand.Read(read(m, "random", uint32(stack[0]), n)); err != nil {
			panic(fmt.Errorf("wasm: crypto/rand: %w", err)) // never happens: rand.Read does not fail
		}
	}, []api.ValueType{i32, i32}, none)

	return b.Instantiate(ctx)
}

// fetchFailure is the JSON http_fetch answers when it does not make the request or the request fails.
func fetchFailure(format string, args ...any) []byte {
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	return b
}

// cutRunes cuts b to at most n bytes, not inside a UTF-8 sequence.
func cutRunes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	b = b[:n]
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				b = b[:i]
			}
			break
		}
	}
	return b
}
