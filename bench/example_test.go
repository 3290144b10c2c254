package bench_test

import (
	"errors"
	"os"
	"time"

	"postern.dev/postern/bench"
)

// A report is one markdown table: a row per figure, the baseline's value of the same figure beside it, and a
// row saying why for a scenario that failed.
func ExampleReport_WriteMarkdown() {
	r := bench.Report{Results: []bench.Result{
		{
			Scenario: bench.Scenario{Name: "raft-write/1-node", Baseline: "raw fsync group commit"},
			Figures: bench.Figures{
				{Name: "writes/s", Unit: bench.PerSecond, Value: 10375.4, Baseline: 106798, HasBaseline: true},
				{Name: "p50", Unit: bench.Nanoseconds, Value: float64(5750 * time.Microsecond), Baseline: float64(441 * time.Microsecond), HasBaseline: true},
				{Name: "load", Unit: bench.Nanoseconds, Value: float64(66700 * time.Millisecond)},
			},
		},
		{Scenario: bench.Scenario{Name: "read/user-by-email"}, Err: errors.New("loading users: disk full")},
	}}
	r.WriteMarkdown(os.Stdout)
	// Output:
	// | scenario | figure | value | baseline | baseline value | ratio |
	// |---|---|--:|---|--:|--:|
	// | raft-write/1-node | writes/s | 10,375/s | raw fsync group commit | 106,798/s | 0.0971× |
	// | raft-write/1-node | p50 | 5.75 ms | raw fsync group commit | 441 µs | 13.0× |
	// | raft-write/1-node | load | 66.7 s | — | — | — |
	// | read/user-by-email | error | loading users: disk full | — | — | — |
}
