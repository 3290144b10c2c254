package cluster

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Connection kinds: the first byte a dialer writes on a new connection.
const (
	connRaft    byte = 'R'
	connForward byte = 'F'
)

// mux owns the node's one listening socket and sorts incoming connections by their first byte: raft
// connections go to raft's transport (through raftLayer), forwarded requests to the forward server.
//
// Concurrency: Accept of raftLayer and the forward handler run on their own goroutines; close stops all.
type mux struct {
	ln        net.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config
	raftConns chan net.Conn
	forward   func(net.Conn)
	closed    chan struct{}
	closeOnce sync.Once
}

func newMux(addr string, serverTLS, clientTLS *tls.Config) (*mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &mux{
		ln: ln, serverTLS: serverTLS, clientTLS: clientTLS,
		raftConns: make(chan net.Conn, 16),
		closed:    make(chan struct{}),
	}, nil
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go m.sort(c)
	}
}

// sort reads the connection's kind (after the TLS handshake, which that first read drives) and hands it on.
func (m *mux) sort(c net.Conn) {
	if m.serverTLS != nil {
		c = tls.Server(c, m.serverTLS)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var kind [1]byte
	if _, err := c.Read(kind[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		select {
		case m.raftConns <- c:
		case <-m.closed:
			c.Close()
		}
	case connForward:
		if m.forward != nil {
			m.forward(c)
			return
		}
		c.Close()
	default:
		c.Close()
	}
}

// dial opens a connection of the given kind to another node.
func (m *mux) dial(addr string, kind byte, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if m.clientTLS != nil {
		tc := tls.Client(c, m.clientTLS)
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (m *mux) close() error {
	m.closeOnce.Do(func() { close(m.closed) })
	return m.ln.Close()
}

// raftLayer is the raft.StreamLayer view of the mux.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{} // Interface guard.

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l raftLayer) Close() error   { return l.m.close() }
func (l raftLayer) Addr() net.Addr { return l.m.ln.Addr() }

func (l raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(string(addr), connRaft, timeout)
}
