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
		o = o.WithMemTableSize(32 << 20).WithBlockCacheSize(64 << 20).WithValueLogFileSize(256 << 20)
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
	if idx != 0 && idx <= s.applied.Load() {
		return &Result{Index: idx}, nil
	}
	cmd, err := DecodeCommand(data)
	if err != nil {
		return s.refuse(idx, invalid("%v", err))
	}
	res, err := s.apply(idx, cmd)
	if err != nil {
		if _, ok := AsError(err); ok {
			return s.refuse(idx, err)
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			return s.refuse(idx, invalid("command too large for one transaction"))
		}
		return nil, err
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

func (s *Store) apply(idx uint64, cmd Command) (*Result, error) {
	if len(cmd.Ops) == 0 {
		return nil, invalid("command has no operations")
	}
	res := &Result{Index: idx}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	a := &applier{txn: txn, cmd: cmd, index: idx}
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
		if out != nil {
			b, err := json.Marshal(out)
			if err != nil {
				return nil, err
			}
			res.Outputs = append(res.Outputs, b)
		} else {
			res.Outputs = append(res.Outputs, json.RawMessage("null"))
		}
	}
	if idx != 0 {
		if err := txn.Set(keyApplied, u64(idx)); err != nil {
			return nil, err
		}
	}
	if err := txn.Commit(); err != nil {
		return nil, err
	}
	if idx != 0 {
		s.applied.Store(idx)
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
