// Package dnstest runs an authoritative DNS server on 127.0.0.1 for tests,
// answering over UDP and TCP on the same port from zones the test sets.
//
// Names the test has not set get NXDOMAIN; a name that has records, but
// none of the queried type, gets an empty NOERROR answer (NODATA), as a
// real server would. Each name can be switched to fail (SERVFAIL, or no
// answer at all) so that callers can test their temporary-error paths.
//
// A typical test:
//
//	srv := dnstest.New(t)
//	srv.SetMX("example.org", dnstest.MX{Pref: 10, Host: "mx.example.org"})
//	srv.SetAddr("mx.example.org", "127.0.0.1")
//	srv.SetTXT("example.org", "v=spf1 mx -all")
//	mxs, err := srv.Resolver().LookupMX(ctx, "example.org")
//
// The code under test is given srv.Resolver() (or srv.Addr(), for code that
// builds its own resolver from a "host:port" setting).
package dnstest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ttl is the TTL of every answer. Its value does not matter to tests.
const ttl = 300

// exchangeTimeout caps how long Resolver waits for one answer, so that a
// name set to Timeout fails in seconds rather than the system resolver's
// 5 s × attempts.
const exchangeTimeout = time.Second

// Failure is how the server answers queries for a name.
type Failure int

const (
	// OK answers from the zone (the default).
	OK Failure = iota
	// ServFail answers SERVFAIL: a temporary error for the client.
	ServFail
	// Timeout never answers: the client times out.
	Timeout
)

// MX is one MX record.
type MX struct {
	Pref uint16
	Host string
}

// SRV is one SRV record.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
}

// Server is a running DNS server. Its methods may be called from any
// goroutine, including while queries are being answered.
type Server struct {
	addr string

	mu       sync.Mutex
	records  map[string]map[uint16][]dns.RR // by canonical name, then type
	failures map[string]Failure
	queries  map[string]int
}

// New starts a server on 127.0.0.1 with a random port, for UDP and TCP,
// and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		records:  make(map[string]map[uint16][]dns.RR),
		failures: make(map[string]Failure),
		queries:  make(map[string]int),
	}
	pc, ln := listen(t)
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)},
		{Listener: ln, Handler: dns.HandlerFunc(s.serve)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return s
}

// listen opens a UDP socket and a TCP listener on the same loopback port.
// The port the kernel picks for UDP may be taken for TCP: try a few times.
func listen(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		lastErr = err
	}
	t.Fatalf("dnstest: no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

// Addr returns the server's address as "127.0.0.1:port", the form of the
// bridge's [dns] resolver setting.
func (s *Server) Addr() string { return s.addr }

// Resolver returns a resolver that sends every query to this server, with
// StrictErrors set so that a SERVFAIL or timeout is reported as such.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo:     true,
		StrictErrors: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, s.addr)
			if err != nil {
				return nil, err
			}
			// The resolver frames UDP and TCP differently, by whether
			// the conn is a PacketConn: keep that visible.
			if u, ok := c.(*net.UDPConn); ok {
				return cappedUDPConn{u}, nil
			}
			return cappedConn{c}, nil
		},
	}
}

// cappedConn and cappedUDPConn shorten the deadlines the resolver sets
// (see exchangeTimeout).
type cappedConn struct{ net.Conn }

func (c cappedConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(capped(t)) }

type cappedUDPConn struct{ *net.UDPConn }

func (c cappedUDPConn) SetDeadline(t time.Time) error { return c.UDPConn.SetDeadline(capped(t)) }

func capped(t time.Time) time.Time {
	if limit := time.Now().Add(exchangeTimeout); t.IsZero() || t.After(limit) {
		return limit
	}
	return t
}

// SetAddr replaces the A and AAAA records of name with ips (IPv4 addresses
// become A records, IPv6 ones AAAA). An address that does not parse
// panics: it is a mistake in the test.
func (s *Server) SetAddr(name string, ips ...string) {
	var a, aaaa []dns.RR
	for _, ip := range ips {
		addr := netip.MustParseAddr(ip)
		if addr.Is4() {
			a = append(a, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: addr.AsSlice()})
		} else {
			aaaa = append(aaaa, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: addr.AsSlice()})
		}
	}
	s.set(name, dns.TypeA, a)
	s.set(name, dns.TypeAAAA, aaaa)
}

// SetMX replaces the MX records of name.
func (s *Server) SetMX(name string, mxs ...MX) {
	var rrs []dns.RR
	for _, mx := range mxs {
		rrs = append(rrs, &dns.MX{Hdr: s.hdr(name, dns.TypeMX), Preference: mx.Pref, Mx: dns.Fqdn(mx.Host)})
	}
	s.set(name, dns.TypeMX, rrs)
}

// SetTXT replaces the TXT records of name, one record per argument. A text
// longer than 255 bytes is split into several strings within its record,
// as DNS requires (DKIM keys are); resolvers join them again.
func (s *Server) SetTXT(name string, txts ...string) {
	var rrs []dns.RR
	for _, txt := range txts {
		rrs = append(rrs, &dns.TXT{Hdr: s.hdr(name, dns.TypeTXT), Txt: split255(txt)})
	}
	s.set(name, dns.TypeTXT, rrs)
}

// SetSRV replaces the SRV records of name (e.g. "_tollbridge._tcp.example.org").
func (s *Server) SetSRV(name string, srvs ...SRV) {
	var rrs []dns.RR
	for _, v := range srvs {
		rrs = append(rrs, &dns.SRV{Hdr: s.hdr(name, dns.TypeSRV), Priority: v.Priority,
			Weight: v.Weight, Port: v.Port, Target: dns.Fqdn(v.Target)})
	}
	s.set(name, dns.TypeSRV, rrs)
}

// SetCNAME makes name an alias of target (or, with target "", removes the
// alias). Queries for name are answered with the CNAME followed by
// target's records of the queried type.
func (s *Server) SetCNAME(name, target string) {
	var rrs []dns.RR
	if target != "" {
		rrs = []dns.RR{&dns.CNAME{Hdr: s.hdr(name, dns.TypeCNAME), Target: dns.Fqdn(target)}}
	}
	s.set(name, dns.TypeCNAME, rrs)
}

// Remove deletes every record of name: it answers NXDOMAIN again.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, canonical(name))
}

// SetFailure sets how queries for name (of any type) are answered from now on.
// The name need not have records.
func (s *Server) SetFailure(name string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == OK {
		delete(s.failures, canonical(name))
	} else {
		s.failures[canonical(name)] = f
	}
}

// Queries returns how many queries (of any type) the server has received
// for name, e.g. to check that code under test used this server.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonical(name)]
}

// canonical is the map key of a name: lower case, fully qualified.
func canonical(name string) string { return dns.CanonicalName(name) }

func (s *Server) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: canonical(name), Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

func (s *Server) set(name string, rrtype uint16, rrs []dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := canonical(name)
	types := s.records[key]
	if types == nil {
		types = make(map[uint16][]dns.RR)
		s.records[key] = types
	}
	if len(rrs) == 0 {
		delete(types, rrtype)
	} else {
		types[rrtype] = rrs
	}
	if len(types) == 0 {
		delete(s.records, key)
	}
}

// split255 cuts txt into the strings of one TXT record (at most 255 bytes each).
func split255(txt string) []string {
	var parts []string
	for len(txt) > 255 {
		parts = append(parts, txt[:255])
		txt = txt[255:]
	}
	return append(parts, txt)
}

// serve answers one query.
func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(max(opt.UDPSize(), dns.MinMsgSize))
		m.SetEdns0(uint16(size), false)
	}
	switch s.answer(m, q) {
	case Timeout:
		return // no answer at all
	case ServFail:
		m.Answer = nil
		m.Rcode = dns.RcodeServerFailure
	}
	if w.LocalAddr().Network() == "udp" {
		m.Truncate(size) // sets TC: the client retries over TCP
	}
	w.WriteMsg(m)
}

// answer fills m for question q, following at most a few CNAMEs, and
// returns the failure mode that applies.
func (s *Server) answer(m *dns.Msg, q dns.Question) Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := canonical(q.Name)
	s.queries[name]++
	for range 8 {
		if f := s.failures[name]; f != OK {
			return f
		}
		types, ok := s.records[name]
		if !ok {
			if len(m.Answer) == 0 {
				m.Rcode = dns.RcodeNameError
			}
			return OK
		}
		if rrs := types[q.Qtype]; len(rrs) > 0 {
			m.Answer = append(m.Answer, copyRRs(rrs)...)
			return OK
		}
		cname := types[dns.TypeCNAME]
		if len(cname) == 0 || q.Qtype == dns.TypeCNAME {
			return OK // NODATA
		}
		m.Answer = append(m.Answer, dns.Copy(cname[0]))
		name = cname[0].(*dns.CNAME).Target
	}
	return OK
}

func copyRRs(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

// String lists the zone, for failure messages.
func (s *Server) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, types := range s.records {
		for _, rrs := range types {
			for _, rr := range rrs {
				b.WriteString(rr.String())
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}
