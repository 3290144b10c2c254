// Package clustertest starts real, in-process single-node clusters for the tests of the packages built
// on the cluster (the admin API, the OIDC provider, the proxy), so each does not set one up its own way.
package clustertest

import (
	"crypto/rand"
	"testing"
	"time"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
)

// Single starts a one-node raft cluster on an in-memory directory, waits until it leads, and stops both
// when the test ends.
func Single(t testing.TB) (*cluster.Node, *directory.Store) {
	t.Helper()
	store, err := directory.OpenMemory(directory.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	node, err := cluster.Start(cluster.Config{ID: "n1", DataDir: t.TempDir(), Voter: true, Bootstrap: true, Store: store, QuietRaft: true})
	if err != nil {
		store.Close()
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() { node.Close(); store.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for !node.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return node, store
}

// KEK returns a fresh random key-encryption key.
func KEK(t testing.TB) *directory.KEK {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	kek, err := directory.NewKEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}
