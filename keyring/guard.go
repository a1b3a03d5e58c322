package keyring

import (
	"context"
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

	mu    sync.Mutex
	addrs map[string]*failures
}

type failures struct {
	count    int
	since    time.Time // start of the counting window
	blocked  time.Time // refused until then
	inFlight int       // attempts begun and not yet done
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
	if now.Before(f.blocked) || f.count+f.inFlight >= g.limit() {
		return nil, ErrThrottled
	}
	f.inFlight++
	var once sync.Once
	return func(ctx context.Context, failed bool) {
		once.Do(func() { g.finish(ctx, k, f, failed) })
	}, nil
}

func (g *Guard) finish(ctx context.Context, k string, f *failures, failed bool) {
	g.mu.Lock()
	f.inFlight--
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
