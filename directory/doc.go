// Package directory is Postern's data model and the deterministic state machine that changes it.
//
// Every replica of the directory (voter or edge) holds the whole of it in a local Badger store, so that a
// hot-path read — a user by email, an app by client_id, a signing key — never leaves the machine. Every
// change is a [Command]: the proposer (an admin API handler, a sign-up) fills in the time, the ids and any
// sealed secrets, the cluster package replicates it with raft, and [Store.Apply] applies it on every
// replica. Apply reads neither the clock nor randomness, so the same log gives the same store everywhere;
// uniqueness (one email per tenant, one client_id per tenant) is decided inside Apply, which is what makes
// two edges racing on one address unable to both win.
//
// Keys are tenant-prefixed ("t/<tenant>/..."); secondary indexes (email → user, client_id → app) change in
// the same Badger transaction as the record they point to. Secrets at rest (signing keys, TOTP seeds,
// identity-provider client secrets) are sealed with a key-encryption key ([KEK]) that is never stored here,
// and they are sealed before they are proposed, so neither the raft log nor Badger ever sees plaintext.
//
// The package knows nothing of HTTP, raft or WebAssembly.
package directory
