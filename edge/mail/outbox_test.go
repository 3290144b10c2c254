package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestOutbox(t *testing.T) {
	tests := []struct {
		name     string
		tenant   string
		wantName string // a regexp for the file name
	}{
		{name: "tenant", tenant: "acme", wantName: `^\d{8}T\d{6}\.\d{9}Z-acme-[0-9a-f]{12}\.eml$`},
		{name: "no tenant", tenant: "", wantName: `^\d{8}T\d{6}\.\d{9}Z-_-[0-9a-f]{12}\.eml$`},
		{name: "unsafe tenant", tenant: "../../etc/pass wd", wantName: `^\d{8}T\d{6}\.\d{9}Z-\.\._\.\._etc_pass_wd-[0-9a-f]{12}\.eml$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs syncBuffer
			o, err := NewOutbox(dir, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			m := codeMessage
			m.Tenant = tt.tenant
			if err := o.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}

			if o.Dir() != filepath.Join(dir, "outbox") {
				t.Errorf("Dir() = %q", o.Dir())
			}
			if fi, err := os.Stat(o.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("outbox directory: %v, %v; want mode 0700", fi.Mode(), err)
			}
			entries, err := os.ReadDir(o.Dir())
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Fatalf("outbox holds %d entries, want 1: %v", len(entries), entries)
			}
			name := entries[0].Name()
			if !regexp.MustCompile(tt.wantName).MatchString(name) {
				t.Errorf("file name %q does not match %s", name, tt.wantName)
			}
			fi, err := entries[0].Info()
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
			}
			data, err := os.ReadFile(filepath.Join(o.Dir(), name))
			if err != nil {
				t.Fatal(err)
			}
			checkLines(t, data)
			if p := parseMessage(t, data); !strings.Contains(p.text, "482915") || p.subject != m.Subject {
				t.Errorf("file holds subject %q, text %q", p.subject, p.text)
			}

			var rec map[string]any
			if err := json.Unmarshal([]byte(logs.String()), &rec); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			want := map[string]any{
				"level": "INFO", "msg": "mail written to outbox", "tenant": tt.tenant, "to": m.To,
				"subject": m.Subject, "text": m.Text, "file": filepath.Join(o.Dir(), name),
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("log %s = %v, want %v", k, rec[k], v)
				}
			}
		})
	}
}

func TestOutboxRefuses(t *testing.T) {
	dir := t.TempDir()
	o, err := NewOutbox(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		m       Message
		wantErr string
	}{
		{name: "header injection", ctx: context.Background(), m: Message{To: "a@b.example\r\nBcc: c@d.example", Text: "123456"}, wantErr: "to contains a line break"},
		{name: "canceled", ctx: canceled, m: codeMessage, wantErr: "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := o.Send(tt.ctx, tt.m)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Send = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if entries, _ := os.ReadDir(o.Dir()); len(entries) != 0 {
		t.Errorf("outbox holds %v after refusals", entries)
	}

	if _, err := NewOutbox("", nil); err == nil {
		t.Error("NewOutbox(\"\") succeeded")
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewOutbox(file, nil); err == nil || !strings.HasPrefix(err.Error(), "creating outbox: ") {
		t.Errorf("NewOutbox(a file) = %v, want a creating outbox error", err)
	}
}

func TestOutboxConcurrent(t *testing.T) {
	o, err := NewOutbox(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := o.Send(context.Background(), codeMessage); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	entries, err := os.ReadDir(o.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Errorf("outbox holds %d files, want %d", len(entries), n)
	}
}
