package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/directory"
)

// group is an in-process cluster of real nodes talking mutual TLS over loopback.
type group struct {
	t     *testing.T
	nodes []*Node
	dir   string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startNode(t *testing.T, tlsDir, id string, voter, bootstrap bool) *Node {
	t.Helper()
	st, err := directory.Open(t.TempDir(), directory.Options{SmallMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, cli, err := LoadTLS(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(Config{ID: id, RaftAddr: freeAddr(t), DataDir: t.TempDir(), Voter: voter, Bootstrap: bootstrap,
		ServerTLS: srv, ClientTLS: cli, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); st.Close() })
	return n
}

func newGroup(t *testing.T, voters, nonvoters int) *group {
	t.Helper()
	g := &group{t: t, dir: t.TempDir()}
	if err := GenerateDevCerts(g.dir, nil, false); err != nil {
		t.Fatal(err)
	}
	first := startNode(t, g.dir, "n1", true, true)
	g.nodes = append(g.nodes, first)
	waitFor(t, 10*time.Second, "a leader", func() bool { return first.IsLeader() })
	for i := 2; i <= voters+nonvoters; i++ {
		voter := i <= voters
		n := startNode(t, g.dir, fmt.Sprintf("n%d", i), voter, false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := first.Join(ctx, JoinRequest{ID: n.ID(), RaftAddr: string(n.trans.LocalAddr()), Voter: voter}); err != nil {
			t.Fatal(err)
		}
		cancel()
		g.nodes = append(g.nodes, n)
	}
	for _, n := range g.nodes {
		waitFor(t, 10*time.Second, n.ID()+" to see a leader", func() bool { return n.Member() })
	}
	return g
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *group) leader() *Node {
	for _, n := range g.nodes {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

func (g *group) follower() *Node {
	for _, n := range g.nodes {
		if !n.IsLeader() {
			return n
		}
	}
	return nil
}

func cmd(ops ...directory.Op) directory.Command {
	return directory.NewCommand(time.Now(), "test", ops...)
}

func tenantOp(id string) directory.Op {
	return directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: id})
}

func userOp(tenant, id, email string) directory.Op {
	return directory.MakeOp(directory.OpUserCreate, directory.User{ID: id, Tenant: tenant, Email: email})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestForwardedWritesAndReadYourWrites(t *testing.T) {
	g := newGroup(t, 3, 1)
	edge := g.nodes[3]
	if _, err := edge.Propose(ctxT(t), cmd(tenantOp("acme"))); err != nil {
		t.Fatalf("write through the non-voter: %v", err)
	}
	// Propose returns once the proposing replica applied it: read-your-writes on that node at once.
	if _, err := edge.Store().Tenant("acme"); err != nil {
		t.Fatalf("edge does not see its own write: %v", err)
	}
	f := g.follower()
	res, err := f.Propose(ctxT(t), cmd(userOp("acme", "u1", "ann@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range g.nodes {
		if err := n.WaitApplied(ctxT(t), res.Index); err != nil {
			t.Fatalf("%s: %v", n.ID(), err)
		}
		if _, err := n.Store().UserByEmail("acme", "ANN@example.com"); err != nil {
			t.Errorf("%s after WaitApplied(%d): %v", n.ID(), res.Index, err)
		}
	}
	// A refusal of the state machine crosses the forward as the directory's own error.
	_, err = edge.Propose(ctxT(t), cmd(userOp("acme", "u2", "Ann@Example.com")))
	if e, ok := directory.AsError(err); !ok || e.Code != directory.CodeConflict {
		t.Fatalf("duplicate email through a forward: %v, want a conflict", err)
	}
	if IsRetryable(err) {
		t.Error("a conflict must not be retryable")
	}
}

func TestLinearizableReadOnFollower(t *testing.T) {
	g := newGroup(t, 3, 0)
	l, f := g.leader(), g.follower()
	if _, err := l.Propose(ctxT(t), cmd(tenantOp("acme"))); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("u%d", i)
		if _, err := l.Propose(ctxT(t), cmd(userOp("acme", id, id+"@example.com"))); err != nil {
			t.Fatal(err)
		}
		// After the barrier the follower holds everything committed before it: the write just made.
		if err := f.Barrier(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Store().User("acme", id); err != nil {
			t.Fatalf("linearizable read of %s on a follower: %v", id, err)
		}
	}
}

func TestApplyNotifications(t *testing.T) {
	g := newGroup(t, 1, 1)
	var mu sync.Mutex
	var seen []Applied
	g.nodes[1].Listen(func(a Applied) {
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
	})
	res, err := g.nodes[0].Propose(ctxT(t), cmd(tenantOp("acme"), userOp("acme", "u1", "a@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.nodes[1].WaitApplied(ctxT(t), res.Index); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var got *Applied
	for i := range seen {
		if seen[i].Index == res.Index {
			got = &seen[i]
		}
	}
	if got == nil {
		t.Fatalf("no notification for index %d in %+v", res.Index, seen)
	}
	want := map[string]bool{"tenant/acme": true, "user/u1": true}
	for _, c := range got.Changes {
		delete(want, c.Kind+"/"+c.ID)
	}
	if len(want) != 0 {
		t.Errorf("notification %+v lacks %v", got, want)
	}
}

func TestNoLeaderFailsFast(t *testing.T) {
	g := newGroup(t, 3, 1)
	edge := g.nodes[3]
	if _, err := edge.Propose(ctxT(t), cmd(tenantOp("acme"))); err != nil {
		t.Fatal(err)
	}
	// Take away the quorum: two of three voters stop.
	stopped := 0
	for _, n := range g.nodes[:3] {
		if stopped < 2 {
			n.Close()
			stopped++
		}
	}
	// Local reads go on.
	if _, err := edge.Store().Tenant("acme"); err != nil {
		t.Fatalf("local read without a leader: %v", err)
	}
	waitFor(t, 10*time.Second, "the edge to notice there is no leader", func() bool {
		_, addr := edge.Leader()
		return addr == ""
	})
	start := time.Now()
	_, err := edge.Propose(ctxT(t), cmd(tenantOp("other")))
	if !errors.Is(err, ErrNoLeader) || !IsRetryable(err) {
		t.Fatalf("write without a leader: %v, want ErrNoLeader (retryable)", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("write without a leader took %v to fail; it must fail fast", d)
	}
	if err := edge.Ready(); err == nil {
		t.Error("Ready() is nil without a leader")
	}
}

func TestJoinIsIdempotentAndRemoveWorks(t *testing.T) {
	g := newGroup(t, 3, 0)
	l := g.leader()
	n3 := g.nodes[2]
	res, err := l.Propose(ctxT(t), cmd(tenantOp("acme")))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range g.nodes {
		if err := n.WaitApplied(ctxT(t), res.Index); err != nil {
			t.Fatal(err)
		}
	}
	req := JoinRequest{ID: n3.ID(), RaftAddr: string(n3.trans.LocalAddr()), Voter: true}
	if err := g.follower().Join(ctxT(t), req); err != nil {
		t.Fatalf("joining again through a follower: %v", err)
	}
	st, err := l.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 3 || st.Leader != l.ID() {
		t.Fatalf("status after a repeated join: %+v", st)
	}
	for _, ns := range st.Nodes {
		if !ns.Reachable || ns.Suffrage != "voter" || ns.AppliedIndex == 0 {
			t.Errorf("node status %+v", ns)
		}
	}
	victim := g.follower()
	if err := l.Remove(ctxT(t), victim.ID()); err != nil {
		t.Fatal(err)
	}
	st, _ = l.Status(ctxT(t))
	if len(st.Nodes) != 2 {
		t.Errorf("status after remove has %d nodes", len(st.Nodes))
	}
}
