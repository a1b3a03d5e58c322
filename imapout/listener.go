package imapout

import (
	"net"
	"sync"
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
