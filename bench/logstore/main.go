// Command logstore measures candidate raft log stores for Postern: raw
// StoreLogs cost and end-to-end raft.Apply through a single-node raft, every
// store with fsync on. See docs/decisions/0001-raft-log-store.md.
//
//	cd bench/logstore && go run .
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

var (
	flagDur      = flag.Duration("d", 5*time.Second, "duration of each case")
	flagRuns     = flag.Int("runs", 2, "runs of the whole matrix (interleaved, to spread noise)")
	flagDir      = flag.String("dir", ".", "parent of the scratch dir (tmp-* is created and removed)")
	flagStores   = flag.String("stores", "inmem,raft-wal,raft-boltdb,badger", "stores to measure")
	flagMaxCalls = flag.Int("maxcalls", 50000, "cap on StoreLogs calls per raw case")
	flagPayload  = flag.Int("payload", 256, "bytes per log entry / command")
)

type store interface {
	raft.LogStore
	raft.StableStore
}

type opener func(dir string) (store, func() error, error)

var openers = map[string]opener{
	"inmem": func(string) (store, func() error, error) {
		return raft.NewInmemStore(), func() error { return nil }, nil
	},
	"raft-wal": func(dir string) (store, func() error, error) {
		w, err := wal.Open(dir) // fsyncs every append
		if err != nil {
			return nil, nil, err
		}
		return w, w.Close, nil
	},
	"raft-boltdb": func(dir string) (store, func() error, error) {
		b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}) // NoSync false
		if err != nil {
			return nil, nil, err
		}
		return b, b.Close, nil
	},
	"badger": func(dir string) (store, func() error, error) {
		b, err := openBadgerStore(dir) // SyncWrites true
		if err != nil {
			return nil, nil, err
		}
		return b, b.Close, nil
	},
}

type result struct {
	rate     float64 // entries/s (raw) or applies/s (raft)
	p50, p99 time.Duration
	calls    int
}

type caseKey struct{ store, name string }

var (
	scratch string
	caseSeq int
	payload []byte
)

func main() {
	flag.Parse()
	payload = make([]byte, *flagPayload)
	_, _ = rand.Read(payload)

	var err error
	scratch, err = os.MkdirTemp(*flagDir, "tmp-logstore-")
	check(err)
	defer os.RemoveAll(scratch)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() { <-sig; os.RemoveAll(scratch); os.Exit(130) }()

	stores := strings.Split(*flagStores, ",")
	for _, s := range stores {
		if openers[s] == nil {
			fail(fmt.Errorf("unknown store %q", s))
		}
	}
	fmt.Printf("# go %s, GOMAXPROCS %d, %d-byte entries, %v per case, %d runs, scratch %s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), *flagPayload, *flagDur, *flagRuns, scratch)

	fsync := make([]result, 0, *flagRuns)
	results := map[caseKey][]result{}
	var order []caseKey
	add := func(k caseKey, r result) {
		if _, ok := results[k]; !ok {
			order = append(order, k)
		}
		results[k] = append(results[k], r)
		fmt.Fprintf(os.Stderr, "  %-12s %-14s %10.0f/s  p50 %-10v p99 %-10v (%d)\n",
			k.store, k.name, r.rate, r.p50, r.p99, r.calls)
	}
	for run := 1; run <= *flagRuns; run++ {
		fmt.Fprintf(os.Stderr, "run %d\n", run)
		fsync = append(fsync, fsyncFloor())
		fmt.Fprintf(os.Stderr, "  fsync floor: p50 %v p99 %v\n", fsync[run-1].p50, fsync[run-1].p99)
		for _, s := range stores {
			for _, batch := range []int{1, 64} {
				add(caseKey{s, fmt.Sprintf("raw batch=%d", batch)}, rawCase(s, batch))
			}
			for _, conc := range []int{1, 16, 64} {
				add(caseKey{s, fmt.Sprintf("raft conc=%d", conc)}, raftCase(s, conc))
			}
		}
	}

	fmt.Println()
	fmt.Printf("fsync floor (256 B write into a preallocated file + fsync): p50 %s / p99 %s ms per run\n\n",
		join(fsync, func(r result) string { return ms(r.p50) }),
		join(fsync, func(r result) string { return ms(r.p99) }))
	fmt.Println("| store | case | entries or applies /s | p50 ms | p99 ms |")
	fmt.Println("|---|---|---:|---:|---:|")
	for _, k := range order {
		rs := results[k]
		fmt.Printf("| %s | %s | %s | %s | %s |\n", k.store, k.name,
			join(rs, func(r result) string { return fmt.Sprintf("%.0f", r.rate) }),
			join(rs, func(r result) string { return ms(r.p50) }),
			join(rs, func(r result) string { return ms(r.p99) }))
	}
}

// newDir returns a fresh, empty data dir for one case.
func newDir() string {
	caseSeq++
	d := filepath.Join(scratch, fmt.Sprintf("case-%03d", caseSeq))
	check(os.Mkdir(d, 0o700))
	return d
}

func dropDir(d string) { check(os.RemoveAll(d)) }

// fsyncFloor times a 256-byte write into a preallocated file plus fsync, for
// 1 s: the disk's own price of one durable append (what raft-wal does on its
// preallocated segments), below which no store can go.
func fsyncFloor() result {
	d := newDir()
	defer dropDir(d)
	f, err := os.Create(filepath.Join(d, "f"))
	check(err)
	defer f.Close()
	const size = 4 << 20
	_, err = f.Write(make([]byte, size))
	check(err)
	check(f.Sync())
	var lat []time.Duration
	var off int64
	start := time.Now()
	for time.Since(start) < time.Second {
		t := time.Now()
		_, err := f.WriteAt(payload, off)
		check(err)
		check(f.Sync())
		lat = append(lat, time.Since(t))
		off = (off + int64(len(payload))) % (size - int64(len(payload)))
	}
	return summarize(lat, len(lat), time.Since(start))
}

// rawCase calls StoreLogs with batches of `batch` consecutive entries until
// the case duration or the call cap is reached.
func rawCase(name string, batch int) result {
	d := newDir()
	defer dropDir(d)
	st, closeFn, err := openers[name](d)
	check(err)
	defer func() { check(closeFn()) }()

	var lat []time.Duration
	next := uint64(1)
	start := time.Now()
	for time.Since(start) < *flagDur && len(lat) < *flagMaxCalls {
		// Fresh entries every call: InmemStore keeps the pointers it is given.
		now := time.Now()
		logs := make([]*raft.Log, batch)
		for i := range logs {
			logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: slices.Clone(payload), AppendedAt: now}
			next++
		}
		t := time.Now()
		check(st.StoreLogs(logs))
		lat = append(lat, time.Since(t))
	}
	elapsed := time.Since(start)
	// Sanity: the store really holds what we wrote.
	last, err := st.LastIndex()
	check(err)
	if last != next-1 {
		fail(fmt.Errorf("%s: LastIndex %d, want %d", name, last, next-1))
	}
	return summarize(lat, len(lat)*batch, elapsed)
}

type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) interface{} { return f.n.Add(1) }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnap(f.n.Load()), nil
}
func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	f.n.Store(n)
	return nil
}

type countSnap uint64

func (s countSnap) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(s) >> (56 - 8*i))
	}
	if _, err := sink.Write(b[:]); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (countSnap) Release() {}

// raftCase runs a single-node raft on the store and has conc goroutines call
// Apply(payload).Error() in a loop for the case duration.
func raftCase(name string, conc int) result {
	d := newDir()
	defer dropDir(d)
	st, closeFn, err := openers[name](d)
	check(err)
	defer func() { check(closeFn()) }()

	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotInterval = time.Hour // keep snapshots/compaction out of the window
	conf.SnapshotThreshold = math.MaxUint64
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: os.Stderr})

	addr, trans := raft.NewInmemTransport("n1")
	snaps := raft.NewInmemSnapshotStore()
	fsm := &countFSM{}
	check(raft.BootstrapCluster(conf, st, st, snaps, trans, raft.Configuration{
		Servers: []raft.Server{{ID: conf.LocalID, Address: addr}},
	}))
	r, err := raft.NewRaft(conf, fsm, st, st, snaps, trans)
	check(err)
	defer func() { check(r.Shutdown().Error()) }()

	deadline := time.Now().Add(10 * time.Second)
	for r.State() != raft.Leader {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("%s: no leader after 10s", name))
		}
		time.Sleep(5 * time.Millisecond)
	}
	check(r.Barrier(0).Error())

	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(*flagDur)
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			cmd := slices.Clone(payload)
			for time.Now().Before(end) {
				t := time.Now()
				if err := r.Apply(cmd, 0).Error(); err != nil {
					fail(fmt.Errorf("%s: apply: %w", name, err))
				}
				lats[g] = append(lats[g], time.Since(t))
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lats...)
	if got := fsm.n.Load(); got != uint64(len(all)) {
		fail(fmt.Errorf("%s: FSM applied %d, want %d", name, got, len(all)))
	}
	return summarize(all, len(all), elapsed)
}

func summarize(lat []time.Duration, n int, elapsed time.Duration) result {
	if len(lat) == 0 {
		return result{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	return result{rate: float64(n) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99), calls: len(lat)}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func join(rs []result, f func(result) string) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = f(r)
	}
	return strings.Join(s, " / ")
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "logstore:", err)
	if scratch != "" {
		os.RemoveAll(scratch)
	}
	os.Exit(1)
}
