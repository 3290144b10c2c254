package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The edge scenarios drive a real `postern dev` process over loopback HTTP, as a customer's app and its
// users' browsers would, and read that process's CPU time from /proc to give figures per core of the
// server alone (the load generator runs on the same machine and would otherwise be counted with it).

// posternBinary is cmd/postern, built once for every scenario of a run that needs it.
//
// Concurrency: path may be called from any goroutine.
type posternBinary struct {
	parent string // where the build directory goes; "" means os.TempDir()
	log    *slog.Logger

	mu   sync.Mutex
	dir  string // the build directory, once built
	path string
}

// get builds the binary on first use, with `go build` in the module this package belongs to (the go
// command and the source must be there: postern-bench runs from a checkout), and returns its path. A
// failed build is tried again by the next caller.
func (b *posternBinary) get(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path != "" {
		return b.path, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building postern: finding the go command: %w", err)
	}
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("building postern: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("building postern: not inside the postern module (run postern-bench from a checkout)")
	}
	dir, err := os.MkdirTemp(b.parent, "postern-bench-bin-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "postern")
	start := time.Now()
	build := exec.CommandContext(ctx, goCmd, "build", "-o", path, "postern.dev/postern/cmd/postern")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building postern: go build ./cmd/postern: %w\n%s", err, out)
	}
	b.log.Info("built postern", "path", path, "elapsed", time.Since(start).Round(time.Millisecond))
	b.dir, b.path = dir, path
	return path, nil
}

// remove deletes the build; the next get builds again.
func (b *posternBinary) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	b.dir, b.path = "", ""
}

// devEdge is a running `postern dev`: every role in one process, a single-node directory on disk under the
// scenario's directory, the sample tenant "demo" created, and the edge and admin API on free loopback
// ports.
type devEdge struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has been reaped
	logPath  string        // its standard error (the structured log)
	edgeURL  string        // http://127.0.0.1:port, also the public URL: issuers are edgeURL + "/" + tenant
	adminURL string
	token    string // admin API bearer token
	http     *http.Client
}

var (
	devEdgeLine  = regexp.MustCompile(`Edge:\s+(http://\S+)`)
	devAdminLine = regexp.MustCompile(`Admin API:\s+(http://\S+?)/admin/v1/`)
)

// startDevEdge starts `postern dev` with its data in dir and waits until it has printed its URLs and its
// edge answers ready. The caller stops it.
func startDevEdge(ctx context.Context, bin *posternBinary, dir string, log *slog.Logger) (_ *devEdge, err error) {
	path, err := bin.get(ctx)
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	e := &devEdge{
		exited: make(chan struct{}), logPath: filepath.Join(dir, "postern.log"),
		token: base64.RawURLEncoding.EncodeToString(tok),
		http:  &http.Client{Timeout: 30 * time.Second},
	}
	stdoutPath := filepath.Join(dir, "postern.out")
	stdout, err := os.Create(stdoutPath)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(e.logPath)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	e.cmd = exec.Command(path, "dev", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--sample-upstream-listen", "127.0.0.1:0")
	// Only the admin token comes from the environment: the KEK is generated in the data directory.
	e.cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "POSTERN_") }),
		"POSTERN_ADMIN_TOKEN="+e.token)
	e.cmd.Stdout, e.cmd.Stderr = stdout, stderr
	e.cmd.SysProcAttr = childProcAttr()
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postern dev: %w", err)
	}
	go func() {
		e.cmd.Wait()
		close(e.exited)
	}()
	defer func() {
		if err != nil {
			e.stop()
			err = fmt.Errorf("%w%s", err, e.logTail())
		}
	}()
	log.Info("started postern dev", "pid", e.cmd.Process.Pid)

	printed := func() bool {
		out, _ := os.ReadFile(stdoutPath)
		if m := devEdgeLine.FindSubmatch(out); m != nil {
			e.edgeURL = string(m[1])
		}
		if m := devAdminLine.FindSubmatch(out); m != nil {
			e.adminURL = string(m[1])
		}
		return e.edgeURL != "" && e.adminURL != "" || e.hasExited()
	}
	if err := waitUntil(ctx, 60*time.Second, "postern dev prints its URLs", printed); err != nil {
		return nil, err
	}
	if e.hasExited() {
		return nil, fmt.Errorf("postern dev exited at start-up: %v", e.cmd.ProcessState)
	}
	ready := func() bool {
		if e.hasExited() {
			return true
		}
		resp, err := e.http.Get(e.edgeURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if err := waitUntil(ctx, 30*time.Second, "the edge answers ready", ready); err != nil {
		return nil, err
	}
	if e.hasExited() {
		return nil, fmt.Errorf("postern dev exited at start-up: %v", e.cmd.ProcessState)
	}
	return e, nil
}

func (e *devEdge) hasExited() bool {
	select {
	case <-e.exited:
		return true
	default:
		return false
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits until it is gone; calling it again
// does nothing.
func (e *devEdge) stop() {
	if e.hasExited() {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		<-e.exited
	}
	e.http.CloseIdleConnections()
}

// logTail is the end of the process's log, for an error message.
func (e *devEdge) logTail() string {
	b, err := os.ReadFile(e.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	const tail = 4 << 10
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return "\npostern dev log (end):\n" + string(b)
}

// issuer is the tenant's issuer (the edge's public URL is its listener in dev mode).
func (e *devEdge) issuer(tenant string) string { return e.edgeURL + "/" + tenant }

// admin calls the admin API and decodes a 2xx answer's JSON into out (when not nil).
func (e *devEdge) admin(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.adminURL+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("admin API %s %s: HTTP %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("admin API %s %s: reading the answer: %w", method, path, err)
		}
	}
	return nil
}

func (e *devEdge) pid() int { return e.cmd.Process.Pid }

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, which Linux fixes at 100 on every
// architecture Go supports, whatever the kernel's own tick rate.
const userHZ = 100

// processCPUTime reads utime+stime of a process from /proc/<pid>/stat (proc(5)): 10 ms resolution, so a
// phase of a few seconds on a busy process measures it to a fraction of a percent. Linux only.
func processCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d (needs Linux's /proc): %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces; the fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("reading /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (field 14) is f[11] and stime (field 15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("reading /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
