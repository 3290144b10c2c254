package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/directory"
)

// The forward protocol: on a connection opened with connForward, the client sends requests and reads one
// response for each, in turn. Each message is a 4-byte big-endian length and a JSON body. A connection
// carries one request at a time; the client keeps a small pool per leader.

const (
	fwdApply   = "apply"
	fwdBarrier = "barrier"
	fwdJoin    = "join"
	fwdRemove  = "remove"
	fwdStatus  = "status"

	maxFrame = 64 << 20
)

type fwdRequest struct {
	Op      string       `json:"op"`
	Command []byte       `json:"command,omitempty"`
	Join    *JoinRequest `json:"join,omitempty"`
	ID      string       `json:"id,omitempty"`
	// Timeout is how long the caller will wait, so the leader does not work past it.
	Timeout time.Duration `json:"timeout,omitempty"`
}

type fwdResponse struct {
	Result    *directory.Result `json:"result,omitempty"`
	Refusal   *directory.Error  `json:"refusal,omitempty"`
	Err       string            `json:"err,omitempty"`
	Retryable bool              `json:"retryable,omitempty"`
	NotTaken  bool              `json:"not_taken,omitempty"`
	Index     uint64            `json:"index,omitempty"`
}

func (r *fwdResponse) err() error {
	switch {
	case r.Refusal != nil:
		return r.Refusal
	case r.Err != "" && r.NotTaken:
		return notTaken{retryable{errors.New(r.Err)}}
	case r.Err != "" && r.Retryable:
		return retryable{errors.New(r.Err)}
	case r.Err != "":
		return errors.New(r.Err)
	}
	return nil
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("forwarded message too large (%d bytes)", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// serveForward answers forwarded requests on one connection until it closes.
func (n *Node) serveForward(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var req fwdRequest
		if err := readFrame(br, &req); err != nil {
			return
		}
		resp := n.handleForward(req)
		if err := writeFrame(c, resp); err != nil {
			return
		}
	}
}

func (n *Node) handleForward(req fwdRequest) fwdResponse {
	timeout := req.Timeout
	if timeout <= 0 || timeout > applyTimeout {
		timeout = applyTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp fwdResponse
	var err error
	switch req.Op {
	case fwdApply:
		if !n.IsLeader() {
			err = notTaken{retryable{errors.New("not the leader any more")}}
			break
		}
		resp.Result, err = n.applyLocal(ctx, req.Command)
	case fwdBarrier:
		if !n.IsLeader() {
			err = retryable{errors.New("not the leader any more")}
			break
		}
		resp.Index, err = n.barrierLocal(ctx)
	case fwdJoin:
		if req.Join == nil {
			err = errors.New("join request without a node")
			break
		}
		err = n.Join(ctx, *req.Join)
	case fwdRemove:
		err = n.Remove(ctx, req.ID)
	case fwdStatus:
		resp.Index = n.cfg.Store.AppliedIndex()
	default:
		err = fmt.Errorf("unknown forwarded request %q", req.Op)
	}
	if err != nil {
		if e, ok := directory.AsError(err); ok {
			resp.Refusal = e
		} else {
			var nt notTaken
			resp.Err, resp.Retryable, resp.NotTaken = err.Error(), IsRetryable(err), errors.As(err, &nt)
		}
	}
	return resp
}

// forward sends one request to the node at addr and waits for its answer.
func (n *Node) forward(ctx context.Context, addr string, req fwdRequest) (*fwdResponse, error) {
	if n.mux == nil {
		return nil, ErrNoLeader
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(applyTimeout)
	}
	req.Timeout = time.Until(deadline)
	c, err := n.pool.get(addr, func() (net.Conn, error) {
		return n.mux.dial(addr, connForward, min(2*time.Second, time.Until(deadline)))
	})
	if err != nil {
		return nil, notTaken{retryable{fmt.Errorf("leader %s is unreachable: %w", addr, err)}}
	}
	c.SetDeadline(deadline)
	var resp fwdResponse
	if err := writeFrame(c.Conn, req); err != nil {
		// The leader acts only on a whole frame, and this one was not all sent.
		c.Close()
		return nil, notTaken{retryable{fmt.Errorf("forwarding to leader %s: %w", addr, err)}}
	}
	if err := readFrame(c.r, &resp); err != nil {
		c.Close()
		if req.Op == fwdApply {
			return nil, retryable{fmt.Errorf("no answer from leader %s; the write may or may not have been applied: %w", addr, err)}
		}
		return nil, retryable{fmt.Errorf("no answer from leader %s: %w", addr, err)}
	}
	c.SetDeadline(time.Time{})
	n.pool.put(addr, c)
	return &resp, nil
}

// connPool keeps idle forward connections per address.
type connPool struct {
	mu   sync.Mutex
	idle map[string][]*poolConn
}

type poolConn struct {
	net.Conn
	r *bufio.Reader
	// While the connection is idle a watcher reads from it. Nothing may arrive between requests, so a
	// read that ends (the peer closed it: its process died or restarted) marks the connection dead, and
	// get does not send a request on it that would fail for no reason, or leave it unclear whether a
	// write was applied.
	watching chan struct{} // closed when the watcher has returned
	dead     atomic.Bool
}

func (c *poolConn) watch() {
	defer close(c.watching)
	_, err := c.r.Peek(1)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.dead.Store(true)
	}
}

// unwatch stops the watcher (a read deadline in the past wakes it) and reports whether the connection
// is still good; a dead one is closed.
func (c *poolConn) unwatch() bool {
	if c.SetReadDeadline(time.Now()) != nil {
		c.Close()
	}
	<-c.watching
	if c.dead.Load() || c.SetReadDeadline(time.Time{}) != nil {
		c.Close()
		return false
	}
	return true
}

const maxIdlePerAddr = 128

func (p *connPool) get(addr string, dial func() (net.Conn, error)) (*poolConn, error) {
	for {
		p.mu.Lock()
		l := p.idle[addr]
		if len(l) == 0 {
			p.mu.Unlock()
			break
		}
		c := l[len(l)-1]
		p.idle[addr] = l[:len(l)-1]
		p.mu.Unlock()
		if c.unwatch() {
			return c, nil
		}
	}
	c, err := dial()
	if err != nil {
		return nil, err
	}
	return &poolConn{Conn: c, r: bufio.NewReader(c)}, nil
}

func (p *connPool) put(addr string, c *poolConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[string][]*poolConn{}
	}
	if len(p.idle[addr]) >= maxIdlePerAddr {
		c.Close()
		return
	}
	c.watching = make(chan struct{})
	go c.watch()
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.idle {
		for _, c := range l {
			c.Close()
		}
	}
	p.idle = nil
}
