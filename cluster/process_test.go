package cluster_test

// Whole-cluster tests on real processes: three `postern directory` voters and one `postern edge`
// non-voter on loopback ports, with mutual TLS between them, killed with SIGKILL and restarted on their
// data. They take a while (see skipUnlessLong); the harness is in process_harness_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Writes taken by any node, voter or edge, reach the leader and then every replica; the cluster status
// command shows the members with their suffrage.
func TestClusterReplicatesWritesFromAnyNode(t *testing.T) {
	skipUnlessLong(t)
	c := startCluster(t, 3, 1)
	tenantIndex := c.createTenant(c.proc("n1"), "acme")

	type created struct {
		email, id string
		index     uint64
	}
	var users []created
	for _, p := range c.procs {
		email := "user-of-" + p.id + "@example.com"
		body := map[string]any{"email": email, "password": "correct-horse-battery-" + p.id}
		resp := c.mustCall(p, "POST", "/admin/v1/tenants/acme/users", body, nil, http.StatusCreated)
		var u userView
		if err := json.Unmarshal(resp.body, &u); err != nil {
			t.Fatal(err)
		}
		if resp.index() <= tenantIndex {
			t.Fatalf("user created via %s at index %q, not after the tenant's %d", p.id, resp.header.Get("X-Postern-Index"), tenantIndex)
		}
		users = append(users, created{email, u.ID, resp.index()})
	}

	var maxIndex uint64
	for _, u := range users {
		maxIndex = max(maxIndex, u.index)
		for _, p := range c.procs {
			// Read-your-writes: the node waits until its replica has applied the write's index.
			resp := c.mustCall(p, "GET", "/admin/v1/tenants/acme/users?email="+url.QueryEscape(u.email), nil,
				map[string]string{"X-Postern-Min-Index": strconv.FormatUint(u.index, 10)}, http.StatusOK)
			var got []userView
			if err := json.Unmarshal(resp.body, &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != u.id {
				t.Errorf("%s on %s: got %s, want user %s", u.email, p.id, resp.body, u.id)
			}
		}
	}

	// `postern cluster status` against a node that is not the leader (the edge) prints the whole cluster.
	cmd := exec.Command(harness.bin, "cluster", "status", "--server", c.edge().adminURL())
	cmd.Env = append(os.Environ(), "POSTERN_ADMIN_TOKEN="+harness.tok)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("postern cluster status: %v\n%s", err, stderrOf(err))
	}
	var st struct {
		Leader string           `json:"leader"`
		Nodes  []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("postern cluster status printed no JSON: %v\n%s", err, out)
	}
	if p := c.proc(st.Leader); !p.voter {
		t.Errorf("leader %s is not a voter", st.Leader)
	}
	if len(st.Nodes) != 4 {
		t.Fatalf("cluster status lists %d nodes, want 4:\n%s", len(st.Nodes), out)
	}
	count := map[string]int{}
	for _, n := range st.Nodes {
		id, _ := n["id"].(string)
		suffrage, _ := n["suffrage"].(string)
		count[suffrage]++
		want := "voter"
		if !c.proc(id).voter {
			want = "nonvoter"
		}
		if suffrage != want {
			t.Errorf("node %s has suffrage %q, want %q", id, suffrage, want)
		}
		if addr, _ := n["raft_addr"].(string); addr != c.proc(id).raftAddr {
			t.Errorf("node %s has raft_addr %q, want %q", id, addr, c.proc(id).raftAddr)
		}
		applied, ok := n["applied_index"].(float64)
		if !ok {
			t.Errorf("node %s has no applied_index:\n%s", id, out)
		} else if uint64(applied) < maxIndex {
			t.Errorf("node %s has applied_index %d, but it served a read at index %d", id, uint64(applied), maxIndex)
		}
	}
	if count["voter"] != 3 || count["nonvoter"] != 1 {
		t.Errorf("suffrage counts %v, want 3 voters and 1 nonvoter:\n%s", count, out)
	}
}

// Killing the leader while clients write loses no acknowledged write; a new leader takes over within
// seconds, and the killed node catches up when it comes back.
func TestLeaderKillDuringWrites(t *testing.T) {
	skipUnlessLong(t)
	c := startCluster(t, 3, 1)
	c.createTenant(c.proc("n1"), "acme")

	const total, killAfter = 1000, 200
	emails := make([]string, total)
	want := map[string]bool{}
	for i := range emails {
		emails[i] = fmt.Sprintf("u%04d@example.com", i)
		want[emails[i]] = true
	}
	w := newWriter(c, "acme", c.procs...)
	reached := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	type outcome struct {
		maxIndex uint64
		err      error
	}
	result := make(chan outcome, 1)
	start := time.Now()
	go func() {
		idx, err := w.createUsers(ctx, emails, 6, func(done int) {
			if done >= killAfter {
				once.Do(func() { close(reached) })
			}
		})
		result <- outcome{idx, err}
	}()
	select {
	case <-reached:
	case o := <-result:
		t.Fatalf("writes ended before %d were acknowledged: %v", killAfter, o.err)
	}

	old := c.leader(c.procs...)
	survivors := c.procs[:0:0]
	for _, p := range c.procs {
		if p != old {
			survivors = append(survivors, p)
		}
	}
	w.drop(old)
	killedAt := time.Now()
	old.kill(t)
	var newLeader string
	c.eventually("a new leader after killing "+old.id, 15*time.Second, func() error {
		for _, p := range survivors {
			if st, err := c.status(p); err == nil && st.Leader != "" && st.Leader != old.id {
				newLeader = st.Leader
				return nil
			}
		}
		return fmt.Errorf("no leader other than %s yet", old.id)
	})
	election := time.Since(killedAt)
	t.Logf("killed leader %s after %d writes; %s leads after %v", old.id, killAfter, newLeader, election.Round(time.Millisecond))
	if election > 5*time.Second {
		t.Errorf("a new leader took %v after the leader was killed, want at most 5s", election)
	}

	o := <-result
	if o.err != nil {
		t.Fatalf("not every write was acknowledged: %v", o.err)
	}
	t.Logf("%d writes acknowledged in %v: %d retries, %d acknowledged by a conflict on a retry", total,
		time.Since(start).Round(time.Millisecond), w.retries.Load(), w.late.Load())

	// Every acknowledged write is on every surviving replica, edge included, and nothing else is.
	for _, p := range survivors {
		c.waitUsers(p, "acme", "linearizable", want, 30*time.Second)
	}
	// The killed node comes back on its own data and catches up.
	old.start(t)
	c.waitReady(old)
	c.waitUsers(old, "acme", "linearizable", want, 60*time.Second)
	c.waitMembers(old, len(c.procs))
}

// A follower that missed more writes than the leader keeps in its log catches up by installing a
// snapshot.
func TestLaggingNodeCatchesUpBySnapshot(t *testing.T) {
	skipUnlessLong(t)
	const trailing = 256
	// Raft checks for a snapshot every half second; raft-wal frees a compacted log only a whole segment
	// at a time, so segments are small enough for the leader to drop what the lagging node misses.
	c := startCluster(t, 3, 1, "--snapshot-threshold", "512", "--trailing-logs", strconv.Itoa(trailing),
		"--snapshot-interval", "500ms", "--raft-segment-size", strconv.Itoa(256<<10))
	c.createTenant(c.proc("n1"), "acme")
	leader := c.leader(c.procs...)
	var lagger *proc
	for _, p := range c.voters() {
		if p != leader {
			lagger = p
			break
		}
	}
	lagger.kill(t)
	// A write appended after the kill: the lagging node holds no entry at or after its index.
	lagged := c.createTenant(leader, "marker")

	const total = 10000
	emails := make([]string, total)
	want := map[string]bool{}
	for i := range emails {
		emails[i] = fmt.Sprintf("lag%05d@example.com", i)
		want[emails[i]] = true
	}
	var alive []*proc
	for _, p := range c.procs {
		if p != lagger {
			alive = append(alive, p)
		}
	}
	w := newWriter(c, "acme", alive...)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := w.createUsers(ctx, emails, 32, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes in %v (%d retries) while %s was down (holding entries before index %d)", total,
		time.Since(start).Round(time.Millisecond), w.retries.Load(), lagger.id, lagged)

	// The leader must have dropped entries the lagging node misses, or it could send them instead.
	c.eventually(fmt.Sprintf("the leader dropping log entry %d", lagged), 30*time.Second, func() error {
		if first := firstLogIndex(t, leader); first <= lagged {
			return fmt.Errorf("%s's raft log starts at index %d", leader.id, first)
		}
		return nil
	})
	target, err := c.appliedIndex(leader)
	if err != nil {
		t.Fatal(err)
	}

	logFrom := lagger.logSize()
	restarted := time.Now()
	lagger.start(t)
	c.eventually(lagger.id+" catching up to index "+strconv.FormatUint(target, 10), 90*time.Second, func() error {
		got, err := c.appliedIndex(lagger)
		if err != nil {
			return err
		}
		if got < target {
			return fmt.Errorf("%s is at index %d", lagger.id, got)
		}
		return nil
	})
	t.Logf("%s caught up to index %d in %v", lagger.id, target, time.Since(restarted).Round(time.Millisecond))
	c.waitUsers(lagger, "acme", "local", want, 10*time.Second)
	log := lagger.logFrom(logFrom)
	i := strings.Index(log, "installed a raft snapshot")
	if i < 0 {
		t.Fatalf("%s caught up without installing a snapshot; its log since the restart:\n%s", lagger.id, log)
	}
	line := log[strings.LastIndex(log[:i], "\n")+1:]
	t.Logf("%s: %s", lagger.id, line[:strings.IndexByte(line+"\n", '\n')])
}

// firstLogIndex is the first index of the oldest raft log segment file in p's data directory: raft-wal
// names each segment after the index it starts at.
func firstLogIndex(t *testing.T, p *proc) uint64 {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(p.dataDir, "raft", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("%s has no raft log segments (%v)", p.id, err)
	}
	slices.Sort(segs)
	base, err := strconv.ParseUint(strings.SplitN(filepath.Base(segs[0]), "-", 2)[0], 10, 64)
	if err != nil {
		t.Fatalf("raft log segment %s: %v", segs[0], err)
	}
	return base
}

// Fifty clients racing to create one email (in different cases) through all four nodes: one wins, the
// others are told it is taken, and every replica agrees on the winner.
func TestConcurrentSameEmailOneWinner(t *testing.T) {
	skipUnlessLong(t)
	c := startCluster(t, 3, 1)
	c.createTenant(c.proc("n1"), "acme")

	const clients = 50
	type answer struct {
		via  string
		resp *apiResponse
		err  error
	}
	answers := make([]answer, clients)
	startGun := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		p := c.procs[i%len(c.procs)]
		email := "race.winner@example.com"
		if i%3 == 1 {
			email = "Race.Winner@Example.COM"
		} else if i%3 == 2 {
			email = "RACE.WINNER@EXAMPLE.COM"
		}
		wg.Go(func() {
			<-startGun
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := c.call(ctx, p, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": email}, nil)
			answers[i] = answer{p.id, resp, err}
		})
	}
	close(startGun)
	wg.Wait()

	var winner userView
	var winnerIndex uint64
	wins, conflicts := 0, 0
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("client %d via %s: %v", i, a.via, a.err)
		case a.resp.status == http.StatusCreated:
			wins++
			json.Unmarshal(a.resp.body, &winner)
			winnerIndex = a.resp.index()
		case a.resp.status == http.StatusConflict && a.resp.errorBody().Error.Code == "conflict":
			conflicts++
		default:
			t.Errorf("client %d via %s: %v, want 201 or 409 conflict", i, a.via, a.resp)
		}
	}
	if wins != 1 || conflicts != clients-1 {
		t.Fatalf("%d created and %d conflicts, want 1 and %d", wins, conflicts, clients-1)
	}
	if winner.Email != "race.winner@example.com" {
		t.Errorf("winner's email %q, want it normalised to lower case", winner.Email)
	}
	for _, p := range c.procs {
		resp := c.mustCall(p, "GET", "/admin/v1/tenants/acme/users?email=Race.Winner%40example.com", nil,
			map[string]string{"X-Postern-Min-Index": strconv.FormatUint(winnerIndex, 10)}, http.StatusOK)
		var got []userView
		json.Unmarshal(resp.body, &got)
		if len(got) != 1 || got[0].ID != winner.ID {
			t.Errorf("on %s the email finds %s, want user %s", p.id, resp.body, winner.ID)
		}
		all, err := c.listUsers(p, "acme", "linearizable")
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 {
			t.Errorf("%s lists %d users, want 1: %v", p.id, len(all), all)
		}
	}
}

// An edge that has lost its leader (no quorum of voters) keeps serving what it holds, says it is not
// ready, and refuses writes at once with a retryable error; once a quorum is back, writes work again.
func TestEdgeWithoutLeader(t *testing.T) {
	skipUnlessLong(t)
	c := startCluster(t, 3, 1)
	edge := c.edge()
	c.createTenant(edge, "acme")
	want := map[string]bool{}
	var last uint64
	for i := range 20 {
		email := fmt.Sprintf("kept%02d@example.com", i)
		last = c.mustCall(edge, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": email}, nil, http.StatusCreated).index()
		want[email] = true
	}
	c.mustCall(edge, "GET", "/admin/v1/tenants/acme", nil, map[string]string{"X-Postern-Min-Index": strconv.FormatUint(last, 10)}, http.StatusOK)

	// Kill the leader and one more voter: one voter of three is left, no quorum.
	leader := c.leader(edge)
	killed := []*proc{leader}
	var survivor *proc
	for _, p := range c.voters() {
		if p == leader {
			continue
		}
		if len(killed) < 2 {
			killed = append(killed, p)
		} else {
			survivor = p
		}
	}
	for _, p := range killed {
		p.kill(t)
	}
	t.Logf("killed %s (leader) and %s; %s is the only voter left", killed[0].id, killed[1].id, survivor.id)

	// Both of the edge's listeners say it is not ready, and why.
	for _, u := range []string{edge.adminURL() + "/readyz", "http://" + edge.edgeAddr + "/readyz"} {
		var last *apiResponse
		c.eventually("503 from "+u, 15*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			resp, err := c.callURL(ctx, u, "GET", nil, nil, false)
			if err != nil {
				return err
			}
			if last = resp; resp.status != http.StatusServiceUnavailable {
				return errors.New(resp.String())
			}
			return nil
		})
		if !strings.Contains(string(last.body), "no leader") {
			t.Errorf("%s: 503 without the reason: %q", u, last.body)
		}
	}
	for _, u := range []string{edge.adminURL() + "/healthz", "http://" + edge.edgeAddr + "/healthz"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.callURL(ctx, u, "GET", nil, nil, false)
		cancel()
		if err != nil || resp.status != http.StatusOK {
			t.Errorf("%s without a leader: %v %v, want 200", u, resp, err)
		}
	}

	// Local reads keep working.
	got, err := c.listUsers(edge, "acme", "local")
	if err != nil {
		t.Fatalf("listing users on the edge without a leader: %v", err)
	}
	if err := sameEmails(got, want); err != nil {
		t.Errorf("users on the edge without a leader: %v", err)
	}
	resp := c.mustCall(edge, "GET", "/admin/v1/tenants/acme/users/kept07@example.com", nil, nil, http.StatusOK)
	var u userView
	if err := json.Unmarshal(resp.body, &u); err != nil || u.Email != "kept07@example.com" {
		t.Errorf("reading one user on the edge without a leader: %s", resp.body)
	}

	// A write fails fast, with a retryable error.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	resp, err = c.call(ctx, edge, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": "refused@example.com"}, nil)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a write without a leader was refused in %v: %v (Retry-After %q)", took.Round(time.Millisecond), resp, resp.header.Get("Retry-After"))
	if took > 3*time.Second {
		t.Errorf("a write without a leader took %v to fail, want at most 3s", took)
	}
	e := resp.errorBody()
	if resp.status != http.StatusServiceUnavailable || e.Error.Code != "unavailable" {
		t.Errorf("a write without a leader: %v, want 503 with code unavailable", resp)
	}
	if resp.header.Get("Retry-After") == "" {
		t.Error("a write without a leader: no Retry-After header")
	}
	if !strings.Contains(strings.ToLower(e.Error.Message), "retry") {
		t.Errorf("a write without a leader: message %q does not say it can be retried", e.Error.Message)
	}

	// One voter back makes a quorum of two: writes through the edge work again.
	killed[1].start(t)
	c.waitReady(edge, killed[1], survivor)
	resp = c.mustCall(edge, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": "after@example.com"}, nil, http.StatusCreated)
	want["after@example.com"] = true
	c.mustCall(survivor, "GET", "/admin/v1/tenants/acme/users/after@example.com", nil,
		map[string]string{"X-Postern-Min-Index": strconv.FormatUint(resp.index(), 10)}, http.StatusOK)
	c.waitUsers(edge, "acme", "local", want, 10*time.Second)
}

// A voter that was killed, restarted and elected again takes the writes the edge forwards at once: the
// edge does not send them on connections the dead process left behind (which failed writes with a 503,
// some saying the write "may or may not have been applied").
func TestEdgeForwardsToRestartedLeader(t *testing.T) {
	skipUnlessLong(t)
	c := startCluster(t, 3, 1)
	edge := c.edge()
	c.createTenant(c.voters()[0], "acme")
	// Leaders are found by asking the voters only: a status call on the edge would itself use, and so
	// clear out, the edge's connections to the other nodes.
	leader := c.leader(c.voters()...)
	used := map[string]bool{}  // voters the edge forwarded writes to
	stale := map[string]bool{} // ...that were restarted since
	for round := 1; ; round++ {
		// Several writes at once, so that the edge keeps several connections to the leader.
		began := time.Now()
		var wg sync.WaitGroup
		for i := range 8 {
			email := fmt.Sprintf("round%d-%d@example.com", round, i)
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				resp, err := c.call(ctx, edge, "POST", "/admin/v1/tenants/acme/users", map[string]any{"email": email}, nil)
				if err != nil || resp.status != http.StatusCreated {
					t.Errorf("round %d: creating %s through the edge, %s leading: %v %v", round, email, leader.id, resp, err)
				}
			})
		}
		wg.Wait()
		t.Logf("round %d: %s leads (restarted since the edge last forwarded to it: %v); 8 writes through the edge took %v",
			round, leader.id, stale[leader.id], time.Since(began).Round(time.Millisecond))
		if stale[leader.id] || t.Failed() {
			return
		}
		if round == 4 {
			t.Fatal("no voter the edge had forwarded to was elected again after its restart")
		}
		used[leader.id] = true

		old := leader
		old.kill(t)
		c.eventually("a leader other than "+old.id, 15*time.Second, func() error {
			for _, p := range c.voters() {
				if st, err := c.status(p); p != old && err == nil && st.Leader != "" && st.Leader != old.id {
					return nil
				}
			}
			return fmt.Errorf("no leader other than %s yet", old.id)
		})
		old.start(t)
		c.waitReady(old, edge)
		stale[old.id] = used[old.id]
		leader = c.leader(c.voters()...)
	}
}

// stderrOf is the standard error an exec.Command's Output captured.
func stderrOf(err error) string {
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
