// Package bench measures Postern and puts every figure beside an honest baseline taken in the same run, on
// the same machine, so that a number never stands alone.
//
// A [Scenario] is one measurement (raft write throughput, a point read of a user among a million, …); it
// returns [Figures], each a value with, where one makes sense, the value of the scenario's baseline for the
// same figure: raw fsync'd appends for a durable write, a Go map lookup for a read. The registry is the
// explicit slice built by [Scenarios]; nothing registers itself. [Run] runs a selection and [Report] prints
// one markdown table of all of it.
//
// The package exists apart from the code it measures because it drives that code from the outside, through
// the same constructors the binary uses (directory.Open, cluster.Start) or, for the edge, through the binary
// itself (`postern dev` as a child process, over loopback HTTP, its CPU time read from /proc; the auth
// proxy's upstream and its baseline are child processes too, of cmd/postern-bench-peer), and because
// later work keeps adding scenarios here: one table that every change can be checked against.
//
// # Notes
//
//   - Figures on a small, shared machine are noisy; compare ratios within one run rather than raw values
//     across runs.
//   - Latencies are measured around each operation with the monotonic clock, so they include the timer's own
//     cost (tens of nanoseconds): it matters for the map baseline only.
package bench
