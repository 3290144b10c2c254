package admin

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
)

func TestClusterStatus(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	var st cluster.Status
	e.must(t, 200, "GET", "/admin/v1/cluster", nil, &st)
	if st.Leader != "n1" || len(st.Nodes) != 1 {
		t.Fatalf("status = %+v, want n1 leading alone", st)
	}
	n := st.Nodes[0]
	if n.ID != "n1" || n.Suffrage != "voter" || !n.Reachable || n.RaftAddr == "" {
		t.Errorf("node = %+v", n)
	}
	if n.AppliedIndex == 0 || n.AppliedIndex != e.store.AppliedIndex() {
		t.Errorf("applied_index = %d, store applied %d", n.AppliedIndex, e.store.AppliedIndex())
	}
}

func TestBackupRestore(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "before")
	e.must(t, 201, "POST", "/admin/v1/tenants/before/users", map[string]any{"email": "kept@example.com"}, nil)

	r := e.must(t, 200, "GET", "/admin/v1/backup?consistency=linearizable", nil, nil)
	backup := r.body
	if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	if idx := r.index(t); idx != e.store.AppliedIndex() {
		t.Errorf("backup X-Postern-Index = %d, store applied %d", idx, e.store.AppliedIndex())
	}

	t.Run("a backup restores into a fresh store", func(t *testing.T) {
		fresh, err := directory.OpenMemory(directory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		if err := fresh.Restore(bytes.NewReader(backup)); err != nil {
			t.Fatalf("restoring the backup: %v", err)
		}
		if tn, err := fresh.Tenant("before"); err != nil || tn.ID != "before" {
			t.Errorf("tenant in the backup: %+v, %v", tn, err)
		}
		if _, err := fresh.UserByEmail("before", "kept@example.com"); err != nil {
			t.Errorf("user in the backup: %v", err)
		}
	})

	e.createTenant(t, "after")
	applied := e.store.AppliedIndex()

	t.Run("refused restores change nothing", func(t *testing.T) {
		for name, body := range map[string][]byte{
			"garbage":   []byte("this is not a backup"),
			"empty":     {},
			"truncated": backup[:len(backup)/2],
		} {
			r := e.do(t, "POST", "/admin/v1/restore", body, "Content-Type", "application/octet-stream")
			if r.status < 400 {
				t.Errorf("%s: status %d, want an error; body: %s", name, r.status, r.body)
			}
			e.must(t, 200, "GET", "/admin/v1/tenants/after", nil, nil)
			if got := e.store.AppliedIndex(); got != applied {
				t.Errorf("%s: applied index moved from %d to %d", name, applied, got)
			}
		}
		e.mustFail(t, 400, "invalid", "POST", "/admin/v1/restore", "not a backup", "Content-Type", "application/octet-stream")
	})

	t.Run("restore brings the earlier state back", func(t *testing.T) {
		var res struct {
			Restored bool   `json:"restored"`
			Index    uint64 `json:"index"`
		}
		e.must(t, 200, "POST", "/admin/v1/restore", backup, &res, "Content-Type", "application/octet-stream")
		if !res.Restored {
			t.Errorf("answer = %+v", res)
		}
		e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/after", nil)
		e.must(t, 200, "GET", "/admin/v1/tenants/before", nil, nil)
		e.must(t, 200, "GET", "/admin/v1/tenants/before/users/kept@example.com", nil, nil)
		// The cluster takes writes after a restore, and reads see them.
		w := e.must(t, 201, "POST", "/admin/v1/tenants", map[string]any{"id": "later"}, nil)
		e.must(t, 200, "GET", "/admin/v1/tenants/later", nil, nil, "X-Postern-Min-Index", strconv.FormatUint(w.index(t), 10))
		e.must(t, 200, "GET", "/admin/v1/tenants?consistency=linearizable", nil, nil)
	})
}

// TestClusterJoinRefused covers the join checks that come before the cluster is asked; a real join needs
// a second node (cluster's own tests).
func TestClusterJoinRefused(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, body := range []any{map[string]any{}, map[string]any{"id": "n2"}, map[string]any{"raft_addr": "127.0.0.1:7001"}} {
		e.mustFail(t, http.StatusBadRequest, "invalid", "POST", "/admin/v1/cluster/join", body)
	}
	var st cluster.Status
	e.must(t, 200, "GET", "/admin/v1/cluster", nil, &st)
	if len(st.Nodes) != 1 {
		t.Errorf("refused joins changed the membership: %+v", st)
	}
}
