package wasm

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"postern.dev/postern/directory"
)

// CallLog is what one call of an extension (or the start of one of its instances) logged, handed to
// Config.Audit when the call ends so that the lines can reach the tenant's audit.
type CallLog struct {
	Tenant, Extension string
	// Lines are the guest's lines in the order written, within the call's log budget, then the host's
	// own lines about the call: an error when the runtime ended it (a trap, a timeout, a limit, a
	// malformed answer), a warning when lines were dropped.
	Lines []LogLine
	// Dropped counts the guest's lines left out: over the call's log bytes (LogCallBytes) or over
	// MaxAuditLines.
	Dropped int
}

// LogLine is one line of a CallLog.
type LogLine struct {
	Time    time.Time
	Level   slog.Level // debug, info, warn or error
	Message string
	// Source is "log" (the log host function), "stdout", "stderr", or "host" for the runtime's own
	// lines.
	Source string
}

// MaxAuditLines bounds the lines of one call that reach Config.Audit. The byte budget alone does not
// bound them: a guest may write empty lines (which are not audited) or very short ones.
const MaxAuditLines = 256

// keep adds a guest's line to the call's audit lines.
func (cs *callState) keep(level slog.Level, msg, source string) {
	if msg == "" {
		return
	}
	if len(cs.lines) >= MaxAuditLines {
		cs.unkept++
		return
	}
	cs.lines = append(cs.lines, LogLine{Time: time.Now(), Level: level, Message: msg, Source: source})
}

// audit hands the call's lines to Config.Audit, with the host's own lines about how it ended. err is
// the call's error. A call that logged nothing and ended well costs nothing here.
func (cs *callState) audit(err error) {
	hook := cs.r.cfg.Audit
	if hook == nil {
		return
	}
	if err != nil && endedByRuntime(err) {
		msg := cutRunes([]byte(err.Error()), cs.r.cfg.LogLineBytes)
		cs.lines = append(cs.lines, LogLine{Time: time.Now(), Level: slog.LevelError, Message: string(msg), Source: "host"})
	}
	dropped := cs.dropped + cs.unkept
	if dropped > 0 {
		cs.lines = append(cs.lines, LogLine{Time: time.Now(), Level: slog.LevelWarn, Source: "host",
			Message: fmt.Sprintf("%d log lines dropped: a call may log %d bytes in at most %d lines",
				dropped, cs.r.cfg.LogCallBytes, MaxAuditLines)})
	}
	if len(cs.lines) == 0 {
		return
	}
	hook(CallLog{Tenant: cs.ext.Tenant, Extension: cs.ext.ID, Lines: cs.lines, Dropped: dropped})
	cs.lines = nil
}

// endedByRuntime reports whether the runtime ended the call, as opposed to the guest reporting its own
// failure (which it logs itself) or the host failing.
func endedByRuntime(err error) bool {
	return errors.Is(err, ErrTrap) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrLimit) || errors.Is(err, ErrBadOutput)
}

// AuditLines are the call's lines as the directory records them (see directory.OpExtensionLog). Their
// messages are as written, within Config.LogLineBytes: a node that allows longer lines than the
// directory keeps cuts them when it ships them.
func (l CallLog) AuditLines() []directory.ExtensionLogLine {
	out := make([]directory.ExtensionLogLine, len(l.Lines))
	for i, line := range l.Lines {
		out[i] = directory.ExtensionLogLine{Tenant: l.Tenant, Extension: l.Extension, Time: line.Time,
			Level: levelName(line.Level), Source: line.Source, Message: line.Message}
	}
	return out
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}
