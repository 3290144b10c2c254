package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// The fsync baseline: what this disk gives a durable log, with nothing else in the way. Writers append
// fixed-size records to one preallocated file; a single committer takes whatever records are waiting (at most
// raft's MaxAppendEntries, as raft's leader does), writes them with one write and makes them durable with one
// fsync (group commit), then acknowledges each. It is the ceiling for raft on the same disk: raft-wal does the
// same per batch (write, fsync on a preallocated segment), plus framing, plus the state machine's apply.

const (
	fsyncRecordSize = 256
	fsyncMaxBatch   = 64 // hashicorp/raft's default MaxAppendEntries, which cluster keeps
	fsyncFileSize   = 64 << 20
)

// fsyncBaselineName names the baseline in the table.
func fsyncBaselineName(writers int) string {
	return fmt.Sprintf("raw fsync group commit (%d B records, ≤ %d per fsync, %d writers)", fsyncRecordSize, fsyncMaxBatch, writers)
}

type appendReq struct {
	rec  []byte
	done chan error
}

type groupCommitLog struct {
	f       *os.File
	off     int64
	reqs    chan *appendReq
	exited  chan struct{}
	fsyncs  atomic.Uint64
	records atomic.Uint64
}

// openGroupCommitLog creates the log file in dir, preallocated with real blocks (written zeros, not a sparse
// file), so that, as with raft-wal's preallocated segments, an fsync commits data and not a growing size.
func openGroupCommitLog(dir string) (*groupCommitLog, error) {
	f, err := os.OpenFile(filepath.Join(dir, "fsync-baseline.log"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating baseline log: %w", err)
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < fsyncFileSize; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			f.Close()
			return nil, fmt.Errorf("preallocating baseline log: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("preallocating baseline log: %w", err)
	}
	l := &groupCommitLog{f: f, reqs: make(chan *appendReq, fsyncMaxBatch), exited: make(chan struct{})}
	go l.commit()
	return l, nil
}

func (l *groupCommitLog) commit() {
	defer close(l.exited)
	batch := make([]*appendReq, 0, fsyncMaxBatch)
	buf := make([]byte, 0, fsyncMaxBatch*fsyncRecordSize)
	for first := range l.reqs {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < fsyncMaxBatch {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, r := range batch {
			buf = append(buf, r.rec...)
		}
		if l.off+int64(len(buf)) > fsyncFileSize {
			l.off = 0 // wrap: the file stays allocated, the content does not matter
		}
		_, err := l.f.WriteAt(buf, l.off)
		l.off += int64(len(buf))
		if err == nil {
			err = l.f.Sync()
		}
		l.fsyncs.Add(1)
		l.records.Add(uint64(len(batch)))
		for _, r := range batch {
			r.done <- err
		}
	}
}

// append returns once rec is durable.
func (l *groupCommitLog) append(r *appendReq) error {
	l.reqs <- r
	return <-r.done
}

// close stops the committer; no append may be in flight.
func (l *groupCommitLog) close() error {
	close(l.reqs)
	<-l.exited
	return l.f.Close()
}

// measureFsyncBaseline runs the baseline for d with the given number of writers in a fresh directory under
// parent.
func measureFsyncBaseline(ctx context.Context, cfg Config, parent string) (*measure, error) {
	dir, err := os.MkdirTemp(parent, "fsync-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	l, err := openGroupCommitLog(dir)
	if err != nil {
		return nil, err
	}
	m, err := closedLoop(ctx, cfg.Writers, cfg.Duration, func(w int) func(context.Context) error {
		r := &appendReq{rec: make([]byte, fsyncRecordSize), done: make(chan error, 1)}
		for i := range r.rec {
			r.rec[i] = byte(w + i)
		}
		return func(context.Context) error { return l.append(r) }
	})
	if cerr := l.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("measuring the fsync baseline: %w", err)
	}
	if f := l.fsyncs.Load(); f > 0 {
		cfg.logger().Info("fsync baseline", "records_per_s", int(m.perSecond()), "fsyncs_per_s",
			int(float64(f)/m.elapsed.Seconds()), "records_per_fsync", fmt.Sprintf("%.1f", float64(l.records.Load())/float64(f)))
	}
	return m, nil
}
