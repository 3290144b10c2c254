package directory

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func logLine(tenant, ext, msg string, at time.Time) ExtensionLogLine {
	return ExtensionLogLine{Tenant: tenant, Extension: ext, Time: at, Level: "info", Source: "log", Message: msg}
}

func extLog(node string, lines ...ExtensionLogLine) Op {
	return MakeOp(OpExtensionLog, ExtensionLog{Node: node, Lines: lines})
}

// extLogEvents is the tenant's audit events of extension log lines, oldest first.
func extLogEvents(t *testing.T, s *Store, tenant string) (logs, changes []AuditEvent) {
	t.Helper()
	evs := must[[]AuditEvent](t, "AuditEvents")(s.AuditEvents(tenant, 0))
	for _, e := range evs {
		if e.Action == OpExtensionLog {
			logs = append(logs, e)
		} else {
			changes = append(changes, e)
		}
	}
	return logs, changes
}

// TestExtensionLog: each line becomes an audit event of its tenant, with the time it was written (not
// the command's), the extension as actor and target, and the node that ran it. Lines of a tenant that
// does not exist are skipped, the rest kept.
func TestExtensionLog(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"), tenantCreate("beta"))
		ran := t0.Add(-time.Minute).Round(0)
		err := logLine("acme", "claims", "runtime said no", ran.Add(time.Second))
		err.Level, err.Source = "error", "host"
		res := f.ok(extLog("edge-1",
			logLine("acme", "claims", "hello", ran),
			logLine("gone", "claims", "from a deleted tenant", ran),
			logLine("beta", "otp", "beta's", ran),
			err))
		if got := output[ExtensionLogOutcome](t, res, 0); got != (ExtensionLogOutcome{Stored: 3, Skipped: 1}) {
			t.Errorf("outcome %+v, want 3 stored and 1 skipped", got)
		}
		if len(res.Changes) != 0 {
			t.Errorf("changes %+v: log lines invalidate no cache", res.Changes)
		}
		logs, changes := extLogEvents(t, s, "acme")
		if len(changes) != 1 || changes[0].Action != OpTenantCreate {
			t.Errorf("acme's change audits: %+v", changes)
		}
		want := []AuditEvent{
			{ID: fmt.Sprintf("%d-0", res.Index), Tenant: "acme", Time: ran, Actor: "extension:claims", Action: OpExtensionLog,
				Target: "claims", Index: res.Index, Level: "info", Message: "hello", Source: "log", Node: "edge-1"},
			{ID: fmt.Sprintf("%d-2", res.Index), Tenant: "acme", Time: ran.Add(time.Second), Actor: "extension:claims",
				Action: OpExtensionLog, Target: "claims", Index: res.Index, Level: "error", Message: "runtime said no",
				Source: "host", Node: "edge-1"},
		}
		if len(logs) != len(want) {
			t.Fatalf("acme's extension log events: %+v, want %+v", logs, want)
		}
		for i := range want {
			if !logs[i].Time.Equal(want[i].Time) {
				t.Errorf("event %d time %v, want %v", i, logs[i].Time, want[i].Time)
			}
			logs[i].Time = want[i].Time
			if logs[i] != want[i] {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, logs[i], want[i])
			}
		}
		if logs, _ := extLogEvents(t, s, "beta"); len(logs) != 1 || logs[0].Message != "beta's" || logs[0].Actor != "extension:otp" {
			t.Errorf("beta's extension log events: %+v", logs)
		}
		if keys := keysUnder(dump(t, s), "t/gone/"); len(keys) != 0 {
			t.Errorf("a line of a tenant that does not exist stored %v", keys)
		}

		// A batch of lines of deleted tenants only is no error.
		res = f.ok(extLog("edge-1", logLine("gone", "x", "a", ran)))
		if got := output[ExtensionLogOutcome](t, res, 0); got != (ExtensionLogOutcome{Skipped: 1}) {
			t.Errorf("outcome %+v, want 1 skipped", got)
		}
		// A line without a time takes the command's.
		res = f.ok(extLog("edge-1", logLine("acme", "claims", "no time", time.Time{})))
		if logs, _ := extLogEvents(t, s, "acme"); !logs[len(logs)-1].Time.Equal(t0.Add(time.Duration(res.Index) * time.Second)) {
			t.Errorf("a line without a time: %+v", logs[len(logs)-1])
		}

		// Deleting the tenant takes its extension log and sequence record along.
		f.ok(ref(OpTenantDelete, "", "acme"))
		if keys := keysUnder(dump(t, s), "t/acme/"); len(keys) != 0 {
			t.Errorf("tenant delete left %v", keys)
		}
		f.ok(tenantCreate("acme"))
		f.ok(extLog("edge-1", logLine("acme", "claims", "again", ran)))
		if logs, _ := extLogEvents(t, s, "acme"); len(logs) != 1 || logs[0].Message != "again" {
			t.Errorf("a re-created tenant's extension log: %+v", logs)
		}
	})
}

// TestExtensionLogRetention: a tenant keeps its newest ExtensionLogRetention extension log events, the
// oldest dropped first; its change audits and other tenants' lines stay.
func TestExtensionLogRetention(t *testing.T) {
	s := openMemoryStore(t)
	f := newFixture(t, s)
	f.ok(tenantCreate("acme"), tenantCreate("beta"))
	f.ok(userCreate("acme", "u1", "ann@acme.example"))
	f.ok(extLog("n1", logLine("beta", "x", "beta keeps this", t0)))
	const total = ExtensionLogRetention + 3*MaxExtensionLogLines/2
	for sent := 0; sent < total; {
		lines := make([]ExtensionLogLine, 0, MaxExtensionLogLines)
		for ; sent < total && len(lines) < MaxExtensionLogLines; sent++ {
			lines = append(lines, logLine("acme", "chatty", fmt.Sprintf("line %d", sent), t0))
		}
		f.ok(extLog("n1", lines...))
		if sent == MaxExtensionLogLines {
			f.ok(MakeOp(OpTenantUpdate, TenantPatch{ID: "acme", DisplayName: ptr("Acme")}))
		}
	}
	logs, changes := extLogEvents(t, s, "acme")
	if len(logs) != ExtensionLogRetention {
		t.Fatalf("%d extension log events kept, want %d", len(logs), ExtensionLogRetention)
	}
	if first, last := logs[0].Message, logs[len(logs)-1].Message; first != fmt.Sprintf("line %d", total-ExtensionLogRetention) ||
		last != fmt.Sprintf("line %d", total-1) {
		t.Errorf("kept lines %q … %q, want the newest %d", first, last, ExtensionLogRetention)
	}
	var actions []string
	for _, c := range changes {
		actions = append(actions, c.Action)
	}
	if got := strings.Join(actions, " "); got != "tenant.create user.create tenant.update" {
		t.Errorf("change audits %q: the extension log's retention dropped some", got)
	}
	if logs, _ := extLogEvents(t, s, "beta"); len(logs) != 1 {
		t.Errorf("beta's extension log: %+v", logs)
	}
	d := dump(t, s)
	if n := len(keysUnder(d, "t/acme/extlog/seq/")); n != ExtensionLogRetention {
		t.Errorf("%d index keys, want one per kept event", n)
	}
	if r := d[string(keyExtLogRing("acme"))]; r != fmt.Sprintf(`{"first":%d,"next":%d}`, total-ExtensionLogRetention, total) {
		t.Errorf("sequence record %s", r)
	}
	// The retention goes on from a snapshot restored elsewhere.
	restored := openMemoryStore(t)
	if err := restored.Restore(bytesReader(snapshotBytes(t, s))); err != nil {
		t.Fatal(err)
	}
	rf := newFixture(t, restored)
	rf.ok(extLog("n1", logLine("acme", "chatty", "after restore", t0)))
	if logs, _ := extLogEvents(t, restored, "acme"); len(logs) != ExtensionLogRetention ||
		logs[0].Message != fmt.Sprintf("line %d", total-ExtensionLogRetention+1) || logs[len(logs)-1].Message != "after restore" {
		t.Errorf("after a restore: %d events, %q … %q", len(logs), logs[0].Message, logs[len(logs)-1].Message)
	}
}

// TestExtensionLogLargestBatch: a batch at every bound fits one transaction of the smallest store.
func TestExtensionLogLargestBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"))
		ext := strings.Repeat("e", maxExtensionLogName)
		lines := make([]ExtensionLogLine, MaxExtensionLogLines)
		for i := range lines {
			// Every byte escaped in JSON: the largest encoding of the longest message.
			lines[i] = logLine("acme", ext, strings.Repeat("<", MaxExtensionLogMessage), t0)
		}
		res := f.ok(extLog(strings.Repeat("n", maxExtensionLogName), lines...), extLog("n", lines[:3]...))
		if got := output[ExtensionLogOutcome](t, res, 0); got.Stored != MaxExtensionLogLines {
			t.Errorf("outcome %+v", got)
		}
		if logs, _ := extLogEvents(t, s, "acme"); len(logs) != MaxExtensionLogLines+3 {
			t.Errorf("%d events stored", len(logs))
		}
	})
}

func TestExtensionLogRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(tenantCreate("acme"))
		ok := logLine("acme", "claims", "fine", t0)
		with := func(edit func(l *ExtensionLogLine)) ExtensionLogLine { l := ok; edit(&l); return l }
		many := make([]ExtensionLogLine, MaxExtensionLogLines+1)
		for i := range many {
			many[i] = ok
		}
		for name, tc := range map[string]struct {
			op   Op
			want string
		}{
			"no lines":       {extLog("n1"), "at least one line"},
			"too many lines": {extLog("n1", many...), "over the 100-line limit"},
			"long message": {extLog("n1", ok, with(func(l *ExtensionLogLine) { l.Message = strings.Repeat("x", MaxExtensionLogMessage+1) })),
				"line 2: message of 1025 bytes is over the 1024-byte limit"},
			"no tenant":    {extLog("n1", with(func(l *ExtensionLogLine) { l.Tenant = "" })), "tenant is required"},
			"no extension": {extLog("n1", with(func(l *ExtensionLogLine) { l.Extension = "" })), "extension id is required"},
			"bad level":    {extLog("n1", with(func(l *ExtensionLogLine) { l.Level = "fatal" })), `level "fatal"`},
			"bad source":   {extLog("n1", with(func(l *ExtensionLogLine) { l.Source = "disk" })), `source "disk"`},
			"long node":    {extLog(strings.Repeat("n", 300), ok), "node id is over 256 bytes"},
			"unknown field": {Op{Kind: OpExtensionLog, Body: []byte(`{"node":"n1","lines":[{"tenant":"acme","extension":"x",` +
				`"level":"info","source":"log","message":"m","secret":"y"}]}`)}, "malformed"},
		} {
			t.Run(name, func(t *testing.T) {
				// With a good op before it: the whole command is refused.
				e := f.refused(CodeInvalid, extLog("n1", ok), tc.op)
				if !strings.Contains(e.Message, tc.want) {
					t.Errorf("refusal %q, want it to say %q", e.Message, tc.want)
				}
			})
		}
	})
}

// TestExtensionLogAuditNumbering: one command numbers its audit events in four digits, so lines that
// would take it past 9999 are refused.
func TestExtensionLogAuditNumbering(t *testing.T) {
	s := openMemoryStore(t)
	newFixture(t, s).ok(tenantCreate("acme"))
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	a := &applier{txn: txn, cmd: NewCommand(t0, "n1"), index: 9, audits: maxAuditsPerCommand - 2}
	line := logLine("acme", "claims", "fine", t0)
	if _, err := applyExtensionLog(a, MakeOp(OpExtensionLog, ExtensionLog{Lines: []ExtensionLogLine{line, line, line}}).Body); err == nil ||
		!strings.Contains(err.Error(), "at most 9999 audit events") {
		t.Errorf("three lines after 9997 audit events: %v", err)
	}
	if _, err := applyExtensionLog(a, MakeOp(OpExtensionLog, ExtensionLog{Lines: []ExtensionLogLine{line, line}}).Body); err != nil {
		t.Errorf("two lines after 9997 audit events: %v", err)
	}
	if a.audits != maxAuditsPerCommand {
		t.Errorf("%d audit events numbered", a.audits)
	}
}
