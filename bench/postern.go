package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The edge scenarios drive a real `postern dev` process over loopback HTTP, as a customer's app and its
// users' browsers would, and read that process's CPU time from /proc to give figures per core of the
// server alone (the load generator runs on the same machine and would otherwise be counted with it).

// goBinary is a command of this module (cmd/postern, or the bench's own peer), built once for every
// scenario of a run that needs it.
//
// Concurrency: get and remove may be called from any goroutine.
type goBinary struct {
	pkg    string // the import path of the command, e.g. postern.dev/postern/cmd/postern
	parent string // where the build directory goes; "" means os.TempDir()
	log    *slog.Logger
	// env and flags are added to the go build command: GOOS=wasip1 and -buildmode=c-shared build an
	// extension guest rather than a program of this machine.
	env, flags []string

	mu   sync.Mutex
	dir  string // the build directory, once built
	path string
}

// get builds the binary on first use, with `go build` in the module this package belongs to (the go
// command and the source must be there: postern-bench runs from a checkout), and returns its path. A
// failed build is tried again by the next caller.
func (b *goBinary) get(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path != "" {
		return b.path, nil
	}
	name := path.Base(b.pkg)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building %s: finding the go command: %w", name, err)
	}
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("building %s: go env GOMOD: %w", name, err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("building %s: not inside the postern module (run postern-bench from a checkout)", name)
	}
	dir, err := os.MkdirTemp(b.parent, "postern-bench-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	start := time.Now()
	build := exec.CommandContext(ctx, goCmd, append(append([]string{"build"}, b.flags...), "-o", bin, b.pkg)...)
	build.Dir = filepath.Dir(gomod)
	if len(b.env) > 0 {
		build.Env = append(os.Environ(), b.env...)
	}
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building %s: go build %s: %w\n%s", name, b.pkg, err, out)
	}
	b.log.Info("built "+name, "path", bin, "elapsed", time.Since(start).Round(time.Millisecond))
	b.dir, b.path = dir, bin
	return bin, nil
}

// remove deletes the build; the next get builds again.
func (b *goBinary) remove() {
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
	*child
	edgeURL  string // http://127.0.0.1:port, also the public URL: issuers are edgeURL + "/" + tenant
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
func startDevEdge(ctx context.Context, bin *goBinary, dir string, log *slog.Logger) (_ *devEdge, err error) {
	path, err := bin.get(ctx)
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	e := &devEdge{token: base64.RawURLEncoding.EncodeToString(tok), http: &http.Client{Timeout: 30 * time.Second}}
	// Only the admin token comes from the environment: the KEK is generated in the data directory.
	env := append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "POSTERN_") }),
		"POSTERN_ADMIN_TOKEN="+e.token)
	e.child, err = startChild("postern dev", path, []string{"dev", "--data", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--sample-upstream-listen", "127.0.0.1:0"},
		env, dir, "postern")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.stop()
			err = fmt.Errorf("%w%s", err, e.logTail())
		}
	}()
	log.Info("started postern dev", "pid", e.pid())

	printed := func() bool {
		out := e.output()
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

// stop ends the process and closes the admin client's connections; calling it again does nothing.
func (e *devEdge) stop() {
	e.child.stop()
	e.http.CloseIdleConnections()
}

// edgeAddr is the edge's listener, host:port.
func (e *devEdge) edgeAddr() string { return strings.TrimPrefix(e.edgeURL, "http://") }

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

// profile takes a CPU profile of the edge process for the given time through the admin API and writes
// it to file. It runs beside a measured phase, so its own cost (small) is in that phase's figures.
func (e *devEdge) profile(ctx context.Context, d time.Duration, file string) error {
	secs := max(1, int(d/time.Second))
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/admin/v1/debug/pprof/cpu?seconds=%d", e.adminURL, secs), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profiling the edge: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiling the edge: HTTP %d %v %s", resp.StatusCode, err, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	return os.WriteFile(file, b, 0o644)
}

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
