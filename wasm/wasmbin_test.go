package wasm

import "encoding/binary"

// A tiny WebAssembly binary assembler, for hostile and minimal test modules written by hand (wazero
// has no text-format parser). See https://webassembly.github.io/spec/core/binary/.

const (
	tI32 byte = 0x7f
	tI64 byte = 0x7e
)

type wfunc struct {
	typ    uint32
	locals []byte
	body   []byte
}

type wmod struct {
	types   [][]byte // encoded function types
	imports [][]byte // encoded imports (functions or a memory)
	nfimp   uint32   // imported functions
	funcs   []wfunc
	memory  []byte // encoded limits, nil for none
	exports [][]byte
	data    [][]byte
}

func (m *wmod) typ(params, results []byte) uint32 {
	enc := append([]byte{0x60}, vec(params)...)
	enc = append(enc, vec(results)...)
	for i, t := range m.types {
		if string(t) == string(enc) {
			return uint32(i)
		}
	}
	m.types = append(m.types, enc)
	return uint32(len(m.types) - 1)
}

// importFunc adds a function import; call it before fn.
func (m *wmod) importFunc(mod, name string, params, results []byte) uint32 {
	t := m.typ(params, results)
	enc := append(str(mod), str(name)...)
	enc = append(enc, 0x00)
	enc = append(enc, uleb(uint64(t))...)
	m.imports = append(m.imports, enc)
	m.nfimp++
	return m.nfimp - 1
}

func (m *wmod) importMemory(mod, name string, min uint32) {
	enc := append(str(mod), str(name)...)
	enc = append(enc, 0x02, 0x00)
	enc = append(enc, uleb(uint64(min))...)
	m.imports = append(m.imports, enc)
}

// fn adds a function and returns its index.
func (m *wmod) fn(params, results, locals []byte, body ...[]byte) uint32 {
	var b []byte
	for _, part := range body {
		b = append(b, part...)
	}
	m.funcs = append(m.funcs, wfunc{typ: m.typ(params, results), locals: locals, body: b})
	return m.nfimp + uint32(len(m.funcs)) - 1
}

// mem defines the module's memory; max < 0 declares no maximum.
func (m *wmod) mem(min uint32, max int64) {
	if max < 0 {
		m.memory = append([]byte{0x00}, uleb(uint64(min))...)
		return
	}
	m.memory = append(append([]byte{0x01}, uleb(uint64(min))...), uleb(uint64(max))...)
}

func (m *wmod) exportFunc(name string, idx uint32) {
	m.exports = append(m.exports, append(append(str(name), 0x00), uleb(uint64(idx))...))
}

func (m *wmod) exportMemory(name string) {
	m.exports = append(m.exports, append(str(name), 0x02, 0x00))
}

func (m *wmod) dataAt(offset int32, b []byte) {
	enc := append([]byte{0x00}, i32c(offset)...)
	enc = append(enc, 0x0b)
	enc = append(enc, uleb(uint64(len(b)))...)
	m.data = append(m.data, append(enc, b...))
}

func (m *wmod) bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	section := func(id byte, items [][]byte) {
		if len(items) == 0 {
			return
		}
		body := uleb(uint64(len(items)))
		for _, it := range items {
			body = append(body, it...)
		}
		out = append(out, id)
		out = append(out, uleb(uint64(len(body)))...)
		out = append(out, body...)
	}
	section(1, m.types)
	section(2, m.imports)
	var fidx, code [][]byte
	for _, f := range m.funcs {
		fidx = append(fidx, uleb(uint64(f.typ)))
		var b []byte
		b = append(b, uleb(uint64(len(f.locals)))...)
		for _, l := range f.locals {
			b = append(b, 0x01, l)
		}
		b = append(b, f.body...)
		b = append(b, 0x0b)
		code = append(code, append(uleb(uint64(len(b))), b...))
	}
	section(3, fidx)
	if m.memory != nil {
		section(5, [][]byte{m.memory})
	}
	section(7, m.exports)
	section(10, code)
	section(11, m.data)
	return out
}

func uleb(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func vec(b []byte) []byte { return append(uleb(uint64(len(b))), b...) }
func str(s string) []byte { return vec([]byte(s)) }

// Instructions.
func i32c(v int32) []byte      { return append([]byte{0x41}, sleb(int64(v))...) }
func i64c(v int64) []byte      { return append([]byte{0x42}, sleb(v)...) }
func localGet(i uint32) []byte { return append([]byte{0x20}, uleb(uint64(i))...) }
func call(f uint32) []byte     { return append([]byte{0x10}, uleb(uint64(f))...) }
func brIf(l uint32) []byte     { return append([]byte{0x0d}, uleb(uint64(l))...) }
func br(l uint32) []byte       { return append([]byte{0x0c}, uleb(uint64(l))...) }

var (
	opLoop        = []byte{0x03, 0x40}
	opEnd         = []byte{0x0b}
	opUnreachable = []byte{0x00}
	opDrop        = []byte{0x1a}
	opMemGrow     = []byte{0x40, 0x00}
	opI32Ne       = []byte{0x47}
	opI64ExtendU  = []byte{0xad}
	opI64Shl      = []byte{0x86}
	opI64Or       = []byte{0x84}
)

// abiModule is a minimal module of the ABI: one page of memory (no maximum unless max >= 0), an alloc
// that always answers 1024, and a handle with the given body. Returns the module to add to.
func abiModule(memMin uint32, memMax int64, handle ...[]byte) *wmod {
	m := &wmod{}
	m.mem(memMin, memMax)
	m.exportMemory("memory")
	alloc := m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(1024))
	m.exportFunc("postern_alloc", alloc)
	h := m.fn([]byte{tI32, tI32}, []byte{tI64}, nil, handle...)
	m.exportFunc("postern_handle", h)
	return m
}

// answer returns handle code that answers the bytes at offset 0 (put there with dataAt).
func answer(n int) []byte { return i64c(int64(n)) }

// constModule answers s to every call.
func constModule(s string) []byte {
	m := abiModule(1, 1, answer(len(s)))
	m.dataAt(0, []byte(s))
	return m.bytes()
}

// echoModule answers each request with itself.
func echoModule() []byte {
	return abiModule(1, 1,
		localGet(0), opI64ExtendU, i64c(32), opI64Shl,
		localGet(1), opI64ExtendU, opI64Or,
	).bytes()
}
