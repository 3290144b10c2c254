package wasm

import "errors"

// The kinds of failure Invoke reports. Each error it returns wraps exactly one of these (ErrLimit may
// come together with ErrTrap, when a trap happened at the memory limit), with a message naming the
// extension; test with errors.Is. Any other error is an internal failure of the host.
//
// The extension's on_error policy is the caller's: this package only reports.
var (
	// ErrTrap: the guest trapped (unreachable, out-of-bounds access, stack overflow, a bad pointer
	// passed to a host function) or exited (a Go guest's panic). The instance is discarded.
	ErrTrap = errors.New("wasm: extension trapped")
	// ErrTimeout: the call ran past the extension's timeout or the caller's deadline, or the caller
	// gave up waiting for a free instance. A running instance is discarded.
	ErrTimeout = errors.New("wasm: extension timed out")
	// ErrLimit: a limit was reached: input, output or module size, or memory.
	ErrLimit = errors.New("wasm: extension limit reached")
	// ErrBadOutput: the guest's answer is not valid JSON, or lies outside its memory. The instance is
	// discarded.
	ErrBadOutput = errors.New("wasm: extension answered badly")
	// ErrBadModule: the module is not valid WebAssembly, lacks or mistypes a required export, imports
	// something the host does not provide, or fails to initialise. Reported when it is loaded, and
	// again for every call until the extension is replaced.
	ErrBadModule = errors.New("wasm: bad extension module")
	// ErrFailed: the guest reported a failure of its own (an empty answer: sdk.HandleErr returned an
	// error). The instance stays in the pool.
	ErrFailed = errors.New("wasm: extension failed")
	// ErrClosed: the Runtime is closed.
	ErrClosed = errors.New("wasm: runtime closed")
)
