// Package wasm runs tenants' WebAssembly extensions in wazero, in process and sandboxed.
//
// One Runtime per node: a wazero compilation cache (on disk, so a module is compiled once per node
// and reloaded in milliseconds after a restart) shared by one wazero runtime per distinct memory
// limit. An extension's module is looked up by its SHA-256 (the directory stores modules by content
// hash), compiled on first use, and kept as a version of (tenant, extension, SHA-256, memory limit)
// with a pool of ready instances: instantiating a Go guest costs milliseconds and megabytes, so calls
// never do it themselves. A new module for an extension becomes a new version at once; calls already
// running on the old one finish on it.
//
// Each call runs under limits: its time (the extension's timeout, enforced by wazero closing the
// instance when the context is done), its instance's memory (pages, including for modules that declare
// no maximum), its input and output size, the module's size, and the number of instances of one
// extension. A trap, timeout or malformed answer ends that call only and discards that instance;
// Invoke reports which (ErrTrap, ErrTimeout, ErrLimit, ErrBadOutput, ErrBadModule, ErrFailed) and the
// caller applies the extension's on_error policy.
//
// A module sees no filesystem, environment, arguments or sockets. The host gives it, in the "postern"
// import module, a bounded log, HTTP fetches to the hosts its extension lists, the time, crypto/rand
// randomness, its configuration and its secrets (opened by the node's Config.Secret: this package never
// holds the key-encryption key). docs/wasm-abi.md is the guest ABI; package sdk is its Go side, and
// examples/ holds example extensions built with it.
//
// # Notes
//
//   - wazero grows a guest's call stack up to about 100 MB before it reports a stack overflow; that
//     memory is the host's, outside the extension's memory limit, for the time of the failing call.
//     MaxInstances bounds how many such calls one extension can have at once.
//   - The on_error policy, the event contracts and the HTTP variant of extensions are the flows
//     package's.
package wasm
