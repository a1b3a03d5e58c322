package imapout

import (
	"net"
	"sync"
	"time"
)

// connListener is a net.Listener fed by our own accept loops: it lets one
// imapserver.Server serve connections taken from several real listeners.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{conns: make(chan net.Conn), closed: make(chan struct{}), addr: addr}
}

// Accept implements net.Listener.
func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// hand passes a connection to the server; it closes it when the listener
// is closed.
func (l *connListener) hand(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

// Close implements net.Listener.
func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr implements net.Listener.
func (l *connListener) Addr() net.Addr { return l.addr }

// isLoopback reports whether a connection comes from this machine.
func isLoopback(c net.Conn) bool {
	ip := remoteIP(c)
	return ip != nil && ip.IsLoopback()
}

// remoteIP is the client's IP address, nil when unknown (net.Pipe).
func remoteIP(c net.Conn) net.IP {
	switch a := c.RemoteAddr().(type) {
	case nil:
		return nil
	case *net.TCPAddr:
		return a.IP
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return nil
		}
		return net.ParseIP(host)
	}
}

// corkSize is how much a corked connection buffers before writing.
const corkSize = 64 << 10

// corkDelay is how long a corked write may wait for more before it goes
// out on its own (responses pushed during IDLE, say).
const corkDelay = 2 * time.Millisecond

// corkWriteTimeout bounds each real write: a client that stops reading is
// dropped instead of holding its session (and its key) forever.
const corkWriteTimeout = time.Minute

// corkConn coalesces writes. go-imap flushes after every response line, so
// FETCH 1:* over a big mailbox made one write system call per message;
// here writes collect in a buffer that goes out when the connection next
// reads (the server has finished answering and waits for the client), when
// it fills up, or corkDelay after the last write. It sits under TLS, so
// TLS records are coalesced too. Because the real writes happen later than
// go-imap's, corkConn sets their deadlines itself and ignores go-imap's.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer
	armed  bool
	err    error
	closed bool
}

func cork(c net.Conn) *corkConn { return &corkConn{Conn: c} }

// Write buffers p; an error of an earlier delayed write is returned here.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf)+len(p) > corkSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= corkSize { // a big literal: no copy
			return c.write(p)
		}
	}
	c.buf = append(c.buf, p...)
	if !c.armed {
		c.armed = true
		if c.timer == nil {
			c.timer = time.AfterFunc(corkDelay, c.flush)
		} else {
			c.timer.Reset(corkDelay)
		}
	}
	return len(p), nil
}

// write sends p with its own deadline.
func (c *corkConn) write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(corkWriteTimeout))
	n, err := c.Conn.Write(p)
	c.err = err
	return n, err
}

// SetWriteDeadline is ignored: writes are delayed, so corkConn sets their
// deadlines when it makes them.
func (c *corkConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only (see SetWriteDeadline).
func (c *corkConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// Read sends what is buffered first: the peer may be waiting for it.
func (c *corkConn) Read(p []byte) (int, error) {
	c.flush()
	return c.Conn.Read(p)
}

func (c *corkConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	c.armed = false
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, err := c.write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// Close sends what is buffered (briefly: a peer that does not read gets
// cut off), then closes. A write blocked in another goroutine is cut
// short by the near deadline, so Close never waits on the peer.
func (c *corkConn) Close() error {
	c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.err == nil && len(c.buf) > 0 {
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Conn.Write(c.buf)
		}
		c.buf, c.err = nil, net.ErrClosed
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
