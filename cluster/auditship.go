package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"postern.dev/postern/directory"
)

// Proposer replicates a command: *Node. It may block (for at most its context) and may fail; the
// AuditShipper calls it from its own goroutine only.
type Proposer interface {
	Propose(ctx context.Context, cmd directory.Command) (*directory.Result, error)
}

var _ Proposer = (*Node)(nil) // Interface guard.

// AuditShipperConfig tunes an AuditShipper. Zero fields take the defaults below.
type AuditShipperConfig struct {
	// Node is this node's id, recorded with every line it ships.
	Node string
	// Proposer takes the batches: the node itself, which forwards them to the leader.
	Proposer Proposer
	// Log receives the shipper's warnings (lines lost, at most one warning a minute). Nil discards them.
	Log *slog.Logger
	// Rate and Burst bound the lines one tenant's extensions may ship from this node: Rate lines a second
	// (default 100), Burst at once (default 200). Lines over it are dropped and reported to the tenant as
	// one line per flush.
	Rate  float64
	Burst int
	// Queue bounds the lines waiting for the next flush (default 2000); lines beyond it are dropped and
	// reported the same way.
	Queue int
	// Interval is the time between flushes (default 1 s); a flush starts sooner when a batch's worth of
	// lines (directory.MaxExtensionLogLines) is waiting.
	Interval time.Duration
	// Timeout bounds proposing one batch (default 5 s).
	Timeout time.Duration
}

// warnEvery spaces the shipper's warnings about lines it lost: with no leader, every flush fails.
const warnEvery = time.Minute

// AuditShipper carries extensions' log lines into their tenants' audits (directory.OpExtensionLog): it
// queues them in memory, bounded, and proposes them in batches from its own goroutine. The extension's
// call only queues, so it never waits on raft; when the cluster cannot take a write (no leader), the
// lines are lost, counted, and warned about, and the node goes on serving.
//
// Concurrency: every method may be called from any goroutine. Lines shipped after Close are dropped.
type AuditShipper struct {
	cfg  AuditShipperConfig
	log  *slog.Logger
	now  func() time.Time
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	closed  bool
	queue   []directory.ExtensionLogLine
	buckets map[string]*tokenBucket // by tenant
	dropped map[dropKey]int         // lines dropped since the last flush, reported to the tenant
	stats   AuditShipperStats       // totals
	lost    int                     // lines lost since the last warning
	lastErr error                   // why, the last time
	warned  time.Time               // the last warning
}

// AuditShipperStats are an AuditShipper's totals, in lines.
type AuditShipperStats struct {
	// Shipped lines were committed to the directory (including those of tenants since deleted, which
	// the directory skips).
	Shipped uint64
	// RateLimited and QueueFull lines were dropped before shipping, and reported to their tenants.
	RateLimited, QueueFull uint64
	// Lost lines were in batches the cluster did not take (no leader, a timeout), or that it refused.
	Lost uint64
}

type dropKey struct {
	tenant, extension string
	full              bool // the queue was full, else the tenant's rate was spent
}

// NewAuditShipper starts a shipper; Close stops it.
func NewAuditShipper(cfg AuditShipperConfig) *AuditShipper { return newAuditShipper(cfg, time.Now) }

// newAuditShipper is NewAuditShipper on a clock of the caller's (tests).
func newAuditShipper(cfg AuditShipperConfig, now func() time.Time) *AuditShipper {
	setDefault(&cfg.Rate, 100)
	setDefault(&cfg.Burst, 200)
	setDefault(&cfg.Queue, 2000)
	setDefault(&cfg.Interval, time.Second)
	setDefault(&cfg.Timeout, 5*time.Second)
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &AuditShipper{
		cfg: cfg, log: log, now: now,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		buckets: map[string]*tokenBucket{}, dropped: map[dropKey]int{},
	}
	go s.run()
	return s
}

func setDefault[T int | float64 | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Ship queues one call's lines. It never blocks on the cluster: lines over the tenant's rate or the
// queue's bound are dropped and counted.
func (s *AuditShipper) Ship(lines []directory.ExtensionLogLine) {
	if len(lines) == 0 {
		return
	}
	now := s.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	for _, l := range lines {
		b := s.buckets[l.Tenant]
		if b == nil {
			b = &tokenBucket{tokens: float64(s.cfg.Burst), at: now}
			s.buckets[l.Tenant] = b
		}
		switch {
		case !b.take(now, s.cfg.Rate, s.cfg.Burst):
			s.dropped[dropKey{l.Tenant, l.Extension, false}]++
			s.stats.RateLimited++
		case len(s.queue) >= s.cfg.Queue:
			s.dropped[dropKey{l.Tenant, l.Extension, true}]++
			s.stats.QueueFull++
		default:
			s.queue = append(s.queue, l)
		}
	}
	full := len(s.queue) >= directory.MaxExtensionLogLines
	s.mu.Unlock()
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// Close ships what is queued (each batch within Timeout) and stops. Lines shipped after it are dropped.
func (s *AuditShipper) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// Stats reports the shipper's totals.
func (s *AuditShipper) Stats() AuditShipperStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *AuditShipper) run() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.kick:
		case <-s.stop:
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			s.flush()
			s.mu.Lock()
			if s.lost > 0 {
				s.log.Warn("extension log lines lost: the cluster did not take them", "lines", s.lost, "error", s.lastErr)
			}
			s.mu.Unlock()
			return
		}
		s.flush()
	}
}

// flush proposes the queued lines, and a line for each tenant's extension whose lines were dropped, in
// batches the directory takes.
func (s *AuditShipper) flush() {
	now := s.now()
	s.mu.Lock()
	lines := s.queue
	s.queue = nil
	for k, n := range s.dropped {
		msg := fmt.Sprintf("%d log lines dropped: node %s ships at most %g lines a second (bursts of %d) for a tenant",
			n, s.cfg.Node, s.cfg.Rate, s.cfg.Burst)
		if k.full {
			msg = fmt.Sprintf("%d log lines dropped: node %s already had %d lines waiting to be shipped", n, s.cfg.Node, s.cfg.Queue)
		}
		lines = append(lines, directory.ExtensionLogLine{Tenant: k.tenant, Extension: k.extension, Time: now,
			Level: "warn", Source: "host", Message: msg})
	}
	clear(s.dropped)
	// Forget the tenants whose bucket is full again: the map holds only those that logged lately.
	for t, b := range s.buckets {
		if b.full(now, s.cfg.Rate, s.cfg.Burst) {
			delete(s.buckets, t)
		}
	}
	s.mu.Unlock()

	batch := make([]directory.ExtensionLogLine, 0, min(len(lines), directory.MaxExtensionLogLines))
	for len(lines) > 0 {
		batch, lines = s.fill(batch[:0], lines)
		if len(batch) == 0 {
			break
		}
		if err := s.propose(batch, now); err != nil {
			// The next batch would most likely wait as long and fail the same way: with a leader that
			// does not answer, a flush costs one Timeout, not one per batch.
			s.lose(len(batch)+len(lines), err, now)
			break
		}
	}
}

// fill moves lines into batch until it holds a batch's worth, and returns it and the lines left. Each
// line is made one the directory takes, or left out: one it would refuse would take its batch with it.
func (s *AuditShipper) fill(batch, lines []directory.ExtensionLogLine) (_, rest []directory.ExtensionLogLine) {
	for len(lines) > 0 && len(batch) < directory.MaxExtensionLogLines {
		l := lines[0]
		lines = lines[1:]
		l.Message = fitMessage(l.Message)
		if l.Check() != nil {
			s.mu.Lock()
			s.stats.Lost++
			s.mu.Unlock()
			continue
		}
		batch = append(batch, l)
	}
	return batch, lines
}

func (s *AuditShipper) propose(lines []directory.ExtensionLogLine, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	cmd := directory.NewCommand(now, "node:"+s.cfg.Node,
		directory.MakeOp(directory.OpExtensionLog, directory.ExtensionLog{Node: s.cfg.Node, Lines: lines}))
	if _, err := s.cfg.Proposer.Propose(ctx, cmd); err != nil {
		return err
	}
	s.mu.Lock()
	s.stats.Shipped += uint64(len(lines))
	s.mu.Unlock()
	return nil
}

// lose counts n lines the cluster did not take, and warns, at most once every warnEvery.
func (s *AuditShipper) lose(n int, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Lost += uint64(n)
	s.lost += n
	s.lastErr = err
	if s.warned.IsZero() || now.Sub(s.warned) >= warnEvery {
		s.log.Warn("extension log lines lost: the cluster did not take them", "lines", s.lost, "error", s.lastErr)
		s.warned, s.lost = now, 0
	}
}

// fitMessage makes a message one the directory takes: valid UTF-8 (JSON would replace bad bytes, and
// could make it longer), cut to directory.MaxExtensionLogMessage bytes at a character boundary.
func fitMessage(m string) string {
	m = strings.ToValidUTF8(m, "\uFFFD")
	if len(m) <= directory.MaxExtensionLogMessage {
		return m
	}
	m = m[:directory.MaxExtensionLogMessage]
	for len(m) > 0 && !utf8.ValidString(m) {
		m = m[:len(m)-1]
	}
	return m
}

// tokenBucket is one tenant's allowance of lines: it refills at the rate, up to the burst.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

func (b *tokenBucket) refill(now time.Time, rate float64, burst int) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
		b.at = now
	}
}

func (b *tokenBucket) take(now time.Time, rate float64, burst int) bool {
	b.refill(now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *tokenBucket) full(now time.Time, rate float64, burst int) bool {
	b.refill(now, rate, burst)
	return b.tokens >= float64(burst)
}
