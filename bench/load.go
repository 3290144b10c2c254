package bench

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// measure is what a timed phase gave: how many operations completed, over how long, and their latencies.
type measure struct {
	ops     uint64
	elapsed time.Duration
	hist    histogram
	// turns holds the p99 of each measure added (the turns of alternate): a stall of the shared
	// machine in one turn moves that turn's p99 only, so a median over turns shows what the stalls hide.
	turns []time.Duration
	// turnRates holds the operations per second of each measure added, for the same reason.
	turnRates []float64
}

func (m *measure) perSecond() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.ops) / m.elapsed.Seconds()
}

// add merges o, a measure of the same operations at another time, into m.
func (m *measure) add(o *measure) {
	m.ops += o.ops
	m.elapsed += o.elapsed
	m.hist.merge(&o.hist)
	m.turns = append(m.turns, o.p99())
	m.turnRates = append(m.turnRates, o.perSecond())
}

// medianRound picks, among the rounds m and base were measured in alternately, the one whose ratio of
// rates (m's over base's) is the median (the lower middle one for an even count), and returns both
// rates of that round. Taken round by round, the ratio compares turns a moment apart, so a stall of the
// shared machine during one turn moves one round's ratio, not the figure.
func medianRound(m, base *measure) (mRate, baseRate float64) {
	n := min(len(m.turnRates), len(base.turnRates))
	if n == 0 {
		return m.perSecond(), base.perSecond()
	}
	idx := make([]int, 0, n)
	for i := range n {
		if base.turnRates[i] > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return m.perSecond(), base.perSecond()
	}
	ratio := func(i int) float64 { return m.turnRates[i] / base.turnRates[i] }
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(ratio(a), ratio(b)) })
	i := idx[(len(idx)-1)/2]
	return m.turnRates[i], base.turnRates[i]
}

// medianTurnDiff is the median, over the turns two measures were taken in alternately, of m's turn p99
// minus base's in the same round.
func medianTurnDiff(m, base *measure) time.Duration {
	n := min(len(m.turns), len(base.turns))
	if n == 0 {
		return m.p99() - base.p99()
	}
	d := make([]time.Duration, n)
	for i := range n {
		d[i] = m.turns[i] - base.turns[i]
	}
	slices.Sort(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

func (m *measure) p50() time.Duration { return m.hist.quantile(0.50) }
func (m *measure) p99() time.Duration { return m.hist.quantile(0.99) }

// throughput gives the usual three figures of a phase (prefixed when a scenario has several phases), each
// against the same figure of the baseline phase.
func throughput(prefix, unit string, m, base *measure) Figures {
	return Figures{
		rate(prefix+unit, m.perSecond()).against(base.perSecond()),
		latency(prefix+"p50", m.p50()).against(float64(base.p50())),
		latency(prefix+"p99", m.p99()).against(float64(base.p99())),
	}
}

// closedLoop runs workers goroutines for d; each calls its operation again as soon as the last one returned
// (a closed loop: the offered load is what the system can take), and every call's latency is recorded. The
// phase lasts until the last in-flight call returns, and that drain counts in the elapsed time. The first
// error stops every worker and is returned.
//
// newOp is called once per worker, before the clock starts, so an operation can keep per-worker state (a
// random source, a buffer) without locks.
func closedLoop(ctx context.Context, workers int, d time.Duration, newOp func(worker int) func(context.Context) error) (*measure, error) {
	if workers < 1 {
		return nil, errors.New("closed loop needs at least one worker")
	}
	ops := make([]func(context.Context) error, workers)
	for w := range ops {
		ops[w] = newOp(w)
	}
	hists := make([]histogram, workers)
	counts := make([]uint64, workers)
	var (
		stop     atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			op, h := ops[w], &hists[w]
			var n uint64
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Now()
				if n > 0 && !t0.Before(end) { // every worker completes at least one call, however short d is
					break
				}
				if err := op(ctx); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				h.record(time.Since(t0))
				n++
			}
			counts[w] = n
		})
	}
	wg.Wait()
	m := &measure{elapsed: time.Since(start)}
	for w := range workers {
		m.ops += counts[w]
		m.hist.merge(&hists[w])
	}
	if firstErr != nil {
		return m, firstErr
	}
	return m, ctx.Err()
}

// openLoop sends operations at a fixed rate for d, whatever the pace of the answers (an open loop: the
// offered load is fixed, as when many independent users make it), spread over workers that each send one
// at a time (on a connection of its own, say): worker w sends operations w, w+workers, w+2·workers, …,
// operation k due at k/rate after the start. The phase lasts until the last operation returns; the first
// error stops every worker and is returned.
//
// An operation's latency runs from when it was due if its worker was still busy then: the wait is the
// system's doing, and a closed loop would hide it (coordinated omission). Otherwise it runs from when it
// was sent, so that a timer waking late, the generator's doing, is not counted against the system.
func openLoop(ctx context.Context, workers int, rate float64, d time.Duration, newOp func(worker int) func(context.Context) error) (*measure, error) {
	if workers < 1 || !(rate > 0) {
		return nil, errors.New("open loop needs at least one worker and a positive rate")
	}
	ops := make([]func(context.Context) error, workers)
	for w := range ops {
		ops[w] = newOp(w)
	}
	hists := make([]histogram, workers)
	counts := make([]uint64, workers)
	var (
		stop     atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	due := func(k int) time.Time { return start.Add(time.Duration(float64(k) * float64(time.Second) / rate)) }
	for w := range workers {
		wg.Go(func() {
			op, h := ops[w], &hists[w]
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			var n uint64
			for k := w; !stop.Load() && ctx.Err() == nil; k += workers {
				t0 := due(k)
				if t0.Sub(start) >= d {
					break
				}
				if wait := time.Until(t0); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						continue // the loop's condition ends it
					}
					t0 = time.Now()
				}
				if err := op(ctx); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				h.record(time.Since(t0))
				n++
			}
			counts[w] = n
		})
	}
	wg.Wait()
	m := &measure{elapsed: time.Since(start)}
	for w := range workers {
		m.ops += counts[w]
		m.hist.merge(&hists[w])
	}
	if firstErr != nil {
		return m, firstErr
	}
	return m, ctx.Err()
}
