package directory

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"
)

// snapshotMagic starts every snapshot stream; what follows is Badger's backup format (length-prefixed
// KVList protobufs), which Badger's Load reads back, and then an end mark: a frame of length zero, which
// Write never emits otherwise. Without it a stream cut at a frame boundary would load as a smaller state.
const snapshotMagic = "POSTERN-DIRECTORY-1\n"

// Snapshot is the store's state at one instant, ready to stream out while the store goes on applying
// commands. Release it when done.
type Snapshot struct {
	txn     *badger.Txn
	applied uint64
}

// Snapshot pins the current state. Call it between two Applies (raft's FSM goroutine does); Write may then
// run concurrently with later Applies and still writes exactly this state.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, errors.New("directory store is closed")
	}
	return &Snapshot{txn: s.db.NewTransaction(false), applied: s.applied.Load()}, nil
}

// AppliedIndex is the raft index the snapshot includes.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// Write streams the snapshot to w.
func (sn *Snapshot) Write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return err
	}
	opt := badger.DefaultIteratorOptions
	opt.PrefetchSize = 256
	it := sn.txn.NewIterator(opt)
	defer it.Close()
	list := &pb.KVList{}
	size := 0
	flush := func() error {
		if len(list.Kv) == 0 {
			return nil
		}
		b, err := proto.Marshal(list)
		if err != nil {
			return err
		}
		if err := binary.Write(bw, binary.LittleEndian, uint64(len(b))); err != nil {
			return err
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
		list.Kv, size = list.Kv[:0], 0
		return nil
	}
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("reading %q for snapshot: %w", item.Key(), err)
		}
		list.Kv = append(list.Kv, &pb.KV{Key: item.KeyCopy(nil), Value: v, Version: item.Version()})
		size += len(v) + len(item.Key())
		if size > 1<<20 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := binary.Write(bw, binary.LittleEndian, uint64(0)); err != nil { // the end mark
		return err
	}
	return bw.Flush()
}

// Release frees the pinned state.
func (sn *Snapshot) Release() { sn.txn.Discard() }

// Restore replaces the store's whole state with a snapshot stream. The new state is loaded aside and
// swapped in only when complete, so a corrupt or truncated stream leaves the store as it was.
func (s *Store) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return errors.New("restoring directory: not a Postern directory snapshot")
	}
	if s.dir == "" {
		return s.restoreMemory(br)
	}
	staging := filepath.Join(s.dir, "badger.restore")
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	ndb, err := openBadger(staging, Options{Logger: s.log})
	if err != nil {
		return err
	}
	if err := loadStream(ndb, br); err != nil {
		ndb.Close()
		os.RemoveAll(staging)
		return fmt.Errorf("restoring directory: %w", err)
	}
	applied, err := readApplied(ndb)
	if cerr := ndb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(staging)
		return fmt.Errorf("restoring directory: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	live := filepath.Join(s.dir, "badger")
	old := filepath.Join(s.dir, "badger.old")
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			return err
		}
		s.db = nil
	}
	os.RemoveAll(old)
	if err := os.Rename(live, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(staging, live); err != nil {
		return err
	}
	db, err := openBadger(live, Options{Logger: s.log})
	if err != nil {
		return err
	}
	s.db = db
	s.applied.Store(applied)
	return os.RemoveAll(old)
}

func (s *Store) restoreMemory(r io.Reader) error {
	ndb, err := openBadger("", Options{Logger: s.log})
	if err != nil {
		return err
	}
	if err := loadStream(ndb, r); err != nil {
		ndb.Close()
		return fmt.Errorf("restoring directory: %w", err)
	}
	applied, err := readApplied(ndb)
	if err != nil {
		ndb.Close()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		s.db.Close()
	}
	s.db = ndb
	s.applied.Store(applied)
	return nil
}

// loadStream checks the framing of the whole stream as it feeds Badger's loader, so a truncated stream is
// an error rather than a silently partial state.
func loadStream(db *badger.DB, r io.Reader) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := db.Load(pr, 256)
		pr.CloseWithError(err) // a Load that stops early must not leave copyFrames blocked on the pipe
		done <- err
	}()
	err := copyFrames(pw, r)
	pw.CloseWithError(err)
	lerr := <-done
	if lerr != nil {
		return lerr
	}
	return err
}

func copyFrames(w io.Writer, r io.Reader) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return errors.New("snapshot is truncated")
		}
		n := binary.LittleEndian.Uint64(hdr[:])
		if n == 0 { // the end mark: nothing may follow it
			if _, err := io.ReadFull(r, hdr[:1]); err != io.EOF {
				return errors.New("snapshot is corrupt (data after the end)")
			}
			return nil
		}
		if n > 1<<30 {
			return errors.New("snapshot is corrupt (frame too large)")
		}
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if m, err := io.CopyN(w, r, int64(n)); err != nil || m != int64(n) {
			return errors.New("snapshot is truncated")
		}
	}
}

func readApplied(db *badger.DB) (uint64, error) {
	var v uint64
	err := db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(keyApplied)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error {
			if len(b) != 8 {
				return errors.New("corrupt applied index")
			}
			v = binary.BigEndian.Uint64(b)
			return nil
		})
	})
	return v, err
}
