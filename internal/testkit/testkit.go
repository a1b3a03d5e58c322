// Package testkit holds the test helpers more than one package needs, so
// that each concern has one copy: a settable clock and a throwaway TLS
// certificate. It uses only the standard library, so any package's
// internal tests (store's and keyring's included) may import it without a
// cycle; helpers that need the store are in package teststore.
package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// Epoch is where test clocks start: a fixed instant (2027-01-15), so that
// stored times and expiries are the same in every run.
var Epoch = time.Unix(1_800_000_000, 0)

// Clock is a settable clock, safe for concurrent use. Its Now is what
// store.Options.Now, outbox.Options.Now and the like take; a test moves
// it with Add or Set instead of sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads start until moved.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Certificate is a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// names, valid from an hour ago to an hour from now, and a pool that
// trusts it (clients that should not trust it just leave Pool out).
type Certificate struct {
	tls.Certificate
	Leaf *x509.Certificate
	Pool *x509.CertPool
}

// NewCertificate makes a throwaway certificate; the first name is also
// its common name.
func NewCertificate(t testing.TB, names ...string) *Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	if len(names) > 0 {
		tmpl.Subject = pkix.Name{CommonName: names[0]}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &Certificate{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Leaf:        leaf, Pool: pool,
	}
}

// ServerConfig is a server TLS configuration presenting c.
func (c *Certificate) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.Certificate}}
}

// ClientConfig is a client TLS configuration that trusts c alone and
// expects serverName.
func (c *Certificate) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: serverName}
}

// WaitFor polls cond every 10 ms until it holds, and fails the test
// naming what it waited for when d passes first. It is how a test waits
// for an event it cannot be told of: never a fixed sleep. Bounds are
// generous (a loaded machine is slow); a passing test waits only as long
// as the event takes.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	WaitForEvery(t, what, d, 10*time.Millisecond, cond)
}

// WaitForEvery is WaitFor polling every interval, for conditions that are
// dear to check.
func WaitForEvery(t testing.TB, what string, d, every time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(every)
	}
}

// Free ports are picked in [freeLow, freeHigh), below the kernel's
// ephemeral range (Linux's ip_local_port_range starts at 32768): the
// kernel hands out ports in that range to every outgoing connection and
// every listener on port 0, and one of those may take a port between the
// pick and the bind of the process it is written in a config for.
const freeLow, freeHigh = 20000, 32768

// FreeAddr returns a loopback address whose port is free now, for a
// config file of a process the test starts (listeners the test opens
// itself should listen on port 0 instead).
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 64 {
		n, err := rand.Int(rand.Reader, big.NewInt(freeHigh-freeLow))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(freeLow+n.Int64())))
		if err == nil {
			defer ln.Close()
			return ln.Addr().String()
		}
	}
	t.Fatal("no free port below the ephemeral range in 64 tries")
	return ""
}
