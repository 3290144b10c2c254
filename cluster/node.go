package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"

	"postern.dev/postern/directory"
)

// Config describes one node.
type Config struct {
	ID string
	// RaftAddr is the host:port this node listens on for other nodes and advertises to them. Empty means
	// a single node with no network at all (postern dev).
	RaftAddr string
	// DataDir holds the raft log, stable store and snapshots (under DataDir/raft).
	DataDir string
	// Voter is true for directory nodes, false for edges (non-voters: a full replica that never counts
	// for quorum).
	Voter bool
	// Bootstrap starts a new cluster with this node alone, unless the node already has raft state.
	Bootstrap bool
	Region    string
	// AdminURL is recorded for the cluster status and for operators.
	AdminURL string
	// ServerTLS and ClientTLS enable mutual TLS between nodes (see LoadTLS). Nil means plain TCP.
	ServerTLS, ClientTLS *tls.Config
	// SnapshotThreshold, TrailingLogs and SnapshotInterval tune raft's log compaction; zero keeps raft's
	// defaults.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration
	// LogSegmentSize is the size in bytes of the raft log's segment files; zero keeps raft-wal's 64 MiB.
	// Compaction frees the log a whole segment at a time: entries older than TrailingLogs stay readable,
	// and are sent to a lagging follower instead of a snapshot, until their segment is dropped.
	LogSegmentSize int
	// QuietRaft keeps raft's own log to errors (postern dev: a single node's election warnings are noise).
	QuietRaft bool
	// Store is the local directory replica the node drives.
	Store  *directory.Store
	Logger *slog.Logger
}

// ErrNoLeader means the cluster has no reachable leader now, so it cannot take writes. It is retryable:
// once a quorum of voters elects a leader, the same write succeeds.
var ErrNoLeader = errors.New("no leader: the cluster cannot take writes right now; retry shortly")

// ErrNotLeader means the request must be sent to the leader.
var ErrNotLeader = errors.New("this node is not the leader")

// retryable marks failures worth retrying later.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// notTaken marks a write that certainly was not applied, so it is safe to send again.
type notTaken struct{ retryable }

// IsRetryable reports whether err is a transient cluster condition (no leader, leader unreachable,
// leadership changing) after which the same request may succeed.
func IsRetryable(err error) bool {
	var r retryable
	var nt notTaken
	return errors.Is(err, ErrNoLeader) || errors.As(err, &r) || errors.As(err, &nt)
}

// Node is one running member of the cluster.
//
// Concurrency: every method may be called from any goroutine.
type Node struct {
	cfg   Config
	raft  *raft.Raft
	fsm   *fsm
	mux   *mux
	wal   *raftwal.WAL
	trans raft.Transport
	log   *slog.Logger

	pool   connPool
	stop   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once
}

// applyTimeout bounds how long a write waits for raft to take it.
const applyTimeout = 10 * time.Second

// Start opens the node's raft state, starts raft and, for a new cluster, bootstraps it.
func Start(cfg Config) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("node id is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := &Node{cfg: cfg, log: cfg.Logger, fsm: newFSM(cfg.Store, cfg.Logger), stop: make(chan struct{})}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(raftDir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("creating raft directory: %w", err)
	}
	level := hclog.Warn
	if cfg.QuietRaft {
		level = hclog.Error
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: level, Output: os.Stderr})
	wal, err := raftwal.Open(filepath.Join(raftDir, "wal"), raftwal.WithLogger(hlog), raftwal.WithSegmentSize(cfg.LogSegmentSize))
	if err != nil {
		return nil, fmt.Errorf("opening raft log: %w", err)
	}
	n.wal = wal
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog)
	if err != nil {
		wal.Close()
		return nil, fmt.Errorf("opening raft snapshots: %w", err)
	}
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		wal.Close()
		return nil, err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	// Loopback and one region: fail over within a couple of seconds. Several regions will want these
	// raised, which is why they are not constants of the protocol.
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	// The directory keeps its own applied index in the same transaction as each change, and
	// catchUpFromSnapshot above brought it up to the newest snapshot; raft need not restore again.
	rc.NoSnapshotRestoreOnStart = true
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}

	if cfg.RaftAddr == "" {
		_, n.trans = raft.NewInmemTransport(raft.ServerAddress(cfg.ID))
	} else {
		m, err := newMux(cfg.RaftAddr, cfg.ServerTLS, cfg.ClientTLS)
		if err != nil {
			wal.Close()
			return nil, fmt.Errorf("listening for raft on %s: %w", cfg.RaftAddr, err)
		}
		m.forward = n.serveForward
		n.mux = m
		go m.serve()
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: raftLayer{m}, MaxPool: 4, Timeout: 10 * time.Second, Logger: hlog,
		})
	}

	existing, err := raft.HasExistingState(wal, wal, snaps)
	if err != nil {
		n.closeTransport()
		wal.Close()
		return nil, fmt.Errorf("reading raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, wal, wal, snaps, n.trans)
	if err != nil {
		n.closeTransport()
		wal.Close()
		return nil, fmt.Errorf("starting raft: %w", err)
	}
	n.raft = r
	if cfg.Bootstrap && !existing {
		if !cfg.Voter {
			n.Close()
			return nil, errors.New("only a voter can bootstrap a cluster")
		}
		addr := n.trans.LocalAddr()
		err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			ID: raft.ServerID(cfg.ID), Address: addr, Suffrage: raft.Voter,
		}}}).Error()
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("bootstrapping cluster: %w", err)
		}
	}
	n.wg.Add(1)
	go n.registerSelf()
	return n, nil
}

// catchUpFromSnapshot restores the directory from the newest snapshot when the directory is behind it
// (its files were lost or rolled back); otherwise raft only replays the log entries after it.
func (n *Node) catchUpFromSnapshot(snaps *raft.FileSnapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("listing raft snapshots: %w", err)
	}
	if len(metas) == 0 || metas[0].Index <= n.cfg.Store.AppliedIndex() {
		return nil
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return fmt.Errorf("opening raft snapshot %s: %w", metas[0].ID, err)
	}
	defer rc.Close()
	n.log.Info("directory is behind the newest snapshot; restoring it", "snapshot_index", metas[0].Index,
		"applied_index", n.cfg.Store.AppliedIndex())
	if err := n.cfg.Store.Restore(rc); err != nil {
		return fmt.Errorf("restoring directory from snapshot %s: %w", metas[0].ID, err)
	}
	return nil
}

// registerSelf records this node in the directory once a leader exists, and again whenever its address
// or region changed, so the cluster status can show it.
func (n *Node) registerSelf() {
	defer n.wg.Done()
	want := directory.Node{
		ID: n.cfg.ID, RaftAddr: string(n.trans.LocalAddr()), AdminURL: n.cfg.AdminURL, Region: n.cfg.Region,
		Suffrage: suffrageName(n.cfg.Voter),
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if !n.Member() {
			continue
		}
		nodes, err := n.cfg.Store.Nodes()
		if err == nil {
			for _, have := range nodes {
				if have.ID == want.ID && have.RaftAddr == want.RaftAddr && have.AdminURL == want.AdminURL &&
					have.Region == want.Region && have.Suffrage == want.Suffrage {
					return
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = n.Propose(ctx, directory.NewCommand(time.Now(), "node:"+n.cfg.ID, directory.MakeOp(directory.OpNodePut, want)))
		cancel()
		if err == nil {
			return
		}
	}
}

// Member reports whether this node is in the raft configuration and a leader is known.
func (n *Node) Member() bool {
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return false
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.ID {
			return true
		}
	}
	return false
}

func suffrageName(voter bool) string {
	if voter {
		return "voter"
	}
	return "nonvoter"
}

// Store is the node's local directory replica; reads from it are local.
func (n *Node) Store() *directory.Store { return n.cfg.Store }

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Listen registers fn to be told of every applied command (see Applied).
func (n *Node) Listen(fn func(Applied)) { n.fsm.listen(fn) }

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's id and raft address, empty when there is none.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Propose replicates a command and returns its result once it is applied on this node too, so that a
// read here right after sees it. On a follower the command is forwarded to the leader. A refusal of the
// state machine comes back as *directory.Error; a transient cluster condition as a retryable error.
func (n *Node) Propose(ctx context.Context, cmd directory.Command) (*directory.Result, error) {
	data, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	res, err := n.propose(ctx, data)
	if err != nil {
		return res, err
	}
	if err := n.WaitApplied(ctx, res.Index); err != nil {
		return res, err
	}
	return res, nil
}

// propose sends the command to the leader. When the write certainly was not taken (the node it was sent to
// is no longer the leader, or could not be reached) and a leader is known, it tries again, for a little
// while; with no leader at all it fails at once with ErrNoLeader.
func (n *Node) propose(ctx context.Context, data []byte) (*directory.Result, error) {
	retryUntil := time.Now().Add(3 * time.Second)
	for attempt := 0; ; attempt++ {
		res, err := n.proposeOnce(ctx, data)
		var nt notTaken
		if err == nil || !errors.As(err, &nt) || time.Now().After(retryUntil) || ctx.Err() != nil {
			return res, err
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		case <-ctx.Done():
			return nil, err
		case <-n.stop:
			return nil, err
		}
	}
}

func (n *Node) proposeOnce(ctx context.Context, data []byte) (*directory.Result, error) {
	if n.raft.State() == raft.Leader {
		return n.applyLocal(ctx, data)
	}
	_, addr := n.Leader()
	if addr == "" {
		return nil, ErrNoLeader
	}
	resp, err := n.forward(ctx, addr, fwdRequest{Op: fwdApply, Command: data})
	if err != nil {
		return nil, err
	}
	return resp.Result, resp.err()
}

func (n *Node) applyLocal(ctx context.Context, data []byte) (*directory.Result, error) {
	timeout := applyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, notTaken{retryable{fmt.Errorf("leader changed before the write was taken: %w", err)}}
		case errors.Is(err, raft.ErrLeadershipLost):
			return nil, retryable{errors.New("leadership was lost while the write was in flight; it may or may not have been applied")}
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, retryable{errors.New("node is shutting down")}
		}
		return nil, err
	}
	resp := f.Response().(applyResponse)
	return resp.result, resp.err
}

// WaitApplied waits until this replica has applied index (read-your-writes), or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := n.fsm.waitChan()
		if n.cfg.Store.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return retryable{fmt.Errorf("replica has not reached index %d (at %d): %w", index, n.cfg.Store.AppliedIndex(), ctx.Err())}
		case <-n.stop:
			return retryable{errors.New("node is shutting down")}
		}
	}
}

// Barrier waits until this replica reflects every write committed before the call: a local read after it
// is linearizable. It costs a round trip to the leader and a raft entry.
func (n *Node) Barrier(ctx context.Context) error {
	var index uint64
	if n.raft.State() == raft.Leader {
		idx, err := n.barrierLocal(ctx)
		if err != nil {
			return err
		}
		index = idx
	} else {
		_, addr := n.Leader()
		if addr == "" {
			return ErrNoLeader
		}
		resp, err := n.forward(ctx, addr, fwdRequest{Op: fwdBarrier})
		if err != nil {
			return err
		}
		if err := resp.err(); err != nil {
			return err
		}
		index = resp.Index
	}
	return n.WaitApplied(ctx, index)
}

func (n *Node) barrierLocal(ctx context.Context) (uint64, error) {
	timeout := applyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return 0, retryable{fmt.Errorf("confirming leadership: %w", err)}
	}
	return n.cfg.Store.AppliedIndex(), nil
}

// JoinRequest asks the cluster to add a node.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
	Region   string `json:"region,omitempty"`
	AdminURL string `json:"admin_url,omitempty"`
}

// Join adds a node to the cluster (on the leader, forwarded there if need be). Joining again with the
// same id and address is a no-op, so a node may retry.
func (n *Node) Join(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" {
		return errors.New("a joining node needs an id and a raft address")
	}
	if n.raft.State() != raft.Leader {
		return n.forwardAdmin(ctx, fwdRequest{Op: fwdJoin, Join: &req})
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == req.ID || string(s.Address) == req.RaftAddr {
			sameVote := (s.Suffrage == raft.Voter) == req.Voter
			if string(s.ID) == req.ID && string(s.Address) == req.RaftAddr && sameVote {
				return nil
			}
			if err := n.raft.RemoveServer(s.ID, 0, applyTimeout).Error(); err != nil {
				return fmt.Errorf("replacing node %s: %w", s.ID, err)
			}
		}
	}
	var fut raft.IndexFuture
	if req.Voter {
		fut = n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, applyTimeout)
	} else {
		fut = n.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, applyTimeout)
	}
	if err := fut.Error(); err != nil {
		return fmt.Errorf("adding node %s: %w", req.ID, err)
	}
	n.log.Info("node joined", "id", req.ID, "raft_addr", req.RaftAddr, "voter", req.Voter)
	return nil
}

// Remove takes a node out of the cluster and forgets its record.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return n.forwardAdmin(ctx, fwdRequest{Op: fwdRemove, ID: id})
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, applyTimeout).Error(); err != nil {
		return fmt.Errorf("removing node %s: %w", id, err)
	}
	_, err := n.Propose(ctx, directory.NewCommand(time.Now(), "node:"+n.cfg.ID,
		directory.MakeOp(directory.OpNodeDelete, directory.Ref{ID: id})))
	return err
}

func (n *Node) forwardAdmin(ctx context.Context, req fwdRequest) error {
	_, addr := n.Leader()
	if addr == "" {
		return ErrNoLeader
	}
	resp, err := n.forward(ctx, addr, req)
	if err != nil {
		return err
	}
	return resp.err()
}

// Ready reports whether the node can serve fresh reads and take writes; the error says why not.
func (n *Node) Ready() error {
	if _, addr := n.Leader(); addr == "" {
		return ErrNoLeader
	}
	applied, commit := n.raft.AppliedIndex(), n.raft.CommitIndex()
	if commit > applied+1000 {
		return fmt.Errorf("replica is catching up: applied %d of %d", applied, commit)
	}
	return nil
}

// Status is the cluster as one node sees it.
type Status struct {
	Leader string       `json:"leader"`
	Nodes  []NodeStatus `json:"nodes"`
}

// NodeStatus is one member of the cluster. AppliedIndex is asked of the node itself; a node that does not
// answer shows Reachable false.
type NodeStatus struct {
	ID           string `json:"id"`
	RaftAddr     string `json:"raft_addr"`
	Suffrage     string `json:"suffrage"`
	Region       string `json:"region,omitempty"`
	AdminURL     string `json:"admin_url,omitempty"`
	AppliedIndex uint64 `json:"applied_index"`
	Reachable    bool   `json:"reachable"`
}

// Status asks every member for its applied index (in parallel, briefly) and reports the cluster.
func (n *Node) Status(ctx context.Context) (Status, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return Status{}, err
	}
	leaderID, _ := n.Leader()
	st := Status{Leader: leaderID}
	recorded := map[string]directory.Node{}
	if nodes, err := n.cfg.Store.Nodes(); err == nil {
		for _, rn := range nodes {
			recorded[rn.ID] = rn
		}
	}
	servers := f.Configuration().Servers
	st.Nodes = make([]NodeStatus, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		ns := NodeStatus{ID: string(s.ID), RaftAddr: string(s.Address), Suffrage: "voter"}
		if s.Suffrage != raft.Voter {
			ns.Suffrage = "nonvoter"
		}
		if rn, ok := recorded[ns.ID]; ok {
			ns.Region, ns.AdminURL = rn.Region, rn.AdminURL
		}
		st.Nodes[i] = ns
		if ns.ID == n.cfg.ID {
			st.Nodes[i].AppliedIndex, st.Nodes[i].Reachable = n.cfg.Store.AppliedIndex(), true
			continue
		}
		if n.mux == nil {
			continue
		}
		wg.Add(1)
		go func(i int, addr string) {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if resp, err := n.forward(c, addr, fwdRequest{Op: fwdStatus}); err == nil && resp.err() == nil {
				st.Nodes[i].AppliedIndex, st.Nodes[i].Reachable = resp.Index, true
			}
		}(i, ns.RaftAddr)
	}
	wg.Wait()
	return st, nil
}

// Snapshot asks raft to take a snapshot now (and so to compact its log).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// RestoreBackup replaces the whole cluster's directory with a backup stream (a directory snapshot, as
// written by a backup). It runs on the leader only; raft installs it on every other node.
func (n *Node) RestoreBackup(r io.Reader) error {
	if n.raft.State() != raft.Leader {
		id, _ := n.Leader()
		return fmt.Errorf("%w: send the restore to the leader (now %q)", ErrNotLeader, id)
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	// raft.Restore needs the size; spool to a temporary file so a large backup is not held in memory.
	tmp, err := os.CreateTemp(n.cfg.DataDir, "restore-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, r)
	if err != nil {
		return fmt.Errorf("reading backup: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// Check it before raft commits to it: a corrupt backup must change nothing.
	check, err := directory.OpenMemory(directory.Options{})
	if err != nil {
		return err
	}
	err = check.Restore(tmp)
	check.Close()
	if err != nil {
		return &directory.Error{Code: directory.CodeInvalid, Message: "the backup is not valid: " + err.Error()}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size, Configuration: f.Configuration(),
		ConfigurationIndex: f.Index()}
	return n.raft.Restore(meta, tmp, 5*time.Minute)
}

// Close stops the node: raft shuts down (a leader hands nothing over; the others elect a new one).
func (n *Node) Close() error {
	var err error
	n.closed.Do(func() {
		close(n.stop)
		if n.raft != nil {
			err = n.raft.Shutdown().Error()
		}
		n.closeTransport()
		n.pool.closeAll()
		n.wg.Wait()
		if n.wal != nil {
			if cerr := n.wal.Close(); err == nil {
				err = cerr
			}
		}
	})
	return err
}

func (n *Node) closeTransport() {
	if c, ok := n.trans.(io.Closer); ok {
		c.Close()
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
