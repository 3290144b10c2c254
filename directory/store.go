package directory

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// Store is one replica of the directory on Badger.
//
// Concurrency: Apply, Restore and Close are called by one goroutine at a time (raft's FSM goroutine); reads
// may run concurrently with each other and with Apply, and always see a consistent state between two
// commands. During Restore reads wait until the new state is in place.
type Store struct {
	dir     string // "" for an in-memory store
	mu      sync.RWMutex
	db      *badger.DB
	applied atomic.Uint64
	log     *slog.Logger
}

// Options tune a store.
type Options struct {
	// Logger receives Badger's warnings; nil discards them.
	Logger *slog.Logger
	// SmallMemory trims Badger's caches, for tests that run many stores in one process.
	SmallMemory bool
}

// Open opens (or creates) the store in dir.
func Open(dir string, opt Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating directory store: %w", err)
	}
	s := &Store{dir: dir, log: opt.Logger}
	db, err := openBadger(filepath.Join(dir, "badger"), opt)
	if err != nil {
		return nil, err
	}
	s.db = db
	applied, err := readApplied(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening directory store: %w", err)
	}
	s.applied.Store(applied)
	return s, nil
}

// OpenMemory opens a store that lives only in memory: the same state machine, for tests and tools.
func OpenMemory(opt Options) (*Store, error) {
	s := &Store{log: opt.Logger}
	db, err := openBadger("", opt)
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

func openBadger(path string, opt Options) (*badger.DB, error) {
	o := badger.DefaultOptions(path).
		// The raft log is the durable record; the store is rebuilt from it after a crash, so Badger need
		// not fsync each transaction.
		WithSyncWrites(false).
		WithNumVersionsToKeep(1).
		WithLogger(badgerLogger{opt.Logger}).
		WithMetricsEnabled(false)
	if path == "" {
		o = o.WithInMemory(true)
	}
	if opt.SmallMemory || path == "" {
		o = o.WithMemTableSize(8 << 20).WithBlockCacheSize(8 << 20).WithIndexCacheSize(4 << 20).
			WithNumMemtables(2).WithValueLogFileSize(64 << 20)
	} else {
		o = o.WithMemTableSize(32 << 20).WithBlockCacheSize(256 << 20).WithValueLogFileSize(256 << 20)
	}
	db, err := badger.Open(o)
	if err != nil {
		return nil, fmt.Errorf("opening directory store %s: %w", path, err)
	}
	return db, nil
}

// AppliedIndex is the raft index of the last command applied to this replica.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

// Close closes the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Apply applies the command at raft index idx. A command at or below the applied index was already
// applied before a restart and is skipped. A refused command (a conflict, say) changes nothing but the
// applied index, and its refusal is returned as *Error; any other error means the store is broken.
func (s *Store) Apply(idx uint64, data []byte) (*Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applyOne(Entry{Index: idx, Data: data})
}

// Entry is one command of a batch, with its raft index.
type Entry struct {
	Index uint64
	Data  []byte
}

// Outcome is what one entry of a batch came to: what Apply would have returned for it.
type Outcome struct {
	Result *Result
	Err    error
}

// ApplyBatch applies consecutive commands as Apply would, one after the other, but commits runs of them
// in one Badger transaction: the same state and the same outcomes, for much less work per command. The
// error is non-nil only when the store is broken.
func (s *Store) ApplyBatch(entries []Entry) ([]Outcome, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Outcome, len(entries))
	for i := 0; i < len(entries); {
		if e := entries[i]; e.Index != 0 && e.Index <= s.applied.Load() {
			out[i] = Outcome{Result: &Result{Index: e.Index}}
			i++
			continue
		}
		n, err := s.applyRun(entries[i:], out[i:])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			// The first entry would be refused, or is too large to share a transaction: on its own.
			res, err := s.applyOne(entries[i])
			if _, refused := AsError(err); err != nil && !refused {
				return nil, err
			}
			out[i] = Outcome{Result: res, Err: err}
			n = 1
		}
		i += n
	}
	return out, nil
}

// applyRun applies the longest prefix of entries that all succeed in one transaction and reports its
// length. An entry that is refused stops the run; since it may have written part of its ops already,
// the run before it is redone in a clean transaction (Apply is deterministic, so it comes out the same).
func (s *Store) applyRun(entries []Entry, out []Outcome) (int, error) {
	run := func(n int) (*badger.Txn, []*Result, int, error) {
		txn := s.db.NewTransaction(true)
		var results []*Result
		for k, e := range entries {
			if k == n {
				break
			}
			cmd, err := DecodeCommand(e.Data)
			if err != nil {
				return txn, results, k, nil
			}
			res, err := s.applyIn(txn, e.Index, cmd)
			if err != nil {
				if _, refused := AsError(err); refused || errors.Is(err, badger.ErrTxnTooBig) {
					return txn, results, k, nil
				}
				return txn, nil, 0, err
			}
			results = append(results, res)
		}
		return txn, results, len(results), nil
	}
	txn, results, n, err := run(len(entries))
	if err != nil || n == 0 {
		txn.Discard()
		return 0, err
	}
	if n < len(entries) {
		txn.Discard()
		var m int
		if txn, results, m, err = run(n); err != nil || m != n {
			txn.Discard()
			if err == nil {
				err = fmt.Errorf("directory: replaying %d commands gave a different outcome", n)
			}
			return 0, err
		}
	}
	defer txn.Discard()
	last := entries[n-1].Index
	if last != 0 {
		if err := txn.Set(keyApplied, u64(last)); err != nil {
			return 0, err
		}
	}
	if err := txn.Commit(); err != nil {
		return 0, err
	}
	if last != 0 {
		s.applied.Store(last)
	}
	for k, r := range results {
		out[k] = Outcome{Result: r}
	}
	return n, nil
}

func (s *Store) applyOne(e Entry) (*Result, error) {
	if e.Index != 0 && e.Index <= s.applied.Load() {
		return &Result{Index: e.Index}, nil
	}
	cmd, err := DecodeCommand(e.Data)
	if err != nil {
		return s.refuse(e.Index, invalid("%v", err))
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	res, err := s.applyIn(txn, e.Index, cmd)
	if err == nil && e.Index != 0 {
		err = txn.Set(keyApplied, u64(e.Index))
	}
	if err == nil {
		err = txn.Commit()
	}
	if err != nil {
		if _, ok := AsError(err); ok {
			return s.refuse(e.Index, err)
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			return s.refuse(e.Index, invalid("command too large for one transaction"))
		}
		return nil, err
	}
	if e.Index != 0 {
		s.applied.Store(e.Index)
	}
	return res, nil
}

func (s *Store) refuse(idx uint64, refusal error) (*Result, error) {
	if idx != 0 {
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyApplied, u64(idx)) }); err != nil {
			return nil, err
		}
		s.applied.Store(idx)
	}
	return &Result{Index: idx}, refusal
}

// applyIn runs a command's ops in txn, without committing it.
func (s *Store) applyIn(txn *badger.Txn, idx uint64, cmd Command) (*Result, error) {
	if len(cmd.Ops) == 0 {
		return nil, invalid("command has no operations")
	}
	res := &Result{Index: idx}
	a := &applier{txn: txn, cmd: cmd, index: idx, chunk: blobChunk(s.dir == "")}
	for i, op := range cmd.Ops {
		h, ok := handlers[op.Kind]
		if !ok {
			return nil, invalid("unknown operation %q", op.Kind)
		}
		out, err := h(a, op.Body)
		if err != nil {
			if e, ok := AsError(err); ok && len(cmd.Ops) > 1 {
				return nil, &Error{Code: e.Code, Message: fmt.Sprintf("operation %d (%s): %s", i+1, op.Kind, e.Message)}
			}
			return nil, err
		}
		b := []byte("null")
		if out != nil {
			if b, err = json.Marshal(out); err != nil {
				return nil, err
			}
		}
		res.Outputs = append(res.Outputs, b)
	}
	res.Changes = a.changes
	return res, nil
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errors.New("directory store is closed")
	}
	return s.db.View(fn)
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	if b.l != nil {
		b.l.Error("badger: " + fmt.Sprintf(f, a...))
	}
}
func (b badgerLogger) Warningf(f string, a ...any) {
	if b.l != nil {
		b.l.Warn("badger: " + fmt.Sprintf(f, a...))
	}
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
