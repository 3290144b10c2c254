package directory

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"
)

// t0 is the clock of every test command: commands carry their time, Apply never reads the clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// forEachStore runs fn against every Store implementation: the in-memory store and a Badger store on disk.
// It is the conformance suite's entry point; whatever passes here behaves the same on both.
func forEachStore(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		fn(t, openMemoryStore(t))
	})
	t.Run("disk", func(t *testing.T) {
		fn(t, openDiskStore(t, t.TempDir()))
	})
}

func openMemoryStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenMemory(Options{SmallMemory: true})
	if err != nil {
		t.Fatalf("OpenMemory: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openDiskStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{SmallMemory: true})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture applies commands to a store at consecutive raft indexes, one second apart.
type fixture struct {
	t   *testing.T
	s   *Store
	idx uint64
}

func newFixture(t *testing.T, s *Store) *fixture {
	return &fixture{t: t, s: s, idx: s.AppliedIndex()}
}

// now is the time the next command will carry.
func (f *fixture) now() time.Time { return t0.Add(time.Duration(f.idx+1) * time.Second) }

func (f *fixture) apply(ops ...Op) (*Result, error) {
	f.t.Helper()
	b, err := NewCommand(f.now(), "tester", ops...).Encode()
	if err != nil {
		f.t.Fatalf("encoding command: %v", err)
	}
	return f.applyRaw(b)
}

func (f *fixture) applyRaw(b []byte) (*Result, error) {
	f.t.Helper()
	f.idx++
	res, err := f.s.Apply(f.idx, b)
	if _, refused := AsError(err); err != nil && !refused {
		f.t.Fatalf("Apply(%d) failed with a store error (not a refusal): %v", f.idx, err)
	}
	if got := f.s.AppliedIndex(); got != f.idx {
		f.t.Fatalf("AppliedIndex after Apply(%d) = %d", f.idx, got)
	}
	if res == nil || res.Index != f.idx {
		f.t.Fatalf("Apply(%d) result = %+v, want Index %d", f.idx, res, f.idx)
	}
	return res, err
}

// ok applies ops and fails the test if the command is refused.
func (f *fixture) ok(ops ...Op) *Result {
	f.t.Helper()
	res, err := f.apply(ops...)
	if err != nil {
		f.t.Fatalf("applying %s: %v", opKinds(ops), err)
	}
	if len(res.Outputs) != len(ops) {
		f.t.Fatalf("applying %s: %d outputs, want %d", opKinds(ops), len(res.Outputs), len(ops))
	}
	return res
}

// refused applies ops, checks they are refused with code, and checks the refusal changed nothing but the
// applied index.
func (f *fixture) refused(code string, ops ...Op) *Error {
	f.t.Helper()
	before := logicalDump(f.t, f.s)
	_, err := f.apply(ops...)
	return f.checkRefusal(code, err, before, opKinds(ops))
}

// refusedRaw is refused for a raw (possibly malformed) command.
func (f *fixture) refusedRaw(code string, data []byte) *Error {
	f.t.Helper()
	before := logicalDump(f.t, f.s)
	_, err := f.applyRaw(data)
	return f.checkRefusal(code, err, before, fmt.Sprintf("%q", data))
}

func (f *fixture) checkRefusal(code string, err error, before map[string]string, what string) *Error {
	f.t.Helper()
	e, ok := AsError(err)
	if !ok {
		f.t.Fatalf("applying %s: err = %v, want a *Error with code %q", what, err, code)
	}
	if e.Code != code {
		f.t.Fatalf("applying %s: code %q (%s), want %q", what, e.Code, e.Message, code)
	}
	if e.Message == "" {
		f.t.Errorf("applying %s: refusal has no message", what)
	}
	if after := logicalDump(f.t, f.s); !maps.Equal(before, after) {
		f.t.Fatalf("applying %s: refused command changed the store:\n%s", what, diffDumps(before, after))
	}
	return e
}

func opKinds(ops []Op) string {
	var k []string
	for _, op := range ops {
		k = append(k, op.Kind)
	}
	return "[" + strings.Join(k, ", ") + "]"
}

// snapshotBytes writes the store's current state as a snapshot stream.
func snapshotBytes(t *testing.T, s *Store) []byte {
	t.Helper()
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer sn.Release()
	var buf bytes.Buffer
	if err := sn.Write(&buf); err != nil {
		t.Fatalf("Snapshot.Write: %v", err)
	}
	return buf.Bytes()
}

// dump is every key and value of the store, read through a snapshot stream.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	kv, err := decodeSnapshot(snapshotBytes(t, s))
	if err != nil {
		t.Fatalf("decoding snapshot: %v", err)
	}
	return kv
}

// logicalDump is dump without the applied index, which every command (even a refused one) advances.
func logicalDump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	kv := dump(t, s)
	delete(kv, string(keyApplied))
	return kv
}

// decodeSnapshot reads a snapshot stream (the magic line, then frames of a little-endian uint64 length and
// a pb.KVList, then the end mark, a zero length) into its keys and values. Badger versions are ignored:
// two stores with the same logical contents may number their versions differently.
func decodeSnapshot(b []byte) (map[string]string, error) {
	if !bytes.HasPrefix(b, []byte(snapshotMagic)) {
		return nil, errors.New("no magic line")
	}
	r := bytes.NewReader(b[len(snapshotMagic):])
	out := map[string]string{}
	for {
		var n uint64
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
			return nil, fmt.Errorf("reading frame length: %w", err)
		}
		if n == 0 {
			if r.Len() != 0 {
				return nil, fmt.Errorf("%d bytes after the end mark", r.Len())
			}
			return out, nil
		}
		if n > uint64(r.Len()) {
			return nil, fmt.Errorf("frame of %d bytes, %d left", n, r.Len())
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return nil, err
		}
		var list pb.KVList
		if err := proto.Unmarshal(frame, &list); err != nil {
			return nil, fmt.Errorf("decoding frame: %w", err)
		}
		for _, kv := range list.Kv {
			if _, dup := out[string(kv.Key)]; dup {
				return nil, fmt.Errorf("key %q appears twice", kv.Key)
			}
			out[string(kv.Key)] = string(kv.Value)
		}
	}
}

func diffDumps(a, b map[string]string) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[k]; !ok {
			lines = append(lines, fmt.Sprintf("- %s = %q", k, a[k]))
		} else if v != a[k] {
			lines = append(lines, fmt.Sprintf("~ %s = %q -> %q", k, a[k], v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			lines = append(lines, fmt.Sprintf("+ %s = %q", k, b[k]))
		}
	}
	if len(lines) > 40 {
		lines = append(lines[:40], fmt.Sprintf("… and %d more", len(lines)-40))
	}
	return strings.Join(lines, "\n")
}

// keysUnder lists the dump's keys under prefix, sorted.
func keysUnder(kv map[string]string, prefix string) []string {
	var out []string
	for k := range kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func must[T any](t *testing.T, what string) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func output[T any](t *testing.T, res *Result, i int) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(res.Outputs[i], &v); err != nil {
		t.Fatalf("decoding output %d (%s): %v", i, res.Outputs[i], err)
	}
	return v
}

// Op builders for the tests.

func tenantCreate(id string) Op {
	return MakeOp(OpTenantCreate, Tenant{ID: id, DisplayName: "Tenant " + id})
}

func userCreate(tenant, id, email string) Op {
	return MakeOp(OpUserCreate, User{ID: id, Tenant: tenant, Email: email})
}

func groupCreate(tenant, id, name string) Op {
	return MakeOp(OpGroupCreate, Group{ID: id, Tenant: tenant, Name: name})
}

func memberAdd(tenant, group, user string) Op {
	return MakeOp(OpMemberAdd, Membership{Tenant: tenant, GroupID: group, UserID: user})
}

func appCreate(tenant, id, name, clientID string, secrets ...SecretHash) Op {
	return MakeOp(OpAppCreate, App{ID: id, Tenant: tenant, Name: name, ClientID: clientID, Type: AppWeb,
		Secrets: secrets, RedirectURIs: []string{"https://" + id + ".example/cb"}})
}

func routePut(tenant, host string) Op {
	return MakeOp(OpRoutePut, Route{Tenant: tenant, Host: host, Upstream: "http://10.0.0.1:8080", App: "app1",
		Allow: Allow{Authenticated: true}})
}

func ref(kind, tenant, id string) Op { return MakeOp(kind, Ref{Tenant: tenant, ID: id}) }

func ptr[T any](v T) *T { return &v }
