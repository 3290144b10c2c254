package directory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func TestSnapshotIsPointInTime(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		populate(t, f, testKEK(t), "acme")
		f.ok(userCreate("acme", "u3", "three@example.com"))
		at := s.AppliedIndex()
		want := dump(t, s)

		sn, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Release()
		if sn.AppliedIndex() != at {
			t.Errorf("Snapshot.AppliedIndex = %d, want %d", sn.AppliedIndex(), at)
		}
		// Changes after Snapshot(): a new user, a deleted user, a changed tenant, a refused command.
		f.ok(userCreate("acme", "u4", "four@example.com"))
		f.ok(ref(OpUserDelete, "acme", "u3"))
		f.ok(MakeOp(OpTenantUpdate, TenantPatch{ID: "acme", DisplayName: ptr("changed")}))
		f.refused(CodeConflict, userCreate("acme", "u5", "four@example.com"))

		var buf bytes.Buffer
		if err := sn.Write(&buf); err != nil {
			t.Fatal(err)
		}
		got, err := decodeSnapshot(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(want, got) {
			t.Fatalf("the snapshot is not the state at Snapshot():\n%s", diffDumps(want, got))
		}
		if got[string(keyApplied)] != string(u64(at)) {
			t.Errorf("snapshot's applied index = %x, want %d", got[string(keyApplied)], at)
		}
		// Writing it twice gives the same contents.
		var again bytes.Buffer
		if err := sn.Write(&again); err != nil {
			t.Fatal(err)
		}
		if got2, _ := decodeSnapshot(again.Bytes()); !maps.Equal(want, got2) {
			t.Error("a second Write of the snapshot differs")
		}

		// The snapshot restores into a fresh store of either kind with the same reads and applied index.
		for name, target := range map[string]*Store{"memory": openMemoryStore(t), "disk": openDiskStore(t, t.TempDir())} {
			t.Run("restore into "+name, func(t *testing.T) {
				if err := target.Restore(bytes.NewReader(buf.Bytes())); err != nil {
					t.Fatal(err)
				}
				checkRestored(t, target, want, at)
			})
		}
	})
}

// checkRestored checks a store restored from a snapshot of populate(acme) plus user u3.
func checkRestored(t *testing.T, s *Store, want map[string]string, at uint64) {
	t.Helper()
	if s.AppliedIndex() != at {
		t.Errorf("AppliedIndex = %d, want %d", s.AppliedIndex(), at)
	}
	if got := dump(t, s); !maps.Equal(want, got) {
		t.Fatalf("restored contents differ:\n%s", diffDumps(want, got))
	}
	if u, err := s.UserByEmail("acme", "THREE@example.com"); err != nil || u.ID != "u3" {
		t.Errorf("UserByEmail(u3) = %+v, %v", u, err)
	}
	wantNotFound(t, "u4 (applied after the snapshot)", func() error { _, err := s.User("acme", "u4"); return err }())
	if tn, err := s.Tenant("acme"); err != nil || tn.DisplayName != "Tenant acme" {
		t.Errorf("Tenant = %+v, %v", tn, err)
	}
	if a, err := s.AppByClientID("acme", "client-acme"); err != nil || a.ID != "a1" {
		t.Errorf("AppByClientID = %+v, %v", a, err)
	}
	if rt, err := s.RouteByHost("acme.apps.example"); err != nil || rt.Tenant != "acme" {
		t.Errorf("RouteByHost = %+v, %v", rt, err)
	}
	if m, err := s.GroupMembers("acme", "g1"); err != nil || len(m) != 2 {
		t.Errorf("GroupMembers = %v, %v", m, err)
	}
	// The restored store goes on applying from the snapshot's index.
	f := newFixture(t, s)
	f.ok(userCreate("acme", "u4", "four@example.com"))
	f.refused(CodeConflict, userCreate("acme", "u5", "three@example.com"))
}

func TestRestoreReplacesState(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		src := openMemoryStore(t)
		fs := newFixture(t, src)
		fs.ok(tenantCreate("acme"), userCreate("acme", "u1", "one@example.com"))
		want := dump(t, src)
		snap := snapshotBytes(t, src)

		// The target is ahead and holds other data: Restore replaces it all, applied index included.
		f := newFixture(t, s)
		populate(t, f, testKEK(t), "beta")
		f.ok(tenantCreate("acme"), userCreate("acme", "u2", "one@example.com"))
		if err := s.Restore(bytes.NewReader(snap)); err != nil {
			t.Fatal(err)
		}
		if got := dump(t, s); !maps.Equal(want, got) {
			t.Fatalf("after Restore:\n%s", diffDumps(want, got))
		}
		if s.AppliedIndex() != 1 {
			t.Errorf("AppliedIndex = %d, want 1", s.AppliedIndex())
		}
		wantNotFound(t, "old tenant", func() error { _, err := s.Tenant("beta"); return err }())
		wantNotFound(t, "old host", func() error { _, err := s.RouteByHost("beta.apps.example"); return err }())
		// An empty store's snapshot empties the target.
		if err := s.Restore(bytes.NewReader(snapshotBytes(t, openMemoryStore(t)))); err != nil {
			t.Fatal(err)
		}
		if got := dump(t, s); len(got) != 0 || s.AppliedIndex() != 0 {
			t.Errorf("after restoring an empty snapshot: %v, index %d", got, s.AppliedIndex())
		}
	})
}

func TestRestoreSurvivesReopen(t *testing.T) {
	src := openMemoryStore(t)
	f := newFixture(t, src)
	populate(t, f, testKEK(t), "acme")
	f.ok(userCreate("acme", "u3", "three@example.com"))
	want, at := dump(t, src), src.AppliedIndex()

	dir := t.TempDir()
	s, err := Open(dir, Options{SmallMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(bytes.NewReader(snapshotBytes(t, src))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "badger" {
		t.Errorf("after Restore the store dir holds %v, want only badger", names)
	}
	checkRestored(t, openDiskStore(t, dir), want, at)
}

func TestRestoreRefusesBadStreams(t *testing.T) {
	// A good stream to damage: it has several frames (one per MiB of values).
	src := openMemoryStore(t)
	f := newFixture(t, src)
	f.ok(tenantCreate("acme"))
	big := bytes.Repeat([]byte("w"), 300<<10)
	for i := range 8 {
		w := append(append([]byte{}, big...), byte('0'+i))
		f.ok(MakeOp(OpExtensionPut, ExtensionPut{Extension: Extension{ID: string(rune('a' + i)), Tenant: "acme",
			Events: []string{"x"}, WasmSHA256: SHA256Hex(w)}, Wasm: w}))
	}
	good := snapshotBytes(t, src)
	var frameEnds []int // offsets just after each frame but the end mark
	for off := len(snapshotMagic); ; {
		n := int(binary.LittleEndian.Uint64(good[off:]))
		if n == 0 {
			if off+8 != len(good) {
				t.Fatalf("the end mark is at %d of %d bytes", off, len(good))
			}
			break
		}
		off += 8 + n
		frameEnds = append(frameEnds, off)
	}
	if len(frameEnds) < 3 {
		t.Fatalf("the good stream has %d frames; the test wants several", len(frameEnds))
	}
	magic := []byte(snapshotMagic)
	rnd := rand.New(rand.NewPCG(7, 7))
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rnd.Uint32())
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	bogusProto := append(binary.LittleEndian.AppendUint64(nil, 5), 0xff, 0xff, 0xff, 0xff, 0xff)

	cases := map[string][]byte{
		"empty":                        nil,
		"half the magic":               magic[:8],
		"wrong magic":                  cat([]byte("POSTERN-DIRECTORY-9\n"), good[len(magic):]),
		"random garbage":               garbage,
		"magic then garbage":           cat(magic, garbage),
		"magic then a huge frame":      cat(magic, binary.LittleEndian.AppendUint64(nil, 1<<40), garbage[:100]),
		"truncated in a frame header":  good[:len(magic)+3],
		"truncated in the first frame": good[:len(magic)+100],
		"truncated in the last frame":  good[:len(good)-1],
		"truncated in a later frame":   good[:frameEnds[0]+20],
		"bad protobuf then more":       cat(magic, bogusProto, good[len(magic):]),
		"good frame, then bad proto":   cat(good[:frameEnds[0]], bogusProto, good[frameEnds[0]:]),
		"magic only":                   magic,
		"cut at a frame boundary":      good[:frameEnds[0]],
		"cut before the end mark":      good[:len(good)-8],
		"data after the end mark":      cat(good, []byte("x")),
		"two streams":                  cat(good, good),
		"end mark, then frames":        cat(magic, make([]byte, 8), good[len(magic):]),
	}
	// A few more random cuts.
	for range 4 {
		n := len(magic) + 1 + rnd.IntN(len(good)-len(magic)-2)
		cases["truncated at "+strconv.Itoa(n)] = good[:n]
	}

	forEachStore(t, func(t *testing.T, s *Store) {
		tf := newFixture(t, s)
		populate(t, tf, testKEK(t), "beta")
		want, at := dump(t, s), s.AppliedIndex()
		baseline := snapshotBytes(t, s)
		for name, stream := range cases {
			t.Run(name, func(t *testing.T) {
				done := make(chan error, 1)
				go func() { done <- s.Restore(bytes.NewReader(stream)) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(20 * time.Second):
					t.Fatal("Restore hangs on this stream")
				}
				if err == nil {
					// Put the baseline back so that the other cases still test something.
					if err := s.Restore(bytes.NewReader(baseline)); err != nil {
						t.Fatal(err)
					}
					t.Fatal("Restore accepted a damaged stream")
				}
				if s.AppliedIndex() != at {
					t.Errorf("AppliedIndex = %d, want %d", s.AppliedIndex(), at)
				}
				if got := dump(t, s); !maps.Equal(want, got) {
					t.Fatalf("a failed Restore changed the store:\n%s", diffDumps(want, got))
				}
				if u, err := s.UserByEmail("beta", "ann@beta.example"); err != nil || u.ID != "u1" {
					t.Errorf("UserByEmail after a failed Restore = %+v, %v", u, err)
				}
			})
		}
		// The store still applies, and still restores a good stream.
		tf.ok(userCreate("beta", "u9", "nine@example.com"))
		if err := s.Restore(bytes.NewReader(good)); err != nil {
			t.Fatalf("Restore of the good stream after failures: %v", err)
		}
		if got, want := dump(t, s), dump(t, src); !maps.Equal(want, got) {
			t.Fatalf("after the good Restore:\n%s", diffDumps(want, got))
		}
		exts, _ := s.Extensions("acme")
		if len(exts) != 8 {
			t.Errorf("restored %d extensions, want 8", len(exts))
		}
	})
}

func TestRestoreLeavesNoStaging(t *testing.T) {
	dir := t.TempDir()
	s := openDiskStore(t, dir)
	f := newFixture(t, s)
	f.ok(tenantCreate("acme"))
	if err := s.Restore(strings.NewReader(snapshotMagic + "\x05\x00\x00\x00\x00\x00\x00\x00xx")); err == nil {
		t.Fatal("a truncated stream restored")
	}
	if _, err := os.Stat(filepath.Join(dir, "badger.restore")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Restore left its staging directory: %v", err)
	}
}

func TestSnapshotOfClosedStore(t *testing.T) {
	s, err := OpenMemory(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Snapshot(); err == nil {
		t.Error("Snapshot of a closed store succeeded")
	}
}

// TestSnapshotWriteDuringApply streams a snapshot while commands go on being applied and read, as raft's
// Persist runs beside the FSM goroutine: the stream is still the state at Snapshot().
func TestSnapshotWriteDuringApply(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		populate(t, f, testKEK(t), "acme")
		want := dump(t, s)
		sn, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Release()

		written := make(chan []byte)
		go func() {
			var buf bytes.Buffer
			if err := sn.Write(&buf); err != nil {
				t.Error(err)
			}
			written <- buf.Bytes()
		}()
		readErr := make(chan error)
		go func() {
			for range 200 {
				if _, err := s.UserByEmail("acme", "ann@acme.example"); err != nil {
					readErr <- err
					return
				}
			}
			readErr <- nil
		}()
		for i := range 50 {
			f.ok(userCreate("acme", "n"+strconv.Itoa(i), "n"+strconv.Itoa(i)+"@example.com"))
		}
		if err := <-readErr; err != nil {
			t.Errorf("a read during Apply: %v", err)
		}
		got, err := decodeSnapshot(<-written)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(want, got) {
			t.Fatalf("a snapshot written during Apply is not the state at Snapshot():\n%s", diffDumps(want, got))
		}
		if n := len(must[[]User](t, "Users")(s.Users("acme", "", 0))); n != 52 {
			t.Errorf("%d users after the writes, want 52", n)
		}
	})
}
