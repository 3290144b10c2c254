package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"postern.dev/postern/directory"
)

// fakeProposer records the extension log batches proposed to it. When gate is set, each proposal waits
// for a value from it (or its context); err fails them all.
type fakeProposer struct {
	mu      sync.Mutex
	batches []directory.ExtensionLog
	cmds    []directory.Command
	err     error
	gate    chan struct{}
}

func (p *fakeProposer) Propose(ctx context.Context, cmd directory.Command) (*directory.Result, error) {
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	if len(cmd.Ops) != 1 || cmd.Ops[0].Kind != directory.OpExtensionLog {
		return nil, fmt.Errorf("unexpected command %+v", cmd)
	}
	var b directory.ExtensionLog
	if err := json.Unmarshal(cmd.Ops[0].Body, &b); err != nil {
		return nil, err
	}
	p.batches = append(p.batches, b)
	p.cmds = append(p.cmds, cmd)
	return &directory.Result{Index: uint64(len(p.batches))}, nil
}

// lines is every line proposed so far, in order.
func (p *fakeProposer) lines() []directory.ExtensionLogLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []directory.ExtensionLogLine
	for _, b := range p.batches {
		out = append(out, b.Lines...)
	}
	return out
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var shipT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// shipperFor makes a shipper on a fake clock that flushes only when a batch is full or it is closed.
func shipperFor(t *testing.T, p Proposer, edit func(*AuditShipperConfig)) (*AuditShipper, *fakeClock) {
	cfg := AuditShipperConfig{Node: "edge-1", Proposer: p, Interval: time.Hour, Timeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	clock := &fakeClock{now: shipT0}
	s := newAuditShipper(cfg, clock.Now)
	t.Cleanup(s.Close)
	return s, clock
}

func callLines(tenant, ext string, n int, prefix string) []directory.ExtensionLogLine {
	out := make([]directory.ExtensionLogLine, n)
	for i := range out {
		out[i] = directory.ExtensionLogLine{Tenant: tenant, Extension: ext, Time: shipT0, Level: "info", Source: "log",
			Message: fmt.Sprintf("%s %d", prefix, i)}
	}
	return out
}

// hostLines are the host's own lines among lines, by tenant.
func hostLines(lines []directory.ExtensionLogLine) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		if l.Source == "host" {
			out[l.Tenant] = append(out[l.Tenant], l.Message)
		}
	}
	return out
}

// TestAuditShipperBatches: lines go out in batches the directory takes, in order, with the node's id;
// a full batch goes at once, the rest when the shipper is closed.
func TestAuditShipperBatches(t *testing.T) {
	p := &fakeProposer{}
	s, _ := shipperFor(t, p, func(c *AuditShipperConfig) { c.Rate, c.Burst = 1e6, 1000 })
	for i := range 25 {
		s.Ship(callLines("acme", "claims", 10, fmt.Sprintf("call %d line", i)))
	}
	waitFor(t, 5*time.Second, "the full batches to go out", func() bool { return len(p.lines()) >= 200 })
	s.Close()
	got := p.lines()
	if len(got) != 250 {
		t.Fatalf("%d lines proposed, want 250", len(got))
	}
	for i, l := range got {
		if want := fmt.Sprintf("call %d line %d", i/10, i%10); l.Message != want {
			t.Fatalf("line %d is %q, want %q: lines out of order", i, l.Message, want)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.batches {
		if len(b.Lines) > directory.MaxExtensionLogLines || b.Node != "edge-1" || p.cmds[i].Actor != "node:edge-1" {
			t.Errorf("batch %d: %d lines from node %q, actor %q", i, len(b.Lines), b.Node, p.cmds[i].Actor)
		}
	}
	if st := s.Stats(); st != (AuditShipperStats{Shipped: 250}) {
		t.Errorf("stats %+v", st)
	}
	if len(p.batches) < 3 {
		t.Errorf("%d batches for 250 lines", len(p.batches))
	}
	// After Close lines are dropped, and nothing waits.
	s.Ship(callLines("acme", "claims", 1, "late"))
	if st := s.Stats(); st != (AuditShipperStats{Shipped: 250}) {
		t.Errorf("stats after a line shipped late %+v", st)
	}
}

// TestAuditShipperRateLimit: each tenant has its own allowance of lines, refilled with time; the
// lines over it are dropped and the tenant told how many, once per extension per flush.
func TestAuditShipperRateLimit(t *testing.T) {
	p := &fakeProposer{}
	s, clock := shipperFor(t, p, func(c *AuditShipperConfig) { c.Rate, c.Burst = 10, 20 })
	s.Ship(callLines("acme", "chatty", 50, "a"))
	s.Ship(callLines("beta", "quiet", 15, "b"))
	clock.advance(time.Second)
	s.Ship(callLines("acme", "chatty", 15, "a2"))
	s.Ship(callLines("acme", "other", 1, "o"))
	s.Close()

	byTenant := map[string]int{}
	for _, l := range p.lines() {
		if l.Source != "host" {
			byTenant[l.Tenant+"/"+l.Extension]++
		}
	}
	if want := map[string]int{"acme/chatty": 30, "beta/quiet": 15}; fmt.Sprint(byTenant) != fmt.Sprint(want) {
		t.Errorf("lines shipped %v, want %v", byTenant, want)
	}
	host := hostLines(p.lines())
	want := "35 log lines dropped: node edge-1 ships at most 10 lines a second (bursts of 20) for a tenant"
	if len(host["acme"]) != 2 || !strings.Contains(strings.Join(host["acme"], "\n"), want) || len(host["beta"]) != 0 {
		t.Errorf("the host's lines %q, want acme told %q and of other's line", host, want)
	}
	for _, l := range p.lines() {
		if l.Source == "host" && (l.Level != "warn" || !l.Time.Equal(shipT0.Add(time.Second))) {
			t.Errorf("report line %+v, want a warning at the flush's time", l)
		}
	}
	if st := s.Stats(); st.RateLimited != 36 || st.Shipped != 45+2 {
		t.Errorf("stats %+v, want 36 rate-limited and 47 shipped", st)
	}
}

// TestAuditShipperQueueBound: the queue holds at most Queue lines; the rest are dropped and reported.
func TestAuditShipperQueueBound(t *testing.T) {
	p := &fakeProposer{}
	s, _ := shipperFor(t, p, func(c *AuditShipperConfig) { c.Queue, c.Rate, c.Burst = 50, 1e6, 1000 })
	s.Ship(callLines("acme", "claims", 40, "a"))
	s.Ship(callLines("acme", "claims", 30, "b"))
	s.Close()
	lines := p.lines()
	if len(lines) != 51 {
		t.Fatalf("%d lines, want 50 and a report", len(lines))
	}
	if got := hostLines(lines)["acme"]; len(got) != 1 || !strings.HasPrefix(got[0], "20 log lines dropped: node edge-1 already had 50 lines waiting") {
		t.Errorf("report %q", got)
	}
	if st := s.Stats(); st.QueueFull != 20 {
		t.Errorf("stats %+v", st)
	}
}

// TestAuditShipperNoLeader: when the cluster takes no writes, lines are lost and counted, the node warns
// (once a minute, not once a batch), and Ship still returns at once.
func TestAuditShipperNoLeader(t *testing.T) {
	p := &fakeProposer{err: ErrNoLeader}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logBuf.Write(b)
	}), nil))
	s, clock := shipperFor(t, p, func(c *AuditShipperConfig) { c.Log = log })
	for range 3 {
		s.Ship(callLines("acme", "claims", 5, "x"))
		s.flush()
		clock.advance(10 * time.Second)
	}
	logMu.Lock()
	if n := strings.Count(logBuf.String(), "extension log lines lost"); n != 1 {
		t.Errorf("%d warnings in 30 s, want 1:\n%s", n, logBuf.String())
	}
	logMu.Unlock()
	clock.advance(time.Minute)
	s.Ship(callLines("acme", "claims", 5, "x"))
	s.flush()
	logMu.Lock()
	if !strings.Contains(logBuf.String(), "lines=15 error") || strings.Count(logBuf.String(), "extension log lines lost") != 2 {
		t.Errorf("the next warning should count the 15 lines lost since the first:\n%s", logBuf.String())
	}
	logMu.Unlock()
	if st := s.Stats(); st.Lost != 20 || st.Shipped != 0 {
		t.Errorf("stats %+v", st)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestAuditShipperNeverBlocks: while a proposal hangs (a leader that does not answer), Ship returns at
// once, and Close gives up on it after Timeout.
func TestAuditShipperNeverBlocks(t *testing.T) {
	p := &fakeProposer{gate: make(chan struct{})}
	s, _ := shipperFor(t, p, func(c *AuditShipperConfig) { c.Rate, c.Burst, c.Timeout = 1e6, 10000, 200*time.Millisecond })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			s.Ship(callLines("acme", "claims", 50, "x"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Ship blocked while a proposal hung")
	}
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v", took)
	}
	// The lost lines include the host's reports of the dropped ones.
	if st := s.Stats(); st.Shipped != 0 || st.QueueFull == 0 || st.Lost+st.QueueFull <= 5000 {
		t.Errorf("stats %+v: want every line lost or dropped", st)
	}
}

// TestAuditShipperFitsLines: messages are cut to what the directory takes, at a character boundary and
// as valid UTF-8; a line the directory would refuse is left out, not its whole batch.
func TestAuditShipperFitsLines(t *testing.T) {
	p := &fakeProposer{}
	s, _ := shipperFor(t, p, nil)
	long := callLines("acme", "claims", 1, "")[0]
	long.Message = strings.Repeat("é", directory.MaxExtensionLogMessage) // two bytes each
	bad := long
	bad.Message = "bad\xffbytes"
	refused := long
	refused.Level = "loud"
	s.Ship([]directory.ExtensionLogLine{long, bad, refused})
	s.Close()
	got := p.lines()
	if len(got) != 2 {
		t.Fatalf("%d lines shipped, want the long and the bad one", len(got))
	}
	if m := got[0].Message; len(m) != directory.MaxExtensionLogMessage || !utf8.ValidString(m) {
		t.Errorf("the long message: %d bytes, valid %v", len(m), utf8.ValidString(m))
	}
	if got[1].Message != "bad\uFFFDbytes" {
		t.Errorf("the bad message: %q", got[1].Message)
	}
	for _, l := range got {
		if err := l.Check(); err != nil {
			t.Errorf("shipped a line the directory refuses: %v", err)
		}
	}
	if st := s.Stats(); st.Lost != 1 {
		t.Errorf("stats %+v, want the refused line counted lost", st)
	}
}

// TestAuditShipperThroughCluster: an edge (a non-voter) ships its lines through the leader into every
// replica's audit of the tenant; with no leader they are lost and the edge goes on.
func TestAuditShipperThroughCluster(t *testing.T) {
	g := newGroup(t, 1, 1)
	leader, edge := g.nodes[0], g.nodes[1]
	if _, err := leader.Propose(ctxT(t), cmd(tenantOp("acme"))); err != nil {
		t.Fatal(err)
	}
	s := NewAuditShipper(AuditShipperConfig{Node: edge.ID(), Proposer: edge, Interval: 20 * time.Millisecond})
	t.Cleanup(s.Close)
	s.Ship(callLines("acme", "claims", 3, "hello"))
	s.Ship(callLines("gone", "claims", 1, "nobody"))
	for _, n := range g.nodes {
		waitFor(t, 10*time.Second, n.ID()+" to hold the lines", func() bool {
			evs, _ := n.Store().AuditEvents("acme", 0)
			var got []string
			for _, e := range evs {
				if e.Action == directory.OpExtensionLog && e.Node == edge.ID() && e.Actor == "extension:claims" {
					got = append(got, e.Message)
				}
			}
			return strings.Join(got, ",") == "hello 0,hello 1,hello 2"
		})
	}
	waitFor(t, 5*time.Second, "the stats", func() bool { return s.Stats().Shipped == 4 })

	leader.Close()
	waitFor(t, 10*time.Second, "the edge to see no leader", func() bool { _, addr := edge.Leader(); return addr == "" })
	start := time.Now()
	s.Ship(callLines("acme", "claims", 2, "lost"))
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Ship took %v without a leader", took)
	}
	waitFor(t, 10*time.Second, "the lines to be counted lost", func() bool { return s.Stats().Lost == 2 })
	if _, err := edge.Store().Tenant("acme"); err != nil {
		t.Errorf("the edge's local reads without a leader: %v", err)
	}
}
