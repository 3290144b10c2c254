package flows

import (
	"context"

	"postern.dev/postern/directory"
)

// Invoker calls one extension with one event's request JSON and returns its answer JSON. The wasm
// runtime implements it for modules (wasm/, which cannot import flows: hence a signature of directory
// types only), [HTTPInvoker] for HTTP endpoints, and [InvokerFunc] for Go functions (tests, benchmarks).
//
// # Contract
//
//   - Invoke is called concurrently, from many journeys at once.
//   - Invoke bounds its own time (ext.Timeout, with its own default) and honours ctx: when ctx is done it
//     returns promptly with an error.
//   - Any error (a trap, a timeout, a refused connection, an oversized answer) ends that call only; the
//     runner applies the extension's on_error policy. The error text goes to logs, never to a page.
//   - The answer is returned as the extension wrote it; the runner checks it against the event's
//     contract. The invoker may bound its size (and should: [MaxResponseSize] is what the runner accepts).
//   - input is not modified, and is not retained after Invoke returns.
type Invoker interface {
	Invoke(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error)
}

// InvokerFunc adapts a Go function to [Invoker]: a native extension, or a fake in tests.
type InvokerFunc func(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error)

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error) {
	return f(ctx, ext, input)
}

// Interface guards.
var (
	_ Invoker = InvokerFunc(nil)
	_ Invoker = (*HTTPInvoker)(nil)
)
