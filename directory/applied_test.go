package directory

import (
	"maps"
	"testing"
)

func encode(t *testing.T, ops ...Op) []byte {
	t.Helper()
	b, err := NewCommand(t0, "tester", ops...).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppliedIndexReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		if got := s.AppliedIndex(); got != 0 {
			t.Fatalf("a fresh store has AppliedIndex %d", got)
		}
		if _, err := s.Apply(1, encode(t, tenantCreate("acme"))); err != nil {
			t.Fatal(err)
		}
		create := encode(t, userCreate("acme", "u1", "one@example.com"))
		res, err := s.Apply(5, create)
		if err != nil || res.Index != 5 || len(res.Outputs) != 1 {
			t.Fatalf("Apply(5) = %+v, %v", res, err)
		}
		before := dump(t, s)

		// Replaying index 5 (raft replays the log tail after a restart) is skipped: no conflict, no duplicate.
		res, err = s.Apply(5, create)
		if err != nil {
			t.Fatalf("replay of index 5: %v", err)
		}
		if res.Index != 5 || len(res.Outputs) != 0 || len(res.Changes) != 0 {
			t.Errorf("replay result = %+v, want an empty result at index 5", res)
		}
		// Anything at or below the applied index is skipped, whatever it says.
		for _, idx := range []uint64{1, 3, 5} {
			if _, err := s.Apply(idx, encode(t, userCreate("acme", "u2", "two@example.com"))); err != nil {
				t.Errorf("Apply(%d) below the applied index: %v", idx, err)
			}
			if _, err := s.Apply(idx, []byte("garbage")); err != nil {
				t.Errorf("Apply(%d, garbage) below the applied index: %v", idx, err)
			}
		}
		if after := dump(t, s); !maps.Equal(before, after) {
			t.Errorf("skipped commands changed the store:\n%s", diffDumps(before, after))
		}
		if got := s.AppliedIndex(); got != 5 {
			t.Errorf("AppliedIndex = %d, want 5", got)
		}

		// A refused command still advances the applied index (and a replay of it is skipped, not refused).
		dup := encode(t, userCreate("acme", "u2", "ONE@example.com"))
		if _, err := s.Apply(6, dup); !isCode(err, CodeConflict) {
			t.Fatalf("Apply(6) = %v, want a conflict", err)
		}
		if got := s.AppliedIndex(); got != 6 {
			t.Errorf("AppliedIndex after a refusal = %d, want 6", got)
		}
		if _, err := s.Apply(6, dup); err != nil {
			t.Errorf("replay of the refused index 6: %v", err)
		}
		if _, err := s.Apply(7, []byte("{")); !isCode(err, CodeInvalid) {
			t.Errorf("Apply(7, malformed) = %v, want invalid", err)
		}
		if got := s.AppliedIndex(); got != 7 {
			t.Errorf("AppliedIndex after a malformed command = %d, want 7", got)
		}
		if v := dump(t, s)[string(keyApplied)]; v != string(u64(7)) {
			t.Errorf("stored applied index = %x, want 7", v)
		}

		// Index 0 applies without touching the applied index (tools and tests apply outside raft).
		if _, err := s.Apply(0, encode(t, userCreate("acme", "u3", "three@example.com"))); err != nil {
			t.Fatalf("Apply(0): %v", err)
		}
		if _, err := s.User("acme", "u3"); err != nil {
			t.Errorf("Apply(0) did not apply: %v", err)
		}
		if got := s.AppliedIndex(); got != 7 {
			t.Errorf("AppliedIndex after Apply(0) = %d, want 7", got)
		}
	})
}

func isCode(err error, code string) bool {
	e, ok := AsError(err)
	return ok && e.Code == code
}

func TestAppliedIndexSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SmallMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s)
	f.ok(tenantCreate("acme"))
	f.ok(userCreate("acme", "u1", "one@example.com"))
	f.refused(CodeConflict, userCreate("acme", "u2", "one@example.com")) // index 3, refused
	want := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if _, err := s.User("acme", "u1"); err == nil {
		t.Error("a read on a closed store succeeded")
	}

	s = openDiskStore(t, dir)
	if got := s.AppliedIndex(); got != 3 {
		t.Fatalf("AppliedIndex after reopen = %d, want 3", got)
	}
	if got := dump(t, s); !maps.Equal(want, got) {
		t.Fatalf("reopened store differs:\n%s", diffDumps(want, got))
	}
	// Raft replays from its last snapshot: indexes 2 and 3 come again and are skipped.
	if _, err := s.Apply(2, encode(t, userCreate("acme", "u1", "one@example.com"))); err != nil {
		t.Errorf("replayed index 2: %v", err)
	}
	if _, err := s.Apply(3, encode(t, userCreate("acme", "u2", "one@example.com"))); err != nil {
		t.Errorf("replayed index 3: %v", err)
	}
	if _, err := s.Apply(4, encode(t, userCreate("acme", "u2", "two@example.com"))); err != nil {
		t.Errorf("index 4 after reopen: %v", err)
	}
	if got := s.AppliedIndex(); got != 4 {
		t.Errorf("AppliedIndex = %d, want 4", got)
	}
}
