package smtpin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/intake"
	"tollbridge/internal/testkit"
	"tollbridge/keyring"
	"tollbridge/store"
)

// dialFrom opens a submission session from a chosen loopback address, so
// a test can play many clients (the kernel routes all of 127/8 to lo).
func dialFrom(t *testing.T, ip, addr string) (*smtp.Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		return nil, err
	}
	return c, nil
}

// TestLoginServedWhileGuessersHammer: 30 addresses guessing alice's
// password over two connections each keep the derivation queue full;
// alice, who logged in from her address before, is served next rather
// than behind all of them.
func TestLoginServedWhileGuessersHammer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Dear enough that a derivation, not the SMTP handshake around it,
	// is what alice waits for, however loaded the machine: then ahead of
	// the queue she waits for at most the two running ones, and behind it
	// for all 25 and more.
	prot := keyring.Protection{MemoryKiB: 32 << 10, Passes: 3}
	k, _, err := keyring.Generate("alice@example.org", []byte("alice-pw"), prot)
	if err != nil {
		t.Fatal(err)
	}
	local, domain := keyring.SplitAddress(k.Address)
	if err := st.CreateUser(ctx, &store.User{Address: k.Address, AddressHash: keyring.HashNormalized(k.Address),
		WKDName: domain + "/" + keyring.WKDHash(local), Fingerprint: k.Fingerprint, PublicKey: k.Public, PrivateKey: k.Private}); err != nil {
		t.Fatal(err)
	}
	unlocker := keyring.NewUnlocker(2)
	unlocker.Protection = prot
	sub := &Submission{Config: Config{Hostname: "mail.example.org", Domains: []string{"example.org"}, MaxMessageBytes: 1 << 20, Timeout: 10 * time.Second},
		Store: st, Sealer: &intake.Sealer{Store: st}, Unlocker: unlocker,
		Guard: &keyring.Guard{Delay: -1, Limit: 1 << 20}, Log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); sub.Serve(ctx, ln, false) }()
	addr := ln.Addr().String()

	const good = "127.0.0.100"
	login := func() error {
		c, err := dialFrom(t, good, addr)
		if err != nil {
			return err
		}
		defer c.Quit()
		return c.Auth(sasl.NewPlainClient("", "alice@example.org", "alice-pw"))
	}
	if err := login(); err != nil {
		t.Fatalf("first login: %v", err)
	}
	// Her session has ended and dropped the key: the next login derives.
	waitFor(t, func() bool { _, held := unlocker.Get("alice@example.org"); return !held })

	stop := make(chan struct{})
	var answered atomic.Int64
	var wg sync.WaitGroup
	for i := 1; i <= 30; i++ {
		for j := range 2 {
			wg.Go(func() {
				ip := fmt.Sprintf("127.0.1.%d", i)
				for n := 0; n < 500; n++ {
					select {
					case <-stop:
						return
					default:
					}
					if guess(t, stop, ip, addr, 2*n+j) {
						t.Error("a guess logged in")
						return
					}
					answered.Add(1)
				}
			})
		}
	}
	// Cancel before waiting: the 25 and more guesses still queued then
	// give up their slots instead of each running a derivation nobody
	// waits for (that took most of this test's time).
	t.Cleanup(func() { close(stop); cancel(); wg.Wait(); <-served; st.Close() })
	waitFor(t, func() bool { return unlocker.Queued() >= 25 })

	before := answered.Load()
	if err := login(); err != nil {
		t.Fatalf("login while guessers hammer: %v", err)
	}
	// Behind 25+ queued guesses, alice would wait for all of them; ahead
	// of them she waits only for the two running, while the other slot
	// serves a few more.
	if n := answered.Load() - before; n >= 20 {
		t.Errorf("%d guesses were answered while alice logged in", n)
	} else {
		t.Logf("%d guesses were answered while alice logged in", n)
	}
}

// guess tries a wrong password for alice on a new connection from ip.
// Once stop is closed the server may be gone: a refused dial is no error.
func guess(t *testing.T, stop <-chan struct{}, ip, addr string, n int) bool {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		select {
		case <-stop:
		default:
			t.Error(err)
		}
		return false
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("guesser.test"); err != nil {
		return false
	}
	// Distinct guesses: identical ones would share one derivation.
	return c.Auth(sasl.NewPlainClient("", "alice@example.org", fmt.Sprintf("%s/%d", ip, n))) == nil
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, "the condition", 30*time.Second, cond)
}
