package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// ErrThrottled is returned by Guard.Begin for a client that failed to log
// in too often recently.
var ErrThrottled = errors.New("too many failed logins, try again later")

// Guard slows down password guessing, one count per client address shared
// by SMTP and IMAP: every failure costs the client Delay, and an address
// with Limit failures within Window is refused for Ban. IPv6 clients are
// counted per /64, as one host usually owns one. Counts live in memory.
type Guard struct {
	Limit  int           // failures per window before refusing; 0 means 10
	Window time.Duration // 0 means one minute
	Ban    time.Duration // 0 means five minutes
	Delay  time.Duration // 0 means one second; negative means none (tests)
	Now    func() time.Time

	mu     sync.Mutex
	addrs  map[string]*failures
	secret []byte // keys attempts, so no password is kept as such
}

type failures struct {
	count    int
	since    time.Time // start of the counting window
	blocked  time.Time // refused until then
	inFlight int       // distinct attempts begun and not yet done
	// same counts the connections in each distinct attempt in flight,
	// by a keyed hash of its user name and password.
	same map[[32]byte]int
}

func (g *Guard) limit() int {
	if g.Limit > 0 {
		return g.Limit
	}
	return 10
}

func (g *Guard) window() time.Duration { return orDefault(g.Window, time.Minute) }
func (g *Guard) ban() time.Duration    { return orDefault(g.Ban, 5*time.Minute) }

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// guardKey groups IPv6 addresses by /64.
func guardKey(ip string) string {
	a := net.ParseIP(ip)
	switch {
	case a == nil:
		return ip
	case a.To4() != nil:
		return a.To4().String()
	}
	return a.Mask(net.CIDRMask(64, 128)).String()
}

// Begin starts a login attempt from ip. It is refused (ErrThrottled) while
// the address is banned, or when its recent failures plus its attempts
// still being checked reach Limit, so parallel connections cannot slip
// many guesses past the count. The caller must call done once with the
// outcome; a failure costs Delay (or until ctx is done) before done
// returns, so a guesser gets one try per Delay per connection.
func (g *Guard) Begin(ip string) (done func(ctx context.Context, failed bool), err error) {
	return g.begin(ip, nil)
}

// BeginLogin is Begin for a check of password for username. Parallel
// attempts with the same name and password are one guess, whatever their
// outcome: such an attempt joins one in flight without counting against
// Limit again, so a client opening many connections at once is not
// refused while its first login is checked (the Unlocker derives once
// for all of them). Each failure still counts. The attempt is kept only
// as a keyed hash, and only while it is in flight.
func (g *Guard) BeginLogin(ip, username, password string) (done func(ctx context.Context, failed bool), err error) {
	g.mu.Lock()
	if g.secret == nil {
		g.secret = make([]byte, 32)
		rand.Read(g.secret)
	}
	m := hmac.New(sha256.New, g.secret)
	g.mu.Unlock()
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(username))))
	m.Write([]byte(username))
	m.Write([]byte(password))
	var key [32]byte
	m.Sum(key[:0])
	return g.begin(ip, &key)
}

func (g *Guard) begin(ip string, attempt *[32]byte) (done func(ctx context.Context, failed bool), err error) {
	k := guardKey(ip)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addrs == nil {
		g.addrs = map[string]*failures{}
	}
	now := g.now()
	g.prune(now)
	f := g.addrs[k]
	if f == nil {
		f = &failures{since: now}
		g.addrs[k] = f
	}
	if now.Sub(f.since) > g.window() {
		f.count, f.since = 0, now
	}
	joins := attempt != nil && f.same[*attempt] > 0
	if now.Before(f.blocked) || f.count >= g.limit() || !joins && f.count+f.inFlight >= g.limit() {
		return nil, ErrThrottled
	}
	f.enter(attempt)
	var once sync.Once
	return func(ctx context.Context, failed bool) {
		once.Do(func() { g.finish(ctx, f, attempt, failed) })
	}, nil
}

// enter counts an attempt in flight: a new distinct one, or one more
// connection in an identical one.
func (f *failures) enter(attempt *[32]byte) {
	if attempt == nil {
		f.inFlight++
		return
	}
	if f.same == nil {
		f.same = map[[32]byte]int{}
	}
	if f.same[*attempt] == 0 {
		f.inFlight++
	}
	f.same[*attempt]++
}

// leave ends what enter counted.
func (f *failures) leave(attempt *[32]byte) {
	if attempt == nil {
		f.inFlight--
		return
	}
	if f.same[*attempt]--; f.same[*attempt] <= 0 {
		delete(f.same, *attempt)
		f.inFlight--
	}
}

func (g *Guard) finish(ctx context.Context, f *failures, attempt *[32]byte, failed bool) {
	g.mu.Lock()
	f.leave(attempt)
	if failed {
		now := g.now()
		if now.Sub(f.since) > g.window() {
			f.count, f.since = 0, now
		}
		f.count++
		if f.count >= g.limit() {
			f.blocked = now.Add(g.ban())
			f.count, f.since = 0, now
		}
	}
	g.mu.Unlock()
	if !failed {
		return
	}
	delay := g.Delay
	if delay == 0 {
		delay = time.Second
	}
	if delay < 0 {
		return
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// prune forgets addresses that are neither counting nor blocked, so the
// map stays small whatever an attacker does.
func (g *Guard) prune(now time.Time) {
	if len(g.addrs) < 1024 {
		return
	}
	for k, f := range g.addrs {
		if f.inFlight == 0 && now.Sub(f.since) > g.window() && !now.Before(f.blocked) {
			delete(g.addrs, k)
		}
	}
}
