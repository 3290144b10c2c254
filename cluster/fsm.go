package cluster

import (
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"

	"postern.dev/postern/directory"
)

// fsm drives the directory's state machine from raft.
//
// Concurrency: raft calls Apply, Snapshot and Restore from one goroutine; Persist runs concurrently with
// later Applies (the directory snapshot pins its state). Waiters and listeners may be added from any
// goroutine.
type fsm struct {
	store *directory.Store
	log   *slog.Logger

	mu        sync.Mutex
	advanced  chan struct{} // closed and replaced after every apply: a broadcast to waiters
	listeners []func(Applied)
}

// Applied tells listeners what a committed command changed, so caches can invalidate. Listeners run on
// raft's apply goroutine: they must be quick and must not block.
type Applied struct {
	Index   uint64
	Changes []directory.Change
	// Restored is set when the whole state was replaced by a snapshot: every cache is stale.
	Restored bool
}

// applyResponse is what Apply returns through raft's ApplyFuture.Response.
type applyResponse struct {
	result *directory.Result
	err    error
}

func newFSM(store *directory.Store, log *slog.Logger) *fsm {
	return &fsm{store: store, log: log, advanced: make(chan struct{})}
}

var _ raft.FSM = (*fsm)(nil) // Interface guard.

func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

var _ raft.BatchingFSM = (*fsm)(nil) // Interface guard.

// ApplyBatch applies the commands of a batch of committed entries in as few directory transactions as
// their outcomes allow (see directory.Store.ApplyBatch); other entry types need nothing from the FSM.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	entries := make([]directory.Entry, 0, len(logs))
	at := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			entries = append(entries, directory.Entry{Index: l.Index, Data: l.Data})
			at = append(at, i)
		}
	}
	if len(entries) == 0 {
		return out
	}
	outcomes, err := f.store.ApplyBatch(entries)
	if err != nil {
		// The store itself failed (disk, corruption): the replica can no longer follow the log, and
		// carrying on would diverge from the others. Stop here rather than serve wrong data.
		panic("cluster: applying raft entries from " + itoa(entries[0].Index) + ": " + err.Error())
	}
	for k, o := range outcomes {
		var changes []directory.Change
		if o.Result != nil {
			changes = o.Result.Changes
		}
		f.notify(Applied{Index: entries[k].Index, Changes: changes})
		out[at[k]] = applyResponse{result: o.Result, err: o.Err}
	}
	return out
}

func (f *fsm) notify(a Applied) {
	f.mu.Lock()
	close(f.advanced)
	f.advanced = make(chan struct{})
	ls := f.listeners
	f.mu.Unlock()
	for _, l := range ls {
		l(a)
	}
}

// waitChan returns a channel closed at the next apply.
func (f *fsm) waitChan() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.advanced
}

func (f *fsm) listen(fn func(Applied)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = append(append([]func(Applied){}, f.listeners...), fn)
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.store.Snapshot()
	if err != nil {
		return nil, err
	}
	return fsmSnapshot{sn}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return err
	}
	// Raft restores the state machine only to install a snapshot sent by the leader (a follower too far
	// behind for the log) or a backup restored through the leader: worth a line for operators.
	f.log.Info("installed a raft snapshot: the directory was replaced", "applied_index", f.store.AppliedIndex())
	f.notify(Applied{Index: f.store.AppliedIndex(), Restored: true})
	return nil
}

type fsmSnapshot struct{ sn *directory.Snapshot }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.sn.Write(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() { s.sn.Release() }
