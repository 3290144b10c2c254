package bench

import (
	"bytes"
	"context"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScenarios runs every registered scenario for real, in a tiny configuration, and checks that its figures
// are sane. It tests the harness, not Postern's speed.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real raft nodes (one, then three over mutual TLS) with fsync'd logs, loads a Badger store and runs `postern dev` processes: tens of seconds")
	}
	cfg := Config{Duration: 300 * time.Millisecond, Users: 1000, Writers: 16, Dir: t.TempDir()}
	scenarios := Scenarios(cfg)
	seen := map[string]bool{}
	var report Report
	for _, s := range scenarios {
		if seen[s.Name] {
			t.Errorf("two scenarios are named %q", s.Name)
		}
		seen[s.Name] = true
		if s.Baseline == "" {
			t.Errorf("%s: no baseline named", s.Name)
		}
		t.Run(s.Name, func(t *testing.T) {
			start := time.Now()
			figs, err := s.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ran in %v", time.Since(start).Round(time.Millisecond))
			checkFigures(t, figs)
			report.Results = append(report.Results, Result{Scenario: s, Figures: figs})
		})
	}
	var b bytes.Buffer
	if err := report.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
	rows := 0
	for _, res := range report.Results {
		rows += len(res.Figures)
	}
	if got := strings.Count(b.String(), "\n"); got != rows+2 {
		t.Errorf("the table has %d lines, want %d (header, rule, one per figure)", got, rows+2)
	}
}

// checkFigures: every value and baseline is a positive number, names are unique, and each p50 is at most the
// p99 of the same phase.
func checkFigures(t *testing.T, figs Figures) {
	t.Helper()
	if len(figs) == 0 {
		t.Fatal("no figures")
	}
	byName := map[string]Figure{}
	for _, f := range figs {
		if _, dup := byName[f.Name]; dup {
			t.Errorf("figure %q appears twice", f.Name)
		}
		byName[f.Name] = f
		if strings.Contains(f.Name, " added ") { // a difference of two latencies: noise may make it negative
			if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) || f.HasBaseline {
				t.Errorf("%s = %v (baseline: %v), want a finite number and no baseline", f.Name, f.Value, f.HasBaseline)
			}
			continue
		}
		if !(f.Value > 0) || math.IsInf(f.Value, 0) {
			t.Errorf("%s = %v, want a positive number", f.Name, f.Value)
		}
		if f.HasBaseline && (!(f.Baseline > 0) || math.IsInf(f.Baseline, 0)) {
			t.Errorf("%s: baseline = %v, want a positive number", f.Name, f.Baseline)
		}
	}
	pairs := 0
	for name, p50 := range byName {
		if !strings.HasSuffix(name, "p50") {
			continue
		}
		p99, ok := byName[strings.TrimSuffix(name, "p50")+"p99"]
		if !ok {
			t.Errorf("%s has no p99", name)
			continue
		}
		pairs++
		if p50.Value > p99.Value {
			t.Errorf("%s = %v > p99 = %v", name, time.Duration(p50.Value), time.Duration(p99.Value))
		}
		if p50.Baseline > p99.Baseline {
			t.Errorf("%s: baseline %v > baseline p99 %v", name, time.Duration(p50.Baseline), time.Duration(p99.Baseline))
		}
	}
	if pairs == 0 {
		t.Error("no latency figures (p50 and p99)")
	}
}

func TestSelect(t *testing.T) {
	all := Scenarios(DefaultConfig())
	if got := Select(all, nil); len(got) != len(all) {
		t.Errorf("Select(nil) kept %d of %d", len(got), len(all))
	}
	got := Select(all, regexp.MustCompile(`^raft-write/`))
	if len(got) != 2 {
		t.Fatalf("Select(^raft-write/) kept %d, want 2", len(got))
	}
	for _, s := range got {
		if !strings.HasPrefix(s.Name, "raft-write/") {
			t.Errorf("Select(^raft-write/) kept %s", s.Name)
		}
	}
	if got := Select(all, regexp.MustCompile(`^oidc/`)); len(got) != 3 {
		t.Errorf("Select(^oidc/) kept %d, want 3", len(got))
	}
	if got := Select(all, regexp.MustCompile(`^proxy/`)); len(got) != 1 {
		t.Errorf("Select(^proxy/) kept %d, want 1", len(got))
	}
	if got := Select(all, regexp.MustCompile(`no such`)); len(got) != 0 {
		t.Errorf("Select(no such) kept %d", len(got))
	}
}

// The edge scenarios' figures per core rest on this: the CPU time of a process, from /proc, grows by about
// what a busy goroutine spends.
func TestProcessCPUTime(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux's /proc")
	}
	before, err := processCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	spin := 200 * time.Millisecond
	x := 0
	for start := time.Now(); time.Since(start) < spin; {
		x++
	}
	after, err := processCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// At least most of the spin (a loaded machine may take the CPU away for part of it), and not wildly
	// more: the unit is right.
	if used := after - before; used < spin/4 || used > 20*spin {
		t.Errorf("spinning for %v used %v of CPU time (%d iterations)", spin, used, x)
	}
	if _, err := processCPUTime(-1); err == nil {
		t.Error("the CPU time of pid -1 read without an error")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Errorf("empty histogram: p50 = %v, want 0", h.quantile(0.5))
	}
	// 1 µs .. 100 ms in 1 µs steps: the nearest-rank p50 is 50 ms, p99 99 ms, p100 100 ms.
	var a, b histogram
	for v := time.Microsecond; v <= 100*time.Millisecond; v += time.Microsecond {
		if v%(2*time.Microsecond) == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	h.merge(&a)
	h.merge(&b)
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Microsecond}} {
		got := h.quantile(c.q)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 0.004 {
			t.Errorf("quantile(%v) = %v, want %v within 0.4%% (off by %.2f%%)", c.q, got, c.want, rel*100)
		}
	}
	// Small values are exact.
	var s histogram
	for _, v := range []time.Duration{3, 1, 2, 100} {
		s.record(v)
	}
	if got := s.quantile(0.5); got != 2 {
		t.Errorf("small values: p50 = %v, want 2ns", got)
	}
	if got := s.quantile(1); got != 100 {
		t.Errorf("small values: p100 = %v, want 100ns", got)
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1 << 20, 1<<40 + 12345, math.MaxInt64, math.MaxUint64} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		if mid := histValue(i); v >= histSub && math.Abs(float64(mid)-float64(v))/float64(v) > 1.0/histSub {
			t.Errorf("value %d lands in bucket %d, whose middle %d is too far", v, i, mid)
		}
	}
}

// An open loop keeps its schedule whatever the answers' pace, and a late answer makes the operations due
// behind it late too: they are charged from when they were due, not from when they could be sent.
func TestOpenLoopChargesTheBacklog(t *testing.T) {
	first := true
	m, err := openLoop(t.Context(), 1, 100, 100*time.Millisecond, func(int) func(context.Context) error {
		return func(context.Context) error {
			if first { // the first answer takes 35 ms: the operations due at 10, 20 and 30 ms wait for it
				first = false
				time.Sleep(35 * time.Millisecond)
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.ops != 10 {
		t.Errorf("%d operations in 100 ms at 100/s, want 10", m.ops)
	}
	// Latencies are about 35, 25, 15, 5 ms and six of nothing: the 9th of 10 is the one due at 10 ms.
	if got := m.hist.quantile(0.9); got < 20*time.Millisecond {
		t.Errorf("p90 = %v, want at least 20 ms (the backlog behind the slow answer)", got)
	}
	if _, err := openLoop(t.Context(), 1, 0, time.Second, nil); err == nil {
		t.Error("an open loop at rate 0 ran")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850: "850 ns", 1234 * time.Microsecond: "1.23 ms", 48200 * time.Millisecond: "48.2 s",
		-1234 * time.Microsecond: "-1.23 ms", 0: "0 ns",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

// TestMedianTurnDiff: the p99 added is taken round by round, so one stalled turn on either side moves
// the median of the differences by at most one rank.
func TestMedianTurnDiff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		m, base []time.Duration
		want    time.Duration
	}{
		{"odd", []time.Duration{2 * ms, 3 * ms, 50 * ms}, []time.Duration{1 * ms, 1 * ms, 1 * ms}, 2 * ms},
		{"a stall on the baseline", []time.Duration{2 * ms, 2 * ms, 2 * ms}, []time.Duration{1 * ms, 80 * ms, 1 * ms}, 1 * ms},
		{"even", []time.Duration{2 * ms, 5 * ms}, []time.Duration{1 * ms, 1 * ms}, 2*ms + ms/2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := medianTurnDiff(&measure{turns: tt.m}, &measure{turns: tt.base}); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMedianRound: the round reported is the one with the median ratio, and both of its rates come
// from that same round.
func TestMedianRound(t *testing.T) {
	m := &measure{turnRates: []float64{90, 50, 95, 80, 100}}
	base := &measure{turnRates: []float64{100, 100, 100, 100, 100}}
	if mr, br := medianRound(m, base); mr != 90 || br != 100 {
		t.Errorf("got %v/%v, want 90/100 (ratios 0.5 0.8 0.9 0.95 1.0)", mr, br)
	}
	// A baseline turn that stalled (a high ratio) does not decide the figure.
	base.turnRates = []float64{100, 100, 10, 100, 100}
	if mr, br := medianRound(m, base); mr != 90 || br != 100 {
		t.Errorf("with a stalled baseline turn: got %v/%v, want 90/100", mr, br)
	}
}

// TestAlternateAllReversesEveryOtherRound: the phases run in the given order, then reversed, so a
// phase compared with the next one does not always go first; each round adds one turn to each phase.
func TestAlternateAllReversesEveryOtherRound(t *testing.T) {
	var order []int
	phase := func(i int) func(time.Duration) (*measure, error) {
		return func(d time.Duration) (*measure, error) {
			order = append(order, i)
			return &measure{ops: uint64(i + 1), elapsed: d}, nil
		}
	}
	ms, err := alternateAll(3*time.Second, phase(0), phase(1), phase(2))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 2, 2, 1, 0, 0, 1, 2}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	for i, m := range ms {
		if len(m.turnRates) != 3 || m.ops != uint64(3*(i+1)) {
			t.Errorf("phase %d: %d turns, %d ops", i, len(m.turnRates), m.ops)
		}
	}
}
