//go:build wasip1

package sdk

import "unsafe"

// The guest's side of the ABI (docs/wasm-abi.md). An instance runs one call at a time, so the two
// buffers below need no locking. They also keep the memory the host reads and writes reachable for
// Go's (non-moving) garbage collector.
var (
	// in is the request buffer handed out by postern_alloc and filled by the host.
	in []byte
	// out is the last response, kept alive until the next call.
	out []byte
)

// alloc returns a buffer of size bytes for the host to write the request into. The buffer is reused
// from call to call.
//
//go:wasmexport postern_alloc
func alloc(size uint32) unsafe.Pointer {
	if cap(in) < int(size) || cap(in) == 0 {
		in = make([]byte, max(size, 512))
	}
	in = in[:size]
	return unsafe.Pointer(unsafe.SliceData(in[:cap(in)]))
}

// handle runs the extension on the size bytes at ptr and returns where its response is:
// pointer << 32 | length.
//
//go:wasmexport postern_handle
func handle(ptr unsafe.Pointer, size uint32) uint64 {
	req := make([]byte, size)
	copy(req, unsafe.Slice((*byte)(ptr), size))
	out = Serve(req)
	if len(out) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))<<32 | uint64(len(out))
}

//go:wasmimport postern log
func posternLog(level int32, msg string)

//go:wasmimport postern config_get
func posternConfigGet(key string) int64

//go:wasmimport postern secret_get
func posternSecretGet(name string) int64

//go:wasmimport postern http_fetch
func posternFetch(req unsafe.Pointer, size uint32) int64

//go:wasmimport postern now_unix_ms
func posternNow() int64

//go:wasmimport postern random
func posternRandom(buf unsafe.Pointer, size uint32)

//go:wasmimport postern result_read
func posternResultRead(buf unsafe.Pointer, size uint32) uint32

func hostLog(level Level, msg string) { posternLog(int32(level), msg) }

func hostConfigGet(key string) ([]byte, bool) {
	n := posternConfigGet(key)
	if n < 0 {
		return nil, false
	}
	return readResult(n), true
}

func hostSecretGet(name string) ([]byte, bool) {
	n := posternSecretGet(name)
	if n < 0 {
		return nil, false
	}
	return readResult(n), true
}

func hostFetch(req []byte) ([]byte, error) {
	n := posternFetch(unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)))
	return readResult(n), nil
}

func hostNow() int64 { return posternNow() }

func hostRandom(b []byte) {
	for len(b) > 0 {
		n := min(len(b), 64<<10)
		posternRandom(unsafe.Pointer(unsafe.SliceData(b)), uint32(n))
		b = b[n:]
	}
}

// readResult copies the host's pending result of n bytes (from config_get, secret_get or http_fetch).
func readResult(n int64) []byte {
	if n <= 0 {
		return []byte{}
	}
	b := make([]byte, n)
	got := posternResultRead(unsafe.Pointer(unsafe.SliceData(b)), uint32(n))
	return b[:got]
}
