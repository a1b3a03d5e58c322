package imapout

import (
	"net"
	"sync"
	"time"
)

// throttle counts failed logins per client address in memory and refuses
// an address that failed too often, for a while.
type throttle struct {
	max    int           // failures per window before refusing
	window time.Duration // counting window
	ban    time.Duration // how long an address is refused
	now    func() time.Time

	mu    sync.Mutex
	addrs map[string]*failures
}

type failures struct {
	count   int
	since   time.Time // start of the counting window
	blocked time.Time // refused until then
}

func newThrottle(max int, window, ban time.Duration, now func() time.Time) *throttle {
	return &throttle{max: max, window: window, ban: ban, now: now, addrs: map[string]*failures{}}
}

// key groups IPv6 clients by /64, as one host usually owns one.
func throttleKey(ip net.IP) string {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	if ip == nil {
		return ""
	}
	return ip.Mask(net.CIDRMask(64, 128)).String()
}

// blocked reports whether logins from ip are refused now.
func (t *throttle) blocked(ip net.IP) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.addrs[throttleKey(ip)]
	return f != nil && t.now().Before(f.blocked)
}

// fail records a failed login from ip.
func (t *throttle) fail(ip net.IP) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.prune(now)
	k := throttleKey(ip)
	f := t.addrs[k]
	if f == nil || now.Sub(f.since) > t.window {
		f = &failures{since: now}
		t.addrs[k] = f
	}
	f.count++
	if f.count >= t.max {
		f.blocked = now.Add(t.ban)
		f.count, f.since = 0, now
	}
}

// prune forgets addresses that are neither counting nor blocked, so the
// map stays small whatever an attacker does.
func (t *throttle) prune(now time.Time) {
	if len(t.addrs) < 1024 {
		return
	}
	for k, f := range t.addrs {
		if now.Sub(f.since) > t.window && !now.Before(f.blocked) {
			delete(t.addrs, k)
		}
	}
}
