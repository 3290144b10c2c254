package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"postern.dev/postern/directory"
)

// The exports a module must (or may) have. See docs/wasm-abi.md.
const (
	exportAlloc  = "postern_alloc"
	exportHandle = "postern_handle"
	exportFree   = "postern_free"
	exportInit   = "_initialize"
	exportMemory = "memory"
)

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type exportSpec struct {
	name            string
	params, results []api.ValueType
	required        bool
}

var wantExports = []exportSpec{
	{name: exportAlloc, params: []api.ValueType{i32}, results: []api.ValueType{i32}, required: true},
	{name: exportHandle, params: []api.ValueType{i32, i32}, results: []api.ValueType{i64}, required: true},
	{name: exportFree, params: []api.ValueType{i32, i32}},
	{name: exportInit},
}

// load fetches, checks and compiles the version's module, then starts its first instance. It runs in
// the background (callers wait on v.ready), under the runtime's context rather than a caller's: other
// callers may be waiting for the same load.
func (v *version) load(ext directory.Extension) {
	err := v.compile(ext)
	if err == nil {
		var inst *instance
		inst, err = v.newInstance(v.r.ctx, ext)
		if err != nil {
			if v.r.ctx.Err() == nil {
				v.permanent = true
				err = fmt.Errorf("%w: extension %s: starting an instance: %w", ErrBadModule, v.name, err)
			}
			v.compiled.Close(context.Background())
			v.compiled = nil
		} else {
			v.mu.Lock()
			if v.retired {
				inst.close()
			} else {
				v.idle = append(v.idle, inst)
				v.live++
			}
			v.mu.Unlock()
		}
	}
	if err != nil {
		v.err = err
		v.r.cfg.Log.Warn("wasm: extension module not loaded", "tenant", ext.Tenant, "extension", ext.ID, "error", err)
	}
	v.mu.Lock()
	v.loaded = true
	done := v.doneLocked()
	v.mu.Unlock()
	close(v.ready)
	if done {
		v.closeCompiled()
	}
}

func (v *version) compile(ext directory.Extension) error {
	r := v.r
	b, err := r.cfg.Module(ext.Tenant, v.key.sha)
	if err != nil {
		return fmt.Errorf("wasm: extension %s: reading module %s: %w", v.name, v.key.sha, err)
	}
	bad := func(kind error, format string, args ...any) error {
		v.permanent = true
		return fmt.Errorf("%w: extension %s: %s", kind, v.name, fmt.Sprintf(format, args...))
	}
	if int64(len(b)) > r.cfg.MaxModuleSize {
		return bad(ErrLimit, "module of %d bytes is over the %d-byte limit", len(b), r.cfg.MaxModuleSize)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != strings.ToLower(v.key.sha) {
		return bad(ErrBadModule, "module bytes do not match their SHA-256 %s", v.key.sha)
	}
	mem, err := scanMemory(b)
	if err != nil {
		return bad(ErrBadModule, "%v", err)
	}
	switch {
	case mem.imported:
		return bad(ErrBadModule, "module imports its memory: it must define and export its own")
	case mem.min > v.key.pages:
		return bad(ErrLimit, "module needs %d bytes of memory at start, over its %d-byte limit",
			uint64(mem.min)*pageSize, uint64(v.key.pages)*pageSize)
	case mem.hasMax && mem.max > v.key.pages:
		return bad(ErrLimit, "module declares up to %d bytes of memory, over its %d-byte limit",
			uint64(mem.max)*pageSize, uint64(v.key.pages)*pageSize)
	}
	v.maxPages = v.key.pages
	if mem.hasMax {
		v.maxPages = mem.max
	}

	eng, err := r.engine(v.key.pages)
	if err != nil {
		return err
	}
	cm, err := eng.rt.CompileModule(r.ctx, b)
	if err != nil {
		if r.ctx.Err() != nil {
			return ErrClosed
		}
		return bad(ErrBadModule, "compiling: %v", err)
	}
	hasInit, hasFree, err := checkModule(cm, eng)
	if err != nil {
		_ = cm.Close(context.Background())
		return bad(ErrBadModule, "%v", err)
	}
	v.eng, v.compiled, v.hasInit, v.hasFree = eng, cm, hasInit, hasFree
	return nil
}

// checkModule checks a compiled module against the ABI: its exports, and that every import is a host
// function with the host's signature.
func checkModule(cm wazero.CompiledModule, eng *engine) (hasInit, hasFree bool, err error) {
	exports := cm.ExportedFunctions()
	for _, want := range wantExports {
		d, ok := exports[want.name]
		if !ok {
			if !want.required {
				continue
			}
			if _, cmd := exports["_start"]; cmd {
				return false, false, fmt.Errorf("module is a WASI command (it exports _start, not %s): build it as a reactor (Go: -buildmode=c-shared)", want.name)
			}
			return false, false, fmt.Errorf("module does not export %s%s", want.name, signature(want.params, want.results))
		}
		if !sameTypes(d.ParamTypes(), want.params) || !sameTypes(d.ResultTypes(), want.results) {
			return false, false, fmt.Errorf("module exports %s%s, want %s%s", want.name,
				signature(d.ParamTypes(), d.ResultTypes()), want.name, signature(want.params, want.results))
		}
		switch want.name {
		case exportInit:
			hasInit = true
		case exportFree:
			hasFree = true
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return false, false, errors.New("module imports its memory: it must define and export its own")
	}
	if _, ok := cm.ExportedMemories()[exportMemory]; !ok {
		return false, false, fmt.Errorf("module does not export its memory as %q", exportMemory)
	}
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		defs, ok := eng.imports[mod]
		if !ok {
			return false, false, fmt.Errorf("module imports %s.%s: the host provides only %s and %s", mod, name, hostModule, "wasi_snapshot_preview1")
		}
		h, ok := defs[name]
		if !ok {
			return false, false, fmt.Errorf("module imports %s.%s, which the host does not provide", mod, name)
		}
		if !sameTypes(d.ParamTypes(), h.ParamTypes()) || !sameTypes(d.ResultTypes(), h.ResultTypes()) {
			return false, false, fmt.Errorf("module imports %s.%s as %s, the host's is %s", mod, name,
				signature(d.ParamTypes(), d.ResultTypes()), signature(h.ParamTypes(), h.ResultTypes()))
		}
	}
	return hasInit, hasFree, nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	sig := "(" + names(params) + ")"
	if len(results) > 0 {
		sig += " -> " + names(results)
	}
	return sig
}

// memoryInfo is what a module's binary says about its memory.
type memoryInfo struct {
	imported bool
	min, max uint32 // in pages
	hasMax   bool
}

// scanMemory reads the memory limits from a module's import and memory sections, without decoding
// the rest (wazero does that). It only reports errors in the parts it reads.
//
// See https://webassembly.github.io/spec/core/binary/modules.html#sections
func scanMemory(b []byte) (memoryInfo, error) {
	var info memoryInfo
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return info, errors.New("not a WebAssembly 1.0 binary module")
	}
	p := &reader{b: b[8:]}
	for len(p.b) > 0 {
		id := p.byte()
		size := p.u32()
		if p.err != nil || uint64(size) > uint64(len(p.b)) {
			return info, errors.New("malformed section header")
		}
		sec := &reader{b: p.b[:size]}
		p.b = p.b[size:]
		switch id {
		case 2: // imports
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				sec.name()
				sec.name()
				switch sec.byte() {
				case 0x00: // function
					sec.u32()
				case 0x01: // table
					sec.byte()
					sec.limits()
				case 0x02: // memory
					info.imported = true
					sec.limits()
				case 0x03: // global
					sec.byte()
					sec.byte()
				default:
					return info, errors.New("malformed import section")
				}
			}
		case 5: // memories
			n := sec.u32()
			if n > 1 {
				return info, errors.New("module defines more than one memory")
			}
			if n == 1 {
				flags, lo, hi := sec.limits()
				if flags&0x04 != 0 {
					return info, errors.New("64-bit memories are not supported")
				}
				info.min, info.max, info.hasMax = lo, hi, flags&0x01 != 0
			}
		}
		if sec.err != nil {
			return info, fmt.Errorf("malformed section %d", id)
		}
	}
	return info, nil
}

// reader reads the binary format's LEB128 integers and names; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.err = errors.New("unexpected end")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("integer too long")
	return 0
}

func (r *reader) name() {
	n := r.u32()
	if uint64(n) > uint64(len(r.b)) {
		r.err = errors.New("name too long")
		return
	}
	r.b = r.b[n:]
}

func (r *reader) limits() (flags byte, lo, hi uint32) {
	flags = r.byte()
	lo = r.u32()
	if flags&0x01 != 0 {
		hi = r.u32()
	}
	return flags, lo, hi
}
