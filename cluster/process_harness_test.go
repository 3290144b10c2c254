package cluster_test

// The harness of the multi-process cluster tests (process_test.go): it builds the postern binary once,
// makes the shared secrets (mutual-TLS certificates, KEK, admin token), starts real `postern directory`
// and `postern edge` processes on loopback ports, kills them with SIGKILL, and talks to their admin APIs
// over HTTP. Every wait polls a condition under a deadline; nothing sleeps to synchronise.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// harness is what every process test shares: built once, removed by TestMain.
var harness struct {
	once sync.Once
	err  error
	dir  string // temporary root, removed after all tests
	bin  string // the postern binary
	tls  string // --tls-dir of every node
	kek  string // --kek-file of every node
	tok  string // POSTERN_ADMIN_TOKEN of every node

	mu      sync.Mutex
	running map[*proc]bool // processes not yet reaped, killed by TestMain should a test leak one
}

func TestMain(m *testing.M) {
	code := m.Run()
	harness.mu.Lock()
	for p := range harness.running {
		p.cmd.Process.Kill()
	}
	harness.mu.Unlock()
	if harness.dir != "" {
		os.RemoveAll(harness.dir)
	}
	os.Exit(code)
}

// setUpHarness builds the binary and writes the shared secrets, once per test binary. It is lazy so that
// the package's other tests (and -short runs) do not pay for a build.
func setUpHarness(t *testing.T) {
	t.Helper()
	harness.once.Do(func() { harness.err = buildHarness() })
	if harness.err != nil {
		t.Fatalf("setting up the process harness: %v", harness.err)
	}
}

func buildHarness() error {
	dir, err := os.MkdirTemp("", "postern-process-test-")
	if err != nil {
		return err
	}
	harness.dir = dir
	harness.running = map[*proc]bool{}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("finding the go command: %w", err)
	}
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("go env GOMOD: not inside a module")
	}
	harness.bin = filepath.Join(dir, "postern")
	build := exec.Command(goCmd, "build", "-o", harness.bin, "./cmd/postern")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/postern: %w\n%s", err, out)
	}
	harness.tls = filepath.Join(dir, "tls")
	if out, err := exec.Command(harness.bin, "cluster", "certs", "--out", harness.tls).CombinedOutput(); err != nil {
		return fmt.Errorf("postern cluster certs: %w\n%s", err, out)
	}
	key := make([]byte, 32)
	rand.Read(key)
	harness.kek = filepath.Join(dir, "kek")
	if err := os.WriteFile(harness.kek, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	harness.tok = base64.RawURLEncoding.EncodeToString(tok)
	return nil
}

// skipUnlessLong skips the process tests under -short and sets up the harness otherwise.
func skipUnlessLong(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real postern processes; run without -short")
	}
	setUpHarness(t)
}

// proc is one postern process (one node), which may be killed and started again on the same data and
// ports.
type proc struct {
	id        string
	voter     bool
	dataDir   string
	raftAddr  string
	adminAddr string
	edgeAddr  string // edge listener; "" for a directory node
	logPath   string // stdout and stderr of every run, appended
	firstArgs []string
	extra     []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run has been reaped
	runs   int
	down   bool // killed on purpose, not yet started again
}

func (p *proc) adminURL() string { return "http://" + p.adminAddr }

// start runs the process; the first run bootstraps or joins, later runs restart from the stored state.
func (p *proc) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			t.Fatalf("%s: started while it is still running", p.id)
		}
	}
	role := "directory"
	if !p.voter {
		role = "edge"
	}
	args := []string{role, "--data", p.dataDir, "--node-id", p.id, "--raft-addr", p.raftAddr,
		"--admin-listen", p.adminAddr, "--tls-dir", harness.tls, "--kek-file", harness.kek}
	if !p.voter {
		args = append(args, "--listen", p.edgeAddr)
	}
	if p.runs == 0 {
		args = append(args, p.firstArgs...)
	}
	args = append(args, p.extra...)
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== run %d: postern %s\n", p.runs+1, strings.Join(args, " "))
	cmd := exec.Command(harness.bin, args...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "POSTERN_")
	}), "POSTERN_ADMIN_TOKEN="+harness.tok)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: starting postern: %v", p.id, err)
	}
	p.cmd, p.exited, p.runs, p.down = cmd, make(chan struct{}), p.runs+1, false
	harness.mu.Lock()
	harness.running[p] = true
	harness.mu.Unlock()
	go func(exited chan struct{}) {
		cmd.Wait()
		harness.mu.Lock()
		delete(harness.running, p)
		harness.mu.Unlock()
		close(exited)
	}(p.exited)
}

// kill sends SIGKILL (no chance to flush or hand anything over) and waits until the process is gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.down = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("%s: kill -9: %v", p.id, err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still running 10s after SIGKILL", p.id)
	}
}

// logSize is the length of the process's log so far, to read only what a later run writes.
func (p *proc) logSize() int64 {
	fi, err := os.Stat(p.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logFrom reads the process's log from offset on.
func (p *proc) logFrom(offset int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// testCluster is a set of processes forming one cluster, and an HTTP client for their admin APIs.
type testCluster struct {
	t     *testing.T
	procs []*proc // voters n1.. first, then edges e1..
	http  *http.Client
}

// startCluster starts voters directory nodes and edges edge nodes, n1 bootstrapping and the others
// joining through n1's admin API, and waits until every node is ready and the cluster lists them all.
// extra flags go to every node.
func startCluster(t *testing.T, voters, edges int, extra ...string) *testCluster {
	t.Helper()
	return startClusterEdgeFlags(t, voters, edges, nil, extra...)
}

// startClusterEdgeFlags is startCluster with edgeFlags given to the edges only (--public-url, which
// directory nodes do not take).
func startClusterEdgeFlags(t *testing.T, voters, edges int, edgeFlags []string, extra ...string) *testCluster {
	t.Helper()
	dir := t.TempDir()
	c := &testCluster{t: t, http: &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}}
	// A raft and an admin address for every node, and an edge listener for every edge.
	addrs := freeAddrs(t, 2*voters+3*edges)
	for i := range voters + edges {
		p := &proc{voter: i < voters, extra: extra}
		if p.voter {
			p.id = fmt.Sprintf("n%d", i+1)
		} else {
			p.id = fmt.Sprintf("e%d", i-voters+1)
		}
		p.dataDir = filepath.Join(dir, p.id)
		p.logPath = filepath.Join(dir, p.id+".log")
		p.raftAddr, p.adminAddr, addrs = addrs[0], addrs[1], addrs[2:]
		if !p.voter {
			p.edgeAddr, addrs = addrs[0], addrs[1:]
			p.extra = append(slices.Clone(extra), edgeFlags...)
		}
		c.procs = append(c.procs, p)
	}
	// Cleanups run last-registered first: kill everything, then show the logs of a failed test.
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
	})
	t.Cleanup(func() {
		for _, p := range c.procs {
			p.kill(t)
		}
		c.http.CloseIdleConnections()
	})

	first := c.procs[0]
	first.firstArgs = []string{"--bootstrap"}
	first.start(t)
	c.waitReady(first)
	for _, p := range c.procs[1:] {
		p.firstArgs = []string{"--join", first.adminURL()}
		p.start(t)
	}
	c.waitReady(c.procs...)
	c.waitMembers(first, len(c.procs))
	return c
}

// freeAddrs finds n free loopback TCP addresses, holding them all open until all are found so that they
// are distinct.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

func (c *testCluster) proc(id string) *proc {
	for _, p := range c.procs {
		if p.id == id {
			return p
		}
	}
	c.t.Fatalf("no node %q in the cluster", id)
	return nil
}

func (c *testCluster) voters() []*proc {
	return slices.DeleteFunc(slices.Clone(c.procs), func(p *proc) bool { return !p.voter })
}

func (c *testCluster) edge() *proc {
	for _, p := range c.procs {
		if !p.voter {
			return p
		}
	}
	c.t.Fatal("the cluster has no edge")
	return nil
}

const noisyFasthttpWarning = "WARNING: Request.Body() reads the entire stream into memory"

// dumpLogs prints the end of every node's log.
func (c *testCluster) dumpLogs() {
	const tail = 48 << 10
	for _, p := range c.procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			c.t.Logf("--- %s: no log: %v", p.id, err)
			continue
		}
		// fasthttp warns on every admin request that reads its body whole; it drowns the rest.
		lines := strings.SplitAfter(string(b), "\n")
		kept := slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, noisyFasthttpWarning) })
		b = []byte(strings.Join(kept, ""))
		if len(b) > tail {
			b = append([]byte("[...]"), b[len(b)-tail:]...)
		}
		c.t.Logf("--- log of %s (%s; %d fasthttp body warnings left out):\n%s", p.id, p.logPath, len(lines)-len(kept), b)
	}
}

// apiResponse is one answer of the admin API.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// apiErrorBody is the admin API's error JSON.
type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (r *apiResponse) errorBody() apiErrorBody {
	var e apiErrorBody
	json.Unmarshal(r.body, &e)
	return e
}

func (r *apiResponse) index() uint64 {
	v, _ := strconv.ParseUint(r.header.Get("X-Postern-Index"), 10, 64)
	return v
}

func (r *apiResponse) String() string {
	return fmt.Sprintf("HTTP %d %s", r.status, bytes.TrimSpace(r.body))
}

// call sends one request to a node's admin API with the admin token; body, when not nil, is sent as JSON.
func (c *testCluster) call(ctx context.Context, p *proc, method, path string, body any, header map[string]string) (*apiResponse, error) {
	return c.callURL(ctx, p.adminURL()+path, method, body, header, true)
}

func (c *testCluster) callURL(ctx context.Context, u, method string, body any, header map[string]string, auth bool) (*apiResponse, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+harness.tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &apiResponse{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// mustCall is call for requests that must get the status want.
func (c *testCluster) mustCall(p *proc, method, path string, body any, header map[string]string, want int) *apiResponse {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.call(ctx, p, method, path, body, header)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, p.id, err)
	}
	if resp.status != want {
		c.t.Fatalf("%s %s on %s: %v, want HTTP %d", method, path, p.id, resp, want)
	}
	return resp
}

// eventually polls cond every 25ms until it returns nil or the deadline passes, then fails with the last
// error. A process of the cluster that exits meanwhile fails the test at once.
func (c *testCluster) eventually(what string, within time.Duration, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		for _, p := range c.procs {
			if p.exitedUnexpectedly() {
				c.t.Fatalf("%s: node %s exited (see its log below)", what, p.id)
			}
		}
		<-tick.C
	}
}

// exitedUnexpectedly reports whether the process ended without the test killing it.
func (p *proc) exitedUnexpectedly() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.down {
		return false
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// waitReady waits until each process answers 200 on /readyz of its admin listener (and of its edge
// listener, for an edge).
func (c *testCluster) waitReady(ps ...*proc) {
	c.t.Helper()
	for _, p := range ps {
		urls := []string{p.adminURL() + "/readyz"}
		if p.edgeAddr != "" {
			urls = append(urls, "http://"+p.edgeAddr+"/readyz")
		}
		for _, u := range urls {
			c.eventually(p.id+" ready at "+u, 60*time.Second, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				resp, err := c.callURL(ctx, u, "GET", nil, nil, false)
				if err != nil {
					return err
				}
				if resp.status != http.StatusOK {
					return errors.New(resp.String())
				}
				return nil
			})
		}
	}
}

// clusterStatus is GET /admin/v1/cluster, as CONTRACT.md describes `postern cluster status`.
type clusterStatus struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID           string `json:"id"`
		RaftAddr     string `json:"raft_addr"`
		Suffrage     string `json:"suffrage"`
		AppliedIndex uint64 `json:"applied_index"`
		Reachable    bool   `json:"reachable"`
	} `json:"nodes"`
}

func (c *testCluster) status(p *proc) (clusterStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st clusterStatus
	resp, err := c.call(ctx, p, "GET", "/admin/v1/cluster", nil, nil)
	if err != nil {
		return st, err
	}
	if resp.status != http.StatusOK {
		return st, errors.New(resp.String())
	}
	return st, json.Unmarshal(resp.body, &st)
}

// appliedIndex is the applied index p reports for itself.
func (c *testCluster) appliedIndex(p *proc) (uint64, error) {
	st, err := c.status(p)
	if err != nil {
		return 0, err
	}
	for _, n := range st.Nodes {
		if n.ID == p.id {
			return n.AppliedIndex, nil
		}
	}
	return 0, fmt.Errorf("%s does not list itself", p.id)
}

// waitMembers waits until p lists want nodes, all reachable, and a leader.
func (c *testCluster) waitMembers(p *proc, want int) {
	c.t.Helper()
	c.eventually("cluster of "+strconv.Itoa(want)+" nodes as "+p.id+" sees it", 60*time.Second, func() error {
		st, err := c.status(p)
		if err != nil {
			return err
		}
		if st.Leader == "" {
			return errors.New("no leader")
		}
		if len(st.Nodes) != want {
			return fmt.Errorf("%d nodes listed: %+v", len(st.Nodes), st.Nodes)
		}
		for _, n := range st.Nodes {
			if !n.Reachable {
				return fmt.Errorf("%s is not reachable", n.ID)
			}
		}
		return nil
	})
}

// leader finds the current leader, asking the given nodes in turn until one knows it.
func (c *testCluster) leader(ask ...*proc) *proc {
	c.t.Helper()
	var id string
	c.eventually("finding the leader", 30*time.Second, func() error {
		for _, p := range ask {
			if st, err := c.status(p); err == nil && st.Leader != "" {
				id = st.Leader
				return nil
			}
		}
		return errors.New("no node knows a leader")
	})
	return c.proc(id)
}

// createTenant creates a tenant through p and returns the write's index.
func (c *testCluster) createTenant(p *proc, id string) uint64 {
	c.t.Helper()
	return c.mustCall(p, "POST", "/admin/v1/tenants", map[string]any{"id": id, "display_name": id}, nil, http.StatusCreated).index()
}

// userView is a user as the admin API shows it.
type userView struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// listUsers reads every user of a tenant on p, page by page; consistency is "local" or "linearizable".
// It returns the users by email.
func (c *testCluster) listUsers(p *proc, tenant, consistency string) (map[string]string, error) {
	out := map[string]string{}
	after := ""
	for {
		q := url.Values{"limit": {"1000"}, "consistency": {consistency}}
		if after != "" {
			q.Set("after", after)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.call(ctx, p, "GET", "/admin/v1/tenants/"+tenant+"/users?"+q.Encode(), nil, nil)
		cancel()
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusOK {
			return nil, errors.New(resp.String())
		}
		var page []userView
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return nil, err
		}
		for _, u := range page {
			if prev, dup := out[u.Email]; dup {
				return nil, fmt.Errorf("email %s listed twice (users %s and %s)", u.Email, prev, u.ID)
			}
			out[u.Email] = u.ID
		}
		after = resp.header.Get("X-Next-After")
		if after == "" {
			return out, nil
		}
	}
}

// sameEmails compares a listing with the emails expected, describing the first differences.
func sameEmails(got map[string]string, want map[string]bool) error {
	var missing, extra []string
	for e := range want {
		if _, ok := got[e]; !ok {
			missing = append(missing, e)
		}
	}
	for e := range got {
		if !want[e] {
			extra = append(extra, e)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Errorf("%d users listed, %d expected: %d missing (first %v), %d unexpected (first %v)",
		len(got), len(want), len(missing), missing[:min(5, len(missing))], len(extra), extra[:min(5, len(extra))])
}

// waitUsers waits until p lists exactly the users want (by email) in tenant.
func (c *testCluster) waitUsers(p *proc, tenant, consistency string, want map[string]bool, within time.Duration) {
	c.t.Helper()
	c.eventually(fmt.Sprintf("%d users on %s", len(want), p.id), within, func() error {
		got, err := c.listUsers(p, tenant, consistency)
		if err != nil {
			return err
		}
		return sameEmails(got, want)
	})
}

// writer creates users through a changing set of nodes, round-robin, retrying what the cluster says is
// retryable (503 unavailable) and what never got an answer (connection errors), as a client must.
type writer struct {
	c       *testCluster
	tenant  string
	mu      sync.Mutex
	targets []*proc
	next    atomic.Uint64
	retries atomic.Int64 // attempts after the first
	late    atomic.Int64 // acknowledgements by a conflict on a retry
}

func newWriter(c *testCluster, tenant string, targets ...*proc) *writer {
	return &writer{c: c, tenant: tenant, targets: slices.Clone(targets)}
}

// drop stops sending writes to p.
func (w *writer) drop(p *proc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.targets = slices.DeleteFunc(w.targets, func(q *proc) bool { return q == p })
}

func (w *writer) pick() *proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.targets[int(w.next.Add(1)-1)%len(w.targets)]
}

// ack is an acknowledged user creation.
type ack struct {
	index uint64 // 0 when acknowledged by a conflict on a retry
	// byConflict: a retry found the email taken, so an earlier attempt that got no clear answer was
	// in fact applied.
	byConflict bool
}

// createUser creates a user with this email (no password: hashing is not what these tests measure),
// retrying until it is acknowledged or ctx ends.
func (w *writer) createUser(ctx context.Context, email string) (ack, error) {
	var last string
	for attempt := 0; ; attempt++ {
		p := w.pick()
		resp, err := w.c.call(ctx, p, "POST", "/admin/v1/tenants/"+w.tenant+"/users", map[string]any{"email": email}, nil)
		switch {
		case err != nil:
			last = fmt.Sprintf("via %s: %v", p.id, err)
		case resp.status == http.StatusCreated:
			return ack{index: resp.index()}, nil
		case resp.status == http.StatusConflict && resp.errorBody().Error.Code == "conflict" && attempt > 0:
			w.late.Add(1)
			return ack{byConflict: true}, nil
		case resp.status == http.StatusServiceUnavailable && resp.errorBody().Error.Code == "unavailable":
			last = fmt.Sprintf("via %s: %v", p.id, resp)
		default:
			return ack{}, fmt.Errorf("creating %s via %s (attempt %d): %v", email, p.id, attempt+1, resp)
		}
		if ctx.Err() != nil {
			return ack{}, fmt.Errorf("creating %s: gave up after %d attempts; last: %s", email, attempt+1, last)
		}
		w.retries.Add(1)
		select {
		case <-time.After(time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// createUsers creates the users of emails with workers concurrent clients, calling onAck after each
// acknowledgement, and returns the highest index a write reported.
func (w *writer) createUsers(ctx context.Context, emails []string, workers int, onAck func(done int)) (uint64, error) {
	jobs := make(chan string)
	var done atomic.Int64
	var maxIndex atomic.Uint64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for e := range jobs {
				a, err := w.createUser(ctx, e)
				if err != nil {
					errs <- err
					return
				}
				for {
					cur := maxIndex.Load()
					if a.index <= cur || maxIndex.CompareAndSwap(cur, a.index) {
						break
					}
				}
				n := done.Add(1)
				if onAck != nil {
					onAck(int(n))
				}
			}
		})
	}
	var err error
feed:
	for _, e := range emails {
		select {
		case jobs <- e:
		case err = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return maxIndex.Load(), err
}
