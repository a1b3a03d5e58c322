package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// pendingPerClient counts each client's derivations waiting for a slot
// plus those running (running, keyed by client).
func pendingPerClient(u *Unlocker, running map[string]int) map[string]int {
	n := map[string]int{}
	for c, r := range running {
		n[c] += r
	}
	u.sched.mu.Lock()
	for _, w := range u.sched.queue {
		n[w.client]++
	}
	u.sched.mu.Unlock()
	return n
}

// TestUnlockerServesKnownClientFirst: 40 guessing clients, each with
// several attempts at once, fill the queue; a client that logged in
// before is served next, and no client ever has two derivations pending.
func TestUnlockerServesKnownClientFirst(t *testing.T) {
	t.Parallel()
	k, _, _ := Generate("bob@example.net", []byte("pw"), cheap)
	u := NewUnlocker(2)
	ctx := context.Background()
	const good = "192.0.2.200"

	var (
		blocking atomic.Bool
		gate     = make(chan struct{})
		mu       sync.Mutex
		order    []string // client of each derivation, as it starts
		running  = map[string]int{}
		problems []string
	)
	clientOf := func(pw string) string {
		if pw == "pw" {
			return good
		}
		return strings.Split(pw, "/")[0]
	}
	u.unlock = func(private, password []byte) (*openpgp.Entity, error) {
		c := clientOf(string(password))
		mu.Lock()
		running[c]++
		for client, n := range pendingPerClient(u, running) {
			if n > 1 {
				problems = append(problems, fmt.Sprintf("%s has %d derivations pending", client, n))
			}
		}
		if blocking.Load() {
			order = append(order, c)
		}
		mu.Unlock()
		if blocking.Load() {
			<-gate
		}
		defer func() { mu.Lock(); running[c]--; mu.Unlock() }()
		return Unlock(private, password)
	}

	// The good client logged in before (and logged out again).
	_, release, err := u.AcquireFrom(ctx, good, k.Address, k.Private, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	release()

	blocking.Store(true)
	var wg sync.WaitGroup
	for i := 1; i <= 40; i++ {
		ip := fmt.Sprintf("198.51.100.%d", i)
		for j := range 3 {
			wg.Go(func() {
				_, _, err := u.AcquireFrom(ctx, ip, k.Address, k.Private, []byte(fmt.Sprintf("%s/%d", ip, j)))
				if !errors.Is(err, ErrBadPassword) {
					t.Errorf("%s: %v", ip, err)
				}
			})
		}
	}
	// Two derivations run; each other client has one queued.
	waitUntil(t, "38 queued", func() bool { return u.Queued() == 38 })
	waitUntil(t, "attempts waiting behind", func() bool {
		u.sched.mu.Lock()
		defer u.sched.mu.Unlock()
		n := 0
		for _, l := range u.sched.clients {
			n += len(l.behind)
		}
		return n == 80
	})
	var goodErr error
	wg.Go(func() {
		_, release, goodErr = u.AcquireFrom(ctx, good, k.Address, k.Private, []byte("pw"))
		if goodErr == nil {
			release()
		}
	})
	waitUntil(t, "good client queued", func() bool { return u.Queued() == 39 })
	close(gate)
	wg.Wait()
	if goodErr != nil {
		t.Fatalf("good login: %v", goodErr)
	}
	at := -1
	for i, c := range order {
		if c == good {
			at = i
		}
	}
	// Two attackers' derivations were running; the good one starts with
	// the first free slot (3rd, or 4th if the other slot's next starts
	// first), ahead of the 38 queued attackers.
	if at < 0 || at > 3 {
		t.Errorf("good client's derivation was number %d of %d", at+1, len(order))
	}
	if len(order) != 121 {
		t.Errorf("%d derivations, want 121", len(order))
	}
	for _, p := range problems[:min(len(problems), 5)] {
		t.Error(p)
	}
}

// TestUnlockerSharesIdenticalAttempts: concurrent logins with the same
// user and password run one derivation.
func TestUnlockerSharesIdenticalAttempts(t *testing.T) {
	t.Parallel()
	k, _, _ := Generate("bob@example.net", []byte("pw"), cheap)
	u := NewUnlocker(2)
	var calls atomic.Int32
	gate := make(chan struct{})
	u.unlock = func(private, password []byte) (*openpgp.Entity, error) {
		calls.Add(1)
		<-gate
		return Unlock(private, password)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var keys [5]*Unlocked
	for i := range keys {
		wg.Go(func() {
			k, release, err := u.AcquireFrom(ctx, fmt.Sprintf("192.0.2.%d", i+1), k.Address, k.Private, []byte("pw"))
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k
			t.Cleanup(release)
		})
	}
	waitUntil(t, "a derivation started", func() bool { return calls.Load() >= 1 })
	// The others wait for it (or, unshared, run or queue their own).
	waitUntil(t, "the others waiting", func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		n := 0
		for _, f := range u.flights {
			n += f.waiters
		}
		return n+int(calls.Load())+u.Queued() == 5
	})
	close(gate)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d derivations for 5 identical attempts", n)
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Fatal("attempts got different keys")
		}
	}
	// A wrong password is never answered from the right one's result.
	if _, _, err := u.AcquireFrom(ctx, "192.0.2.9", k.Address, k.Private, []byte("pW")); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestUnlockerUnknownUserCostsOneDerivation: an unknown user's attempt
// runs one derivation with the same Argon2 parameters as a real key's,
// like a wrong password; so does a wrong password while the key is held.
func TestUnlockerUnknownUserCostsOneDerivation(t *testing.T) {
	t.Parallel()
	k, _, _ := Generate("bob@example.net", []byte("pw"), cheap)
	u := NewUnlocker(2)
	u.Protection = cheap
	var (
		mu    sync.Mutex
		blobs [][]byte
	)
	u.unlock = func(private, password []byte) (*openpgp.Entity, error) {
		mu.Lock()
		blobs = append(blobs, private)
		mu.Unlock()
		return Unlock(private, password)
	}
	ctx := context.Background()
	count := func(f func() error) int {
		mu.Lock()
		before := len(blobs)
		mu.Unlock()
		if err := f(); !errors.Is(err, ErrBadPassword) {
			t.Fatalf("err = %v, want ErrBadPassword", err)
		}
		mu.Lock()
		defer mu.Unlock()
		return len(blobs) - before
	}
	attempt := func(address string, private []byte, pw string) func() error {
		return func() error {
			_, _, err := u.AcquireFrom(ctx, "192.0.2.1", address, private, []byte(pw))
			return err
		}
	}
	if n := count(attempt(k.Address, k.Private, "wrong")); n != 1 {
		t.Errorf("wrong password: %d derivations", n)
	}
	for i := range 2 {
		if n := count(attempt("nobody@example.net", nil, "pw")); n != 1 {
			t.Errorf("unknown user, attempt %d: %d derivations", i+1, n)
		}
	}
	_, release, err := u.AcquireFrom(ctx, "192.0.2.1", k.Address, k.Private, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if n := count(attempt(k.Address, k.Private, "wrong")); n != 1 {
		t.Errorf("wrong password while the key is held: %d derivations", n)
	}
	want := argon2Params(t, k.Private)
	if got := argon2Params(t, blobs[1]); got != want {
		t.Errorf("decoy Argon2 parameters %v, a real key's %v", got, want)
	}
	if bytes.Equal(blobs[1], k.Private) {
		t.Error("decoy is the real key")
	}
}

// argon2Params reads (passes, parallelism, encoded memory) from the S2K
// specifier of a v4 EdDSA secret key packet protected with AEAD
// (RFC 9580 §5.5.3, §3.7.1.4).
func argon2Params(t *testing.T, key []byte) [3]byte {
	t.Helper()
	b := key
	if b[0]&0x40 == 0 || b[0]&0x3f != 5 {
		t.Fatalf("not a new-format secret key packet: %x", b[0])
	}
	switch {
	case b[1] < 192:
		b = b[2:]
	case b[1] < 224:
		b = b[3:]
	default:
		b = b[6:]
	}
	if b[0] != 4 || b[5] != 22 {
		t.Fatalf("not a v4 EdDSA key: version %d algo %d", b[0], b[5])
	}
	b = b[6:]
	b = b[1+int(b[0]):] // curve OID
	bits := int(b[0])<<8 | int(b[1])
	b = b[2+(bits+7)/8:] // public point
	if b[0] != 253 || b[3] != 4 {
		t.Fatalf("not AEAD with Argon2: usage %d, S2K type %d", b[0], b[3])
	}
	return [3]byte{b[20], b[21], b[22]}
}

// TestUnlockerIdleAfterBurst: Idle runs once when the last derivation of
// a burst ends (two slots, three attempts), not while one still runs.
func TestUnlockerIdleAfterBurst(t *testing.T) {
	t.Parallel()
	k, _, _ := Generate("bob@example.net", []byte("pw"), cheap)
	u := NewUnlocker(2)
	var lastDone, early atomic.Bool
	var idles atomic.Int32
	u.Idle = func() {
		if !lastDone.Load() {
			early.Store(true)
		}
		idles.Add(1)
	}
	var calls atomic.Int32
	first, last := make(chan struct{}), make(chan struct{})
	u.unlock = func(private, password []byte) (*openpgp.Entity, error) {
		calls.Add(1)
		if string(password) == "c" {
			<-last
			lastDone.Store(true)
		} else {
			<-first
		}
		return Unlock(private, password)
	}
	ctx := context.Background()
	var firstTwo, all sync.WaitGroup
	for i, pw := range []string{"a", "b", "c"} {
		wg := &firstTwo
		if pw == "c" {
			wg = &all
		}
		wg.Go(func() { u.AcquireFrom(ctx, fmt.Sprintf("192.0.2.%d", i+1), k.Address, k.Private, []byte(pw)) })
		// c queues behind a and b.
		waitUntil(t, "attempt "+pw+" started or queued", func() bool { return int(calls.Load())+u.Queued() == i+1 })
	}
	close(first)
	firstTwo.Wait()
	waitUntil(t, "c running", func() bool { return calls.Load() == 3 })
	close(last)
	all.Wait()
	waitUntil(t, "Idle called", func() bool { return idles.Load() >= 1 })
	if early.Load() {
		t.Error("Idle called while a derivation still ran")
	}
	if n := idles.Load(); n != 1 {
		t.Errorf("Idle called %d times for one burst", n)
	}
}

// TestUnlockerLateAttemptFindsHeldKey: an identical attempt arriving just
// as the derivation's flight ends finds the key held instead of deriving
// again.
func TestUnlockerLateAttemptFindsHeldKey(t *testing.T) {
	t.Parallel()
	k, _, _ := Generate("bob@example.net", []byte("pw"), cheap)
	u := NewUnlocker(2)
	var calls atomic.Int32
	u.unlock = func(private, password []byte) (*openpgp.Entity, error) {
		calls.Add(1)
		return Unlock(private, password)
	}
	ctx := context.Background()
	var arrived atomic.Bool
	var late error
	u.flightEnded = func() {
		if arrived.Swap(true) {
			return
		}
		var release func()
		_, release, late = u.AcquireFrom(ctx, "192.0.2.2", k.Address, k.Private, []byte("pw"))
		if late == nil {
			release()
		}
	}
	_, release, err := u.AcquireFrom(ctx, "192.0.2.1", k.Address, k.Private, []byte("pw"))
	if err != nil || late != nil {
		t.Fatalf("logins: %v, %v", err, late)
	}
	release()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d derivations for two identical attempts, the second as the first's flight ended", n)
	}
}
