// Package sdk is the Go side of Postern's extension ABI: an extension is a plain Go function over an
// event, compiled to a WASI reactor module.
//
//	package main
//
//	import "postern.dev/postern/wasm/sdk"
//
//	func main() {}
//
//	func init() {
//		sdk.Handle(func(req sdk.Request) sdk.Response {
//			return sdk.ProvideClaimsForToken(map[string]any{"tier": "gold"})
//		})
//	}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ext.wasm .
//
// The package exports postern_alloc and postern_handle to the host and wraps the host functions of the
// "postern" import module (Log, Fetch, Config, Secret, Now, Random). docs/wasm-abi.md describes the ABI for
// authors in other languages.
//
// The event and response types here are a small mirror of Microsoft Entra's custom authentication
// extension contract (type, source, data; data.actions with "@odata.type"); the full event structs live
// in Postern's flows package, so a handler that needs more decodes Request.Data itself.
//
// # Notes
//
//   - An instance runs one call at a time, so handlers need no locking of their own; package-level state
//     survives between calls of the same instance, but Postern runs several instances and discards any
//     instance whose call failed, so never rely on it.
//   - A panic in a handler ends the instance: the call fails with a trap, and the panic text (written
//     to stderr) reaches the extension's log, bounded.
//   - Outside GOOS=wasip1 (for unit tests on the host) the host functions report ErrNoHost.
package sdk
