package wasm

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

// audits collects what Config.Audit is handed.
type audits struct {
	mu   sync.Mutex
	logs []CallLog
}

func (a *audits) hook(l CallLog) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logs = append(a.logs, l)
}

// take returns the calls' logs so far and forgets them.
func (a *audits) take() []CallLog {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.logs
	a.logs = nil
	return l
}

func newAuditHarness(t *testing.T) (*harness, *audits) {
	a := &audits{}
	return newHarness(t, func(c *Config) { c.Audit = a.hook }), a
}

// takeOne is the single CallLog the last call handed over.
func (a *audits) takeOne(t *testing.T) CallLog {
	t.Helper()
	logs := a.take()
	if len(logs) != 1 {
		t.Fatalf("%d call logs, want 1: %+v", len(logs), logs)
	}
	return logs[0]
}

// TestAuditLines: a call's log lines (log, stdout) reach Config.Audit once, when it ends, in order and
// as cut for the node's log; a call that logs nothing makes no call.
func TestAuditLines(t *testing.T) {
	h, a := newAuditHarness(t)
	ext := h.ext("acme", "probe", guest(t, "testdata/probe"))
	h.mustInvoke(t, ext, `{}`) // the instance's start and a first call: whatever they logged
	a.take()

	start := time.Now()
	h.mustInvoke(t, ext, `{"log":2,"stdout":1}`)
	l := a.takeOne(t)
	if l.Tenant != "acme" || l.Extension != "probe" || l.Dropped != 0 {
		t.Errorf("call log of %s/%s, %d dropped", l.Tenant, l.Extension, l.Dropped)
	}
	if len(l.Lines) != 3 {
		t.Fatalf("lines %+v, want 2 of log and 1 of stdout", l.Lines)
	}
	for i, want := range []struct{ source, prefix string }{{"log", "line 0 xxx"}, {"log", "line 1 xxx"}, {"stdout", "stdout line 0"}} {
		got := l.Lines[i]
		if got.Source != want.source || !strings.HasPrefix(got.Message, want.prefix) || got.Level != slog.LevelInfo ||
			got.Time.Before(start) || got.Time.After(time.Now()) {
			t.Errorf("line %d: %+v, want %s at info from %s, written during the call", i, got, want.prefix, want.source)
		}
		if len(got.Message) > h.cfg.LogLineBytes {
			t.Errorf("line %d of %d bytes, over LogLineBytes", i, len(got.Message))
		}
	}
	// The node's log has them too.
	wantContains(t, h.log.String(), `"msg":"stdout line 0","tenant":"acme","extension":"probe","source":"stdout"`)

	h.mustInvoke(t, ext, `{}`)
	if logs := a.take(); len(logs) != 0 {
		t.Errorf("a call that logged nothing handed over %+v", logs)
	}
}

// TestAuditDropped: lines over the call's budget are counted, and the count is one warning line of the
// host's.
func TestAuditDropped(t *testing.T) {
	h, a := newAuditHarness(t)
	ext := h.ext("acme", "probe", guest(t, "testdata/probe"))
	h.mustInvoke(t, ext, `{}`)
	a.take()
	h.mustInvoke(t, ext, `{"log":100}`)
	l := a.takeOne(t)
	kept := h.cfg.LogCallBytes / h.cfg.LogLineBytes // each line is cut to LogLineBytes
	if l.Dropped != 100-kept || len(l.Lines) != kept+1 {
		t.Fatalf("%d lines and %d dropped, want %d and %d", len(l.Lines), l.Dropped, kept+1, 100-kept)
	}
	last := l.Lines[len(l.Lines)-1]
	if want := fmt.Sprintf("%d log lines dropped", 100-kept); last.Source != "host" || last.Level != slog.LevelWarn ||
		!strings.HasPrefix(last.Message, want) {
		t.Errorf("the last line %+v, want the host's warning %q", last, want)
	}

	// Short lines within the byte budget stop at MaxAuditLines.
	h.mustInvoke(t, ext, `{"stdout":300}`)
	l = a.takeOne(t)
	if l.Dropped != 300-MaxAuditLines || len(l.Lines) != MaxAuditLines+1 || l.Lines[MaxAuditLines-1].Message != "stdout line 255" {
		t.Errorf("%d lines and %d dropped of 300 short ones, want %d kept", len(l.Lines), l.Dropped, MaxAuditLines)
	}
}

// TestAuditRuntimeFailure: when the runtime ends a call (a trap, a timeout, a Go guest's panic), the
// tenant learns it from an error line of the host's, after what the guest wrote.
func TestAuditRuntimeFailure(t *testing.T) {
	h, a := newAuditHarness(t)
	hostLine := func(t *testing.T, l CallLog, want string) {
		t.Helper()
		last := l.Lines[len(l.Lines)-1]
		if last.Source != "host" || last.Level != slog.LevelError || !strings.Contains(last.Message, want) {
			t.Errorf("the last line %+v, want the host's error saying %q", last, want)
		}
	}
	t.Run("trap", func(t *testing.T) {
		ext := h.ext("evil", "trap", abiModule(1, 1, opUnreachable).bytes())
		if _, err := h.invoke(t, ext, `{}`); err == nil {
			t.Fatal("the call succeeded")
		}
		l := a.takeOne(t)
		if l.Tenant != "evil" || l.Extension != "trap" || len(l.Lines) != 1 {
			t.Fatalf("call log %+v", l)
		}
		hostLine(t, l, "extension trapped: extension evil/trap")
	})
	t.Run("timeout", func(t *testing.T) {
		ext := h.ext("evil", "loop", abiModule(1, 1, opLoop, br(0), opEnd, opUnreachable).bytes())
		ext.Timeout = directory.Duration(50 * time.Millisecond)
		if _, err := h.invoke(t, ext, `{}`); err == nil {
			t.Fatal("the call succeeded")
		}
		hostLine(t, a.takeOne(t), "ran past its 50ms timeout")
	})
	t.Run("panic", func(t *testing.T) {
		ext := h.ext("evil", "panic", guest(t, "testdata/probe"))
		h.mustInvoke(t, ext, `{}`)
		a.take()
		if _, err := h.invoke(t, ext, `{"panic":true}`); err == nil {
			t.Fatal("the call succeeded")
		}
		l := a.takeOne(t)
		var stderr string
		for _, line := range l.Lines {
			if line.Source == "stderr" {
				stderr += line.Message
			}
		}
		wantContains(t, stderr, "probe: asked to panic")
		hostLine(t, l, "extension trapped")
	})
	t.Run("bad answer", func(t *testing.T) {
		ext := h.ext("evil", "notjson", constModule(`{"a":`))
		if _, err := h.invoke(t, ext, `{}`); err == nil {
			t.Fatal("the call succeeded")
		}
		hostLine(t, a.takeOne(t), "its answer is not JSON")
	})
}

// TestAuditCostsNothing: with the hook set, a call that logs nothing allocates no more than without it.
func TestAuditCostsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("counts allocations, which the race detector adds: make test runs it again without -race")
	}
	input := []byte(`{"type":"x","data":{}}`)
	ctx := context.Background()
	warmCall := func(edit func(*Config)) func() {
		h := newHarness(t, edit)
		ext := h.ext("acme", "echo", echoModule())
		h.mustInvoke(t, ext, string(input))
		call := func() {
			if _, err := h.Invoke(ctx, ext, input); err != nil {
				t.Fatal(err)
			}
		}
		for range 500 {
			call()
		}
		return call
	}
	without := warmCall(nil)
	with := warmCall(func(c *Config) { c.Audit = func(CallLog) { t.Error("the hook was called") } })
	// AllocsPerRun counts the whole process's allocations: the least of a few runs, taken in turns, is
	// the call's own.
	leastWith, leastWithout := math.Inf(1), math.Inf(1)
	for range 10 {
		leastWithout = min(leastWithout, testing.AllocsPerRun(100, without))
		leastWith = min(leastWith, testing.AllocsPerRun(100, with))
	}
	if leastWith > leastWithout {
		t.Errorf("%v allocations a call with the hook, %v without", leastWith, leastWithout)
	}
}

// TestAuditLinesForDirectory: a CallLog becomes lines the directory takes, levels by name.
func TestAuditLinesForDirectory(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l := CallLog{Tenant: "acme", Extension: "claims", Lines: []LogLine{
		{Time: at, Level: logLevel(0), Message: "d", Source: "log"},
		{Time: at, Level: logLevel(1), Message: "i", Source: "stdout"},
		{Time: at, Level: logLevel(2), Message: "w", Source: "stderr"},
		{Time: at, Level: logLevel(7), Message: "e", Source: "host"},
	}}
	got := l.AuditLines()
	for i, want := range []string{"debug", "info", "warn", "error"} {
		g := got[i]
		if g.Level != want || g.Tenant != "acme" || g.Extension != "claims" || !g.Time.Equal(at) || g.Source != l.Lines[i].Source ||
			g.Message != l.Lines[i].Message {
			t.Errorf("line %d: %+v, want level %s and the line's fields", i, g, want)
		}
		if err := g.Check(); err != nil {
			t.Errorf("line %d: the directory would refuse it: %v", i, err)
		}
	}
}
