package main

import (
	"net"
	"sync"
	"time"
)

// limitListener caps how many connections one client (an IPv4 address or
// an IPv6 /64) and everyone together may hold open on a listener, so
// nobody can pin the server's memory and descriptors with idle sessions.
// A connection over the limit gets refusal (a protocol's "try later"
// line, nil to just close) and is closed.
type limitListener struct {
	net.Listener
	perClient, total int
	refusal          []byte

	mu   sync.Mutex
	open map[string]int
	n    int
}

func limitConns(ln net.Listener, perClient, total int, refusal string) *limitListener {
	l := &limitListener{Listener: ln, perClient: perClient, total: total, open: map[string]int{}}
	if refusal != "" {
		l.refusal = []byte(refusal)
	}
	return l
}

// clientKey groups an address's connections: IPv6 by /64.
func clientKey(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String()
}

// Accept returns the next connection within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		l.mu.Lock()
		over := l.open[key] >= l.perClient || l.n >= l.total
		if !over {
			l.open[key]++
			l.n++
		}
		l.mu.Unlock()
		if !over {
			return &limitedConn{Conn: c, l: l, key: key}, nil
		}
		go l.refuse(c)
	}
}

func (l *limitListener) refuse(c net.Conn) {
	if l.refusal != nil {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(l.refusal)
	}
	c.Close()
}

func (l *limitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.key) })
	return c.Conn.Close()
}
