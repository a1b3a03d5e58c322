package ticketserver

import (
	"sync"
	"time"
)

// limiter is a token bucket per key: perMinute requests a minute, bursts of
// up to perMinute. Idle buckets are forgotten so memory stays bounded by
// the number of active clients.
type limiter struct {
	mu        sync.Mutex
	perMinute int
	now       func() time.Time
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perMinute int, now func() time.Time) *limiter {
	return &limiter{perMinute: perMinute, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key, or says how long until one is available.
func (l *limiter) allow(key string) (time.Duration, bool) {
	if l.perMinute <= 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	rate := float64(l.perMinute) / float64(time.Minute) // tokens per nanosecond
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(l.perMinute), last: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(l.perMinute), b.tokens+float64(now.Sub(b.last))*rate)
	b.last = now
	l.sweep(now)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate), false
}

// sweep drops buckets that have refilled completely, once a minute.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.last) >= time.Minute {
			delete(l.buckets, k)
		}
	}
}
