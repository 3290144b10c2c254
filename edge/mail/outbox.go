package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Outbox is the sender of `postern dev` without --smtp. Each message is logged at Info, with its plain
// text so that a developer can read a one-time code, and written as DIR/outbox/<time>-<tenant>-<random>.eml
// (RFC 5322, mode 0600), where a mail client can open it. It is safe for concurrent use.
//
// Messages are written to a temporary file and renamed, so a reader of the directory never sees a partial
// one. Nothing is ever deleted: the outbox is for development.
type Outbox struct {
	dir string
	log *slog.Logger
	now func() time.Time
}

// NewOutbox creates DIR/outbox (mode 0700) if needed and returns an outbox writing there and logging to
// log (slog.Default() when nil).
func NewOutbox(dir string, log *slog.Logger) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("creating outbox: directory is empty")
	}
	if log == nil {
		log = slog.Default()
	}
	path := filepath.Join(dir, "outbox")
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("creating outbox: %w", err)
	}
	return &Outbox{dir: path, log: log, now: time.Now}, nil
}

// Dir is the directory the .eml files go to: DIR/outbox.
func (o *Outbox) Dir() string { return o.dir }

// Send composes m from [DefaultFrom], logs it and writes it to the outbox.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing mail to outbox: %w", err)
	}
	now := o.now()
	msg, err := Compose(DefaultFrom, m, now)
	if err != nil {
		return fmt.Errorf("writing mail to outbox: %w", err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("writing mail to outbox: %w", err)
	}
	name := now.UTC().Format("20060102T150405.000000000Z") + "-" + fileSafe(m.Tenant) + "-" + hex.EncodeToString(rnd[:]) + ".eml"
	path := filepath.Join(o.dir, name)
	if err := writeFile(o.dir, path, msg); err != nil {
		return fmt.Errorf("writing mail to outbox: %w", err)
	}
	o.log.LogAttrs(ctx, slog.LevelInfo, "mail written to outbox",
		slog.String("tenant", m.Tenant),
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
		slog.String("text", m.Text),
		slog.String("file", path),
	)
	return nil
}

// writeFile writes data to path, mode 0600, through a temporary file in dir.
func writeFile(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*") // CreateTemp makes the file 0600.
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// fileSafe keeps the letters, digits, '.', '_' and '-' of a tenant name for a file name; anything else
// becomes '_'. An empty name becomes "_".
func fileSafe(s string) string {
	if s == "" {
		return "_"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}
