// Package flows holds the journeys' decisions, apart from HTTP and HTML: what a sign-up form's input
// means and whether it is acceptable, given the tenant's flow configuration. The edge performs what
// follows (pages, mail, raft writes); the functions here are pure, so journeys test as tables.
//
// Today: sign-up attribute collection and validation, and tenant extensions (extension*.go): the
// Entra-compatible event requests, strict parsers of their answers into typed decisions, the [Runner]
// that calls a tenant's extensions for an event in order and applies each one's on_error, and the
// HTTP invoker for extensions kept as web services (the Wasm invoker is package wasm). Sign-in steps,
// one-time passcodes, MFA and password reset join as their issues arrive.
package flows
