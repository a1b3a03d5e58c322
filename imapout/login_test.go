package imapout

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"tollbridge/internal/testkit"
	"tollbridge/keyring"
	"tollbridge/store"
)

func plainClient(user, pass string) sasl.Client { return sasl.NewPlainClient("", user, pass) }

// remoteListener makes connections look as if they came from elsewhere.
type remoteListener struct{ net.Listener }

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4321} }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

// serveExtra serves the env's server on one more listener.
func (e *env) serveExtra(t *testing.T, wrap func(net.Listener) net.Listener) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.Serve(ctx, wrap(ln))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func TestTLSAndLoginDisabled(t *testing.T) {
	t.Parallel()
	cert := testkit.NewCertificate(t, hostname)
	pool := cert.Pool
	e := newEnv(t, func(c *Options) { c.TLS = cert.ServerConfig() })
	bob := e.addUser("bob@example.net")

	// A remote client without TLS: LOGINDISABLED, LOGIN refused.
	remote := e.serveExtra(t, func(l net.Listener) net.Listener { return remoteListener{l} })
	c, err := imapclient.DialInsecure(remote, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps, err := c.Capability().Wait()
	if err != nil || !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has("AUTH=PLAIN") {
		t.Errorf("remote plain capabilities: %v %v", caps, err)
	}
	if err := c.Login(bob.Address, password(bob.Address)).Wait(); err == nil || !strings.Contains(err.Error(), "PRIVACYREQUIRED") {
		t.Errorf("plain LOGIN from afar: %v", err)
	}
	// The same client after STARTTLS logs in.
	c2, err := imapclient.DialStartTLS(remote, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: hostname}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login(bob.Address, password(bob.Address)).Wait(); err != nil {
		t.Errorf("LOGIN after STARTTLS: %v", err)
	}
	// Implicit TLS, remote, AUTHENTICATE PLAIN.
	implicit := e.serveExtra(t, func(l net.Listener) net.Listener { return tls.NewListener(remoteListener{l}, cert.ServerConfig()) })
	c3, err := imapclient.DialTLS(implicit, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: hostname}})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := c3.Authenticate(plainClient(bob.Address, password(bob.Address))); err != nil {
		t.Errorf("AUTHENTICATE PLAIN over TLS: %v", err)
	}
	if _, err := c3.Select("INBOX", nil).Wait(); err != nil {
		t.Error(err)
	}
	// Loopback without TLS: allowed.
	c4 := e.login(bob)
	if _, err := c4.List("", "*", nil).Collect(); err != nil {
		t.Error(err)
	}
}

func TestLoginFailuresThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Options) {
		c.Guard = &keyring.Guard{Delay: 200 * time.Millisecond, Limit: 3}
	})
	bob := e.addUser("bob@example.net")
	for i := 0; i < 3; i++ {
		c, err := imapclient.DialInsecure(e.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = c.Login(bob.Address, "wrong").Wait()
		if err == nil || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
			t.Errorf("wrong password: %v", err)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("failure answered after %v", d)
		}
		c.Close()
	}
	// Unknown users fail the same way (and count).
	c, err := imapclient.DialInsecure(e.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("nobody@example.net", "x").Wait(); err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Errorf("after 3 failures: %v", err)
	}
	if err := c.Login(bob.Address, password(bob.Address)).Wait(); err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Errorf("right password while throttled: %v", err)
	}
}

func TestKeyHeldWhileSessionsLast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Options) { c.Linger = -1 })
	bob := e.addUser("bob@example.net")
	c1 := e.login(bob)
	c2 := e.login(bob)
	if _, ok := e.cfg.Unlocker.Get(bob.Address); !ok {
		t.Fatal("key not held while logged in")
	}
	c1.Logout().Wait()
	c1.Close()
	waitFor(t, func() bool { _, ok := e.cfg.Unlocker.Get(bob.Address); return ok })
	c2.Logout().Wait()
	c2.Close()
	waitFor(t, func() bool { _, ok := e.cfg.Unlocker.Get(bob.Address); return !ok })
	e.srv.mu.Lock()
	n := len(e.srv.accounts)
	e.srv.mu.Unlock()
	if n != 0 {
		t.Errorf("%d accounts left", n)
	}
}

// TestKeyLingersAfterLastSession: after the last session logs out the
// key and the account stay for Config.Linger, so that logging in again
// needs no key derivation and finds the account's caches; then both go.
// A wrong password meanwhile is still refused.
func TestKeyLingersAfterLastSession(t *testing.T) {
	t.Parallel()
	const linger = 4 * time.Second
	e := newEnv(t, func(c *Options) { c.Linger = linger })
	bob := e.addUser("bob@example.net")
	account := func() *account { e.srv.mu.Lock(); defer e.srv.mu.Unlock(); return e.srv.accounts[bob.ID] }
	noSessions := func() bool { e.srv.mu.Lock(); defer e.srv.mu.Unlock(); return len(e.srv.open) == 0 }
	c := e.login(bob)
	first := account()
	c.Logout().Wait()
	c.Close()
	start := time.Now()
	waitFor(t, noSessions)
	if _, ok := e.cfg.Unlocker.Get(bob.Address); !ok && time.Since(start) < linger {
		t.Fatal("key dropped with the last session")
	}
	c = e.login(bob)
	if again := account(); again != first && time.Since(start) < linger {
		t.Error("a login within the linger got a new account")
	}
	c.Logout().Wait()
	c.Close()
	waitFor(t, noSessions)
	bad, err := imapclient.DialInsecure(e.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Login(bob.Address, "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted while the key lingers")
	}
	for deadline := time.Now().Add(3 * linger); account() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("account still there long after the linger")
		}
	}
	// The account leaves the server's map before it stops and lets go
	// of the key (stop waits for its background work): wait for that.
	waitFor(t, func() bool { _, ok := e.cfg.Unlocker.Get(bob.Address); return !ok })
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, "the condition", 30*time.Second, cond)
}

// TestParallelFirstLoginsDeriveOnce: twenty connections of one user from
// one address (four mail clients opening five each) log in at once, none
// holding the key yet: none is refused as a guesser while the first is
// checked, and the password is derived once for all of them.
func TestParallelFirstLoginsDeriveOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const addr = "dear@example.net"
	// Dear enough that the attempts overlap the one derivation.
	e.addUserProtected(addr, keyring.Protection{MemoryKiB: 16 << 10, Passes: 2})
	clients := make([]*imapclient.Client, 20)
	for i := range clients {
		c, err := imapclient.DialInsecure(e.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			if err := c.Login(addr, password(addr)).Wait(); err != nil {
				t.Errorf("login: %v", err)
			}
		})
	}
	wg.Wait()
	if n := e.cfg.Unlocker.Derivations(); n != 1 {
		t.Errorf("%d derivations for twenty logins with one password", n)
	}
}

// addUserProtected creates a local user like addUser, its key protected
// with prot instead of the cheap test protection.
func (e *env) addUserProtected(addr string, prot keyring.Protection) *store.User {
	e.t.Helper()
	uk, ent, err := keyring.Generate(addr, []byte(password(addr)), prot)
	if err != nil {
		e.t.Fatal(err)
	}
	hash, _ := keyring.AddressHash(addr)
	u := &store.User{Address: uk.Address, AddressHash: hash, WKDName: addr, Fingerprint: uk.Fingerprint,
		PublicKey: uk.Public, PrivateKey: uk.Private}
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	e.keys[addr] = ent
	return u
}
