package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/wasm/wasmtest"
)

// blobs is an in-memory stand-in for the directory's Store.Blob.
type blobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (b *blobs) put(tenant string, wasm []byte) string {
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string][]byte{}
	}
	b.m[tenant+"/"+sha] = wasm
	return sha
}

func (b *blobs) get(tenant, sha string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.m[tenant+"/"+sha]
	if !ok {
		return nil, directory.ErrNotFound
	}
	return w, nil
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is a Runtime with its module store and log.
type harness struct {
	*Runtime
	blobs *blobs
	log   *logBuffer
}

// cacheDir is one compilation cache for the whole test binary, so that each Go guest is compiled to
// machine code once however many runtimes the tests make.
var cacheDir = sync.OnceValue(func() string {
	dir, err := os.MkdirTemp("", "postern-wasm-cache-")
	if err != nil {
		panic(err)
	}
	return dir
})

func TestMain(m *testing.M) {
	code := m.Run()
	os.RemoveAll(cacheDir())
	os.Exit(code)
}

func newHarness(t testing.TB, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{blobs: &blobs{}, log: &logBuffer{}}
	cfg := Config{
		CacheDir: cacheDir(),
		Log:      slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Module:   h.blobs.get,
		Fetch:    FetchPolicy{AllowPrivateAddresses: true},
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Runtime = r
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// ext stores wasm for tenant and returns an extension record running it.
func (h *harness) ext(tenant, id string, wasm []byte) directory.Extension {
	return directory.Extension{
		ID:         id,
		Tenant:     tenant,
		Events:     []string{"OnTokenIssuanceStart"},
		WasmSHA256: h.blobs.put(tenant, wasm),
		WasmSize:   int64(len(wasm)),
		Version:    1,
	}
}

func (h *harness) invoke(t testing.TB, ext directory.Extension, input string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Invoke(ctx, ext, []byte(input))
	return string(out), err
}

func (h *harness) mustInvoke(t testing.TB, ext directory.Extension, input string) string {
	t.Helper()
	out, err := h.invoke(t, ext, input)
	if err != nil {
		t.Fatalf("Invoke %s: %v", ext.ID, err)
	}
	return out
}

// current is the slot's current version, for white-box checks.
func (h *harness) current(ext directory.Extension) *version {
	h.mu.RLock()
	s := h.slots[slotKey{ext.Tenant, ext.ID}]
	h.mu.RUnlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

const modulePath = "postern.dev/postern/wasm/"

var precompiled sync.Once

// guestNames are the Go guests the tests use, built once per test binary.
var guestNames = []string{"examples/echo", "examples/claims", "examples/blocklist", "examples/loyalty",
	"examples/otp", "testdata/probe"}

func guest(t testing.TB, name string) []byte {
	t.Helper()
	pkgs := make([]string, len(guestNames))
	for i, n := range guestNames {
		pkgs[i] = modulePath + n
	}
	// Build them all on first use: in parallel, it costs little more than one.
	all := wasmtest.BuildAll(t, pkgs...)
	precompiled.Do(func() {
		if raceEnabled {
			mods := make([][]byte, 0, len(all))
			for _, m := range all {
				mods = append(mods, m)
			}
			wasmtest.Precompile(t, cacheDir(), mods...)
		}
	})
	w, ok := all[modulePath+name]
	if !ok {
		t.Fatalf("no guest %s", name)
	}
	return w
}

func event(typ string, data string) string {
	return fmt.Sprintf(`{"type":%q,"source":"/tenants/acme/applications/web","data":%s}`, typ, data)
}

func wantContains(t testing.TB, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("got %s\nwant it to contain %s", got, want)
	}
}
