package directory

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Extension log lines are audit events of their tenant, so a tenant's operators read what their
// extensions said where they read who changed what. Extensions may be chatty and change audits must be
// kept, so each tenant keeps only its newest ExtensionLogRetention extension log events: a sequence
// record and one index key per kept event (sequence number → audit key) let Apply find and drop the
// oldest in O(1) per line, the same on every replica.

// OpExtensionLog appends extension log lines to their tenants' audits.
const OpExtensionLog = "extension.log"

// Bounds of one extension.log op. They keep the op inside one Badger transaction of the smallest store
// (about 1.2 MiB for an in-memory one) even when every byte of every message is escaped in JSON (six
// bytes for one); the node that ships lines splits and cuts them to fit.
const (
	// MaxExtensionLogLines bounds the lines of one op.
	MaxExtensionLogLines = 100
	// MaxExtensionLogMessage bounds one line's message, in bytes: the runtime's default cut of a guest's
	// line (wasm.Config.LogLineBytes).
	MaxExtensionLogMessage = 1 << 10
	// maxExtensionLogName bounds the node and extension names a line carries.
	maxExtensionLogName = 256
)

// ExtensionLogRetention is how many extension log events a tenant's audit keeps; each new one beyond it
// drops the oldest. 10,000 lines of at most 1 KiB bound a tenant's share at about 13 MiB on every
// replica, and at the shipping rate of one node (100 lines/s) it is the last couple of minutes of a
// flood, or days of an extension that logs now and then. Change audits are never dropped by it.
const ExtensionLogRetention = 10_000

// maxAuditsPerCommand is how many audit events one command can write: their keys number them in four
// digits (keyAudit), and a fifth would sort out of order.
const maxAuditsPerCommand = 9999

// ExtensionLog is a batch of extension log lines one node ran, shipped to the tenants' audits. Lines of
// a tenant that no longer exists are skipped.
type ExtensionLog struct {
	// Node is the id of the node that ran the calls.
	Node  string             `json:"node"`
	Lines []ExtensionLogLine `json:"lines"`
}

// ExtensionLogLine is one line an extension's call wrote, or one the host wrote about the call.
type ExtensionLogLine struct {
	Tenant    string `json:"tenant"`
	Extension string `json:"extension"`
	// Time is when the line was written, on the node that ran the call; it becomes the event's time.
	Time time.Time `json:"time"`
	// Level is debug, info, warn or error.
	Level string `json:"level"`
	// Source is log (the log host function), stdout, stderr, or host: a line Postern wrote about the call
	// (it failed, lines were dropped).
	Source  string `json:"source"`
	Message string `json:"message"`
}

// ExtensionLogOutcome is the output of extension.log.
type ExtensionLogOutcome struct {
	Stored  int `json:"stored"`
	Skipped int `json:"skipped,omitempty"` // lines of tenants that do not exist
}

var (
	extensionLogLevels  = []string{"debug", "info", "warn", "error"}
	extensionLogSources = []string{"log", "stdout", "stderr", "host"}
)

// extLogRing is a tenant's sequence record: the extension log events kept are numbered First to
// Next-1.
type extLogRing struct {
	First uint64 `json:"first"`
	Next  uint64 `json:"next"`
}

func keyExtLogRing(t string) []byte { return []byte("t/" + t + "/extlog/ring") }
func keyExtLogSeq(t string, seq uint64) []byte {
	return fmt.Appendf(nil, "t/%s/extlog/seq/%020d", t, seq)
}

func applyExtensionLog(a *applier, body json.RawMessage) (any, error) {
	b, err := decode[ExtensionLog](body)
	if err != nil {
		return nil, err
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	if a.audits+len(b.Lines) > maxAuditsPerCommand {
		return nil, invalid("one command may write at most %d audit events", maxAuditsPerCommand)
	}
	var out ExtensionLogOutcome
	rings := map[string]*extLogRing{} // nil: the tenant does not exist
	for _, l := range b.Lines {
		r, seen := rings[l.Tenant]
		if !seen {
			if r, err = a.loadExtLogRing(l.Tenant); err != nil {
				return nil, err
			}
			rings[l.Tenant] = r
		}
		if r == nil {
			out.Skipped++
			continue
		}
		at := l.Time
		if at.IsZero() {
			at = a.now()
		}
		key, err := a.putAudit(AuditEvent{Tenant: l.Tenant, Time: at, Actor: "extension:" + l.Extension,
			Action: OpExtensionLog, Target: l.Extension, Level: l.Level, Message: l.Message, Source: l.Source, Node: b.Node})
		if err != nil {
			return nil, err
		}
		if err := a.txn.Set(keyExtLogSeq(l.Tenant, r.Next), key); err != nil {
			return nil, err
		}
		r.Next++
		for r.Next-r.First > ExtensionLogRetention {
			if err := a.dropExtLog(l.Tenant, r.First); err != nil {
				return nil, err
			}
			r.First++
		}
		out.Stored++
	}
	for _, t := range slices.Sorted(maps.Keys(rings)) {
		if r := rings[t]; r != nil {
			if err := a.put(keyExtLogRing(t), r); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// check refuses a batch over the bounds or with a line that says nothing usable; whether its tenants
// exist is Apply's to find.
func (b ExtensionLog) check() error {
	if len(b.Lines) == 0 {
		return invalid("an extension log batch needs at least one line")
	}
	if len(b.Lines) > MaxExtensionLogLines {
		return invalid("an extension log batch of %d lines is over the %d-line limit", len(b.Lines), MaxExtensionLogLines)
	}
	if len(b.Node) > maxExtensionLogName {
		return invalid("an extension log batch's node id is over %d bytes", maxExtensionLogName)
	}
	for i, l := range b.Lines {
		if err := l.Check(); err != nil {
			return invalid("extension log line %d: %v", i+1, err)
		}
	}
	return nil
}

// Check refuses a line Apply would refuse (and with it, its whole batch), so that a shipper can leave
// it out instead.
func (l ExtensionLogLine) Check() error {
	switch {
	case l.Tenant == "":
		return invalid("tenant is required")
	case l.Extension == "" || len(l.Extension) > maxExtensionLogName:
		return invalid("extension id is required, at most %d bytes", maxExtensionLogName)
	case !slices.Contains(extensionLogLevels, l.Level):
		return invalid("level %q is not one of %q", l.Level, extensionLogLevels)
	case !slices.Contains(extensionLogSources, l.Source):
		return invalid("source %q is not one of %q", l.Source, extensionLogSources)
	case len(l.Message) > MaxExtensionLogMessage:
		return invalid("message of %d bytes is over the %d-byte limit", len(l.Message), MaxExtensionLogMessage)
	}
	return nil
}

// loadExtLogRing reads a tenant's sequence record (a new one if it has none), or nil when the tenant
// does not exist: its lines outlived it, and are dropped.
func (a *applier) loadExtLogRing(t string) (*extLogRing, error) {
	if err := a.requireTenant(t); err != nil {
		if _, refused := AsError(err); refused {
			return nil, nil
		}
		return nil, err
	}
	r := &extLogRing{}
	if _, err := a.get(keyExtLogRing(t), r); err != nil {
		return nil, err
	}
	return r, nil
}

// dropExtLog deletes the extension log event numbered seq and its index key.
func (a *applier) dropExtLog(t string, seq uint64) error {
	ix := keyExtLogSeq(t, seq)
	key, err := a.getRaw(ix)
	if err != nil {
		return err
	}
	if key != nil {
		if err := a.del(key); err != nil {
			return err
		}
	}
	return a.del(ix)
}
