// Command echo is the smallest extension: it answers each request with the request itself. The
// benchmarks use it to measure what a call through the pool costs.
package main

import "postern.dev/postern/wasm/sdk"

func main() {}

func init() {
	sdk.HandleRaw(func(req []byte) []byte { return req })
}
