package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
)

// benchTenant is the one tenant every scenario writes into and reads from.
const benchTenant = "bench"

// raftWrites measures replicated writes: cfg.Writers proposers each propose one small command (create a
// group), wait for it to be committed and applied, and propose the next, so raft batches log appends as a
// busy leader does. One node runs with the in-memory transport; several run on 127.0.0.1 with mutual TLS,
// each with its own data directory, and are measured twice: proposing to the leader, then through a
// follower, which forwards to the leader and waits for its own replica to apply the write.
func raftWrites(cfg Config, nodes int) Scenario {
	name := "raft-write/1-node"
	if nodes > 1 {
		name = fmt.Sprintf("raft-write/%d-node-mtls", nodes)
	}
	return Scenario{
		Name:     name,
		Baseline: fsyncBaselineName(cfg.Writers),
		Run: func(ctx context.Context) (Figures, error) {
			dir, err := os.MkdirTemp(cfg.Dir, "postern-bench-raft-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			c, err := startLocalCluster(ctx, dir, nodes, cfg.logger())
			if err != nil {
				return nil, err
			}
			defer c.close()
			var seq atomic.Uint64
			propose := func(ctx context.Context, via *cluster.Node) (*directory.Result, error) {
				n := seq.Add(1)
				g := directory.Group{ID: directory.NewID(), Tenant: benchTenant, Name: fmt.Sprintf("g%d", n)}
				return via.Propose(ctx, directory.NewCommand(time.Now(), "bench", directory.MakeOp(directory.OpGroupCreate, g)))
			}
			if err := c.checkWrites(ctx, propose); err != nil {
				return nil, err
			}
			phase := func(via *cluster.Node) (*measure, error) {
				return closedLoop(ctx, cfg.Writers, cfg.Duration, func(int) func(context.Context) error {
					return func(ctx context.Context) error { _, err := propose(ctx, via); return err }
				})
			}
			leader, follower := c.leaderAndFollower()
			toLeader, err := phase(leader)
			if err != nil {
				return nil, fmt.Errorf("proposing to the leader: %w", err)
			}
			var viaFollower *measure
			if follower != nil {
				if viaFollower, err = phase(follower); err != nil {
					return nil, fmt.Errorf("proposing through a follower: %w", err)
				}
			}
			c.close() // idle nodes would still compete with the baseline for the disk and the CPUs
			base, err := measureFsyncBaseline(ctx, cfg, dir)
			if err != nil {
				return nil, err
			}
			if follower == nil {
				return throughput("", "writes/s", toLeader, base), nil
			}
			return append(throughput("to leader: ", "writes/s", toLeader, base),
				throughput("via follower: ", "writes/s", viaFollower, base)...), nil
		},
	}
}

// localCluster is a raft group of voters in this process, each node with its own directory store on disk.
type localCluster struct {
	nodes  []*cluster.Node
	stores []*directory.Store
}

// startLocalCluster starts n voters under dir and waits until all are members and a leader is elected. One
// node needs no network; several listen on free 127.0.0.1 ports with mutual TLS from development certificates.
func startLocalCluster(ctx context.Context, dir string, n int, log *slog.Logger) (_ *localCluster, err error) {
	c := &localCluster{}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	var addrs []string
	var serverTLS, clientTLS *tls.Config // nil: one node, no network
	if n > 1 {
		certs := filepath.Join(dir, "certs")
		if err := cluster.GenerateDevCerts(certs, nil, false); err != nil {
			return nil, err
		}
		if serverTLS, clientTLS, err = cluster.LoadTLS(certs); err != nil {
			return nil, err
		}
		if addrs, err = freeLoopbackAddrs(n); err != nil {
			return nil, err
		}
	}
	for i := range n {
		nodeDir := filepath.Join(dir, fmt.Sprintf("node-%d", i+1))
		store, err := directory.Open(filepath.Join(nodeDir, "directory"), directory.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		c.stores = append(c.stores, store)
		cfg := cluster.Config{
			ID: fmt.Sprintf("bench-%d", i+1), DataDir: nodeDir, Voter: true, Bootstrap: i == 0,
			ServerTLS: serverTLS, ClientTLS: clientTLS, Store: store, Logger: log, QuietRaft: true,
		}
		if addrs != nil {
			cfg.RaftAddr = addrs[i]
		}
		node, err := cluster.Start(cfg)
		if err != nil {
			return nil, fmt.Errorf("starting node %s: %w", cfg.ID, err)
		}
		c.nodes = append(c.nodes, node)
	}
	first := c.nodes[0]
	if err := waitUntil(ctx, 15*time.Second, "the first node becomes leader", first.IsLeader); err != nil {
		return nil, err
	}
	for i, node := range c.nodes[1:] {
		if err := first.Join(ctx, cluster.JoinRequest{ID: node.ID(), RaftAddr: addrs[i+1], Voter: true}); err != nil {
			return nil, fmt.Errorf("joining node %s: %w", node.ID(), err)
		}
	}
	allMembers := func() bool {
		for _, node := range c.nodes {
			if !node.Member() {
				return false
			}
		}
		return true
	}
	if err := waitUntil(ctx, 15*time.Second, "every node sees itself a member under a leader", allMembers); err != nil {
		return nil, err
	}
	log.Info("cluster up", "nodes", n, "tls", n > 1)
	return c, nil
}

// checkWrites creates the tenant and proves, before anything is timed, that a write proposed on any node is
// applied on every node.
func (c *localCluster) checkWrites(ctx context.Context, propose func(context.Context, *cluster.Node) (*directory.Result, error)) error {
	leader, _ := c.leaderAndFollower()
	res, err := leader.Propose(ctx, directory.NewCommand(time.Now(), "bench",
		directory.MakeOp(directory.OpTenantCreate, directory.Tenant{ID: benchTenant})))
	if err != nil {
		return fmt.Errorf("creating the bench tenant: %w", err)
	}
	last := res.Index
	var names []string
	for _, via := range c.nodes {
		res, err := propose(ctx, via)
		if err != nil {
			return fmt.Errorf("checking a write through %s: %w", via.ID(), err)
		}
		if res == nil || len(res.Outputs) == 0 {
			return fmt.Errorf("checking a write through %s: the result has no output", via.ID())
		}
		var g directory.Group
		if err := json.Unmarshal(res.Outputs[0], &g); err != nil {
			return fmt.Errorf("reading the check write's result: %w", err)
		}
		names = append(names, g.Name)
		last = max(last, res.Index)
	}
	for _, node := range c.nodes {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := node.WaitApplied(wctx, last)
		cancel()
		if err != nil {
			return fmt.Errorf("waiting for %s to apply the check writes: %w", node.ID(), err)
		}
		for _, name := range names {
			if _, err := node.Store().GroupByName(benchTenant, name); err != nil {
				return fmt.Errorf("check write %q is not readable on %s: %w", name, node.ID(), err)
			}
		}
	}
	return nil
}

// leaderAndFollower returns the current leader and, in a cluster of several, one follower.
func (c *localCluster) leaderAndFollower() (leader, follower *cluster.Node) {
	for _, n := range c.nodes {
		if n.IsLeader() && leader == nil {
			leader = n
		} else if follower == nil {
			follower = n
		}
	}
	if leader == nil { // an election in progress: propose anywhere, it is forwarded
		leader = c.nodes[0]
	}
	if follower == leader {
		follower = nil
	}
	return leader, follower
}

// close stops every node and store; calling it again does nothing.
func (c *localCluster) close() {
	for _, n := range c.nodes {
		n.Close()
	}
	for _, s := range c.stores {
		s.Close()
	}
}

// freeLoopbackAddrs finds n free TCP ports on 127.0.0.1. They are free when asked; another process could take
// one before the node listens on it, which start-up then reports.
func freeLoopbackAddrs(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// waitUntil polls cond until it holds, for at most d.
func waitUntil(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting until %s: %w", what, ctx.Err())
		}
	}
	return nil
}
