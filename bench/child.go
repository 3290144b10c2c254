package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// child is a process a scenario runs (`postern dev`, a peer of the proxy scenario): its standard output
// and error go to files in the scenario's directory, and the kernel kills it should the bench die
// without stopping it (childProcAttr).
//
// Concurrency: any goroutine may call its methods.
type child struct {
	name    string // for messages: "postern dev", "upstream", …
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been reaped
	outPath string        // its standard output
	logPath string        // its standard error (a structured log, for postern)
}

// startChild starts path with args, its output in dir/file.out and dir/file.log; env nil means this
// process's environment. The caller stops it.
func startChild(name, path string, args, env []string, dir, file string) (*child, error) {
	c := &child{name: name, exited: make(chan struct{}),
		outPath: filepath.Join(dir, file+".out"), logPath: filepath.Join(dir, file+".log")}
	stdout, err := os.Create(c.outPath)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	c.cmd = exec.Command(path, args...)
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = stdout, stderr
	c.cmd.SysProcAttr = childProcAttr()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// output is what the process has written to its standard output so far.
func (c *child) output() []byte {
	b, _ := os.ReadFile(c.outPath)
	return b
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits until it is gone; calling it again
// does nothing.
func (c *child) stop() {
	if c.hasExited() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// logTail is the end of the process's standard error, for an error message.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	const tail = 4 << 10
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return "\n" + c.name + " log (end):\n" + string(b)
}
