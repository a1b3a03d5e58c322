package keyring

import (
	"errors"
	"sync"
	"time"
)

// ErrThrottled is returned by Guard.Check for a client that failed to log
// in too often recently.
var ErrThrottled = errors.New("too many failed logins, try again later")

// Guard slows down password guessing, shared by SMTP and IMAP: every
// failure costs the client Delay, and a client address with Limit failures
// within Window is refused until the oldest of them is older than Window.
type Guard struct {
	Limit  int           // failures allowed per window; 0 means 10
	Window time.Duration // 0 means one minute
	Delay  time.Duration // 0 means one second; negative means none (tests)
	Now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

func (g *Guard) params() (int, time.Duration, time.Duration, func() time.Time) {
	limit, window, delay, now := g.Limit, g.Window, g.Delay, g.Now
	if limit == 0 {
		limit = 10
	}
	if window == 0 {
		window = time.Minute
	}
	if delay == 0 {
		delay = time.Second
	}
	if now == nil {
		now = time.Now
	}
	return limit, window, max(delay, 0), now
}

// recent returns the failures of ip within the window, pruning older ones.
func (g *Guard) recent(ip string, window time.Duration, now time.Time) []time.Time {
	fs := g.failures[ip]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(g.failures, ip)
		return nil
	}
	g.failures[ip] = fs
	return fs
}

// Check refuses a client that has failed too often.
func (g *Guard) Check(ip string) error {
	limit, window, _, now := g.params()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures == nil {
		return nil
	}
	if len(g.recent(ip, window, now())) >= limit {
		return ErrThrottled
	}
	return nil
}

// Failed records a failed login from ip and waits Delay before returning,
// so a guesser gets one try per Delay per connection.
func (g *Guard) Failed(ip string) {
	_, window, delay, now := g.params()
	g.mu.Lock()
	if g.failures == nil {
		g.failures = map[string][]time.Time{}
	}
	t := now()
	g.failures[ip] = append(g.recent(ip, window, t), t)
	// Bound memory under a spray from many addresses.
	if len(g.failures) > 100000 {
		for k := range g.failures {
			delete(g.failures, k)
			break
		}
	}
	g.mu.Unlock()
	time.Sleep(delay)
}
