package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// badgerStore is candidate (c): a raft.LogStore and raft.StableStore on
// Badger v4. Log keys are logPrefix + big-endian index, so key order is index
// order; values are the raft.Log in a small fixed binary layout. StoreLogs
// writes the whole batch in one transaction and the DB is opened with
// SyncWrites, so a returned StoreLogs is durable.
type badgerStore struct {
	db *badger.DB
}

var (
	logPrefix    = []byte("l/")
	stablePrefix = []byte("s/")

	// errKeyNotFound mirrors raft-boltdb: raft compares err.Error() with
	// "not found" when reading its term/vote keys on a fresh store.
	errKeyNotFound = errors.New("not found")
)

var (
	_ raft.LogStore    = (*badgerStore)(nil)
	_ raft.StableStore = (*badgerStore)(nil)
)

func openBadgerStore(dir string) (*badgerStore, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(nil)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, err
	}
	return &badgerStore{db: db}, nil
}

func (s *badgerStore) Close() error { return s.db.Close() }

func logKey(index uint64) []byte {
	k := make([]byte, len(logPrefix)+8)
	copy(k, logPrefix)
	binary.BigEndian.PutUint64(k[len(logPrefix):], index)
	return k
}

func keyIndex(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(logPrefix):]) }

func stableKey(k []byte) []byte { return append(append([]byte{}, stablePrefix...), k...) }

// encodeLog layout: index u64 | term u64 | type u8 | appendedAt unix-nanos
// i64 (0 = zero time) | uvarint len + data | uvarint len + extensions.
func encodeLog(l *raft.Log) []byte {
	buf := make([]byte, 0, 25+2*binary.MaxVarintLen64+len(l.Data)+len(l.Extensions))
	buf = binary.BigEndian.AppendUint64(buf, l.Index)
	buf = binary.BigEndian.AppendUint64(buf, l.Term)
	buf = append(buf, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(at))
	buf = binary.AppendUvarint(buf, uint64(len(l.Data)))
	buf = append(buf, l.Data...)
	buf = binary.AppendUvarint(buf, uint64(len(l.Extensions)))
	buf = append(buf, l.Extensions...)
	return buf
}

var errCorrupt = errors.New("badgerstore: corrupt log entry")

// decodeLog copies out of b, so b may be a Badger value valid only in a txn.
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 25 {
		return errCorrupt
	}
	l.Index = binary.BigEndian.Uint64(b[0:])
	l.Term = binary.BigEndian.Uint64(b[8:])
	l.Type = raft.LogType(b[16])
	if at := int64(binary.BigEndian.Uint64(b[17:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	} else {
		l.AppendedAt = time.Time{}
	}
	b = b[25:]
	var err error
	if l.Data, b, err = readBytes(b); err != nil {
		return err
	}
	if l.Extensions, b, err = readBytes(b); err != nil {
		return err
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errCorrupt
	}
	b = b[k:]
	if n == 0 {
		return nil, b, nil
	}
	return append([]byte(nil), b[:n]...), b[n:], nil
}

func (s *badgerStore) FirstIndex() (uint64, error) { return s.edgeIndex(false) }
func (s *badgerStore) LastIndex() (uint64, error)  { return s.edgeIndex(true) }

func (s *badgerStore) edgeIndex(last bool) (uint64, error) {
	var idx uint64
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = logPrefix
		opts.Reverse = last
		it := txn.NewIterator(opts)
		defer it.Close()
		if last {
			// A reverse Rewind would seek to the bare prefix, which sorts
			// before every log key; seek past the largest possible one.
			it.Seek(logKey(math.MaxUint64))
		} else {
			it.Rewind()
		}
		if it.Valid() {
			idx = keyIndex(it.Item().Key())
		}
		return nil
	})
	return idx, err
}

func (s *badgerStore) GetLog(index uint64, l *raft.Log) error {
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(logKey(index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return raft.ErrLogNotFound
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return decodeLog(v, l) })
	})
}

func (s *badgerStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs writes all logs in one transaction (one fsync). Only a batch too
// big for a single Badger transaction is split, which raft's MaxAppendEntries
// (64 by default) keeps far away.
func (s *badgerStore) StoreLogs(logs []*raft.Log) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, l := range logs {
		k, v := logKey(l.Index), encodeLog(l)
		err := txn.Set(k, v)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err = txn.Commit(); err != nil {
				return err
			}
			txn = s.db.NewTransaction(true)
			err = txn.Set(k, v)
		}
		if err != nil {
			return fmt.Errorf("badgerstore: store log %d: %w", l.Index, err)
		}
	}
	return txn.Commit()
}

// DeleteRange removes logs with min <= index <= max, in chunks so that a large
// compaction never exceeds Badger's transaction limits.
func (s *badgerStore) DeleteRange(min, max uint64) error {
	const chunk = 10000
	for from := min; from <= max; {
		var keys [][]byte
		err := s.db.View(func(txn *badger.Txn) error {
			opts := badger.DefaultIteratorOptions
			opts.PrefetchValues = false
			opts.Prefix = logPrefix
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Seek(logKey(from)); it.Valid() && len(keys) < chunk; it.Next() {
				if keyIndex(it.Item().Key()) > max {
					break
				}
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		wb := s.db.NewWriteBatch()
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				wb.Cancel()
				return err
			}
		}
		if err := wb.Flush(); err != nil {
			return err
		}
		last := keyIndex(keys[len(keys)-1])
		if len(keys) < chunk || last == math.MaxUint64 {
			return nil
		}
		from = last + 1
	}
	return nil
}

func (s *badgerStore) Set(k, v []byte) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(stableKey(k), v) })
}

func (s *badgerStore) Get(k []byte) ([]byte, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(stableKey(k))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errKeyNotFound
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	return v, err
}

func (s *badgerStore) SetUint64(k []byte, v uint64) error {
	return s.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

func (s *badgerStore) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("badgerstore: key %q is not a uint64", k)
	}
	return binary.BigEndian.Uint64(v), nil
}
