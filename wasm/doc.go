// Package wasm will run tenants' WebAssembly extensions in wazero: one runtime per node with an on-disk
// compilation cache, pools of ready instances, the guest ABI and host functions, and per-extension limits
// on memory, time and sizes (see the extensions issue). Today the directory stores extension records and
// their modules by content hash; nothing executes them yet.
package wasm
