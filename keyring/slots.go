package keyring

import (
	"context"
	"slices"
	"sync"
)

// maxKnownClients bounds how many clients that logged in before are
// remembered for priority (an address key is ~40 bytes).
const maxKnownClients = 4096

// slots hands out the Unlocker's key derivation slots fairly.
//
// Each client (an IPv4 address or an IPv6 /64, keyed as Guard keys them)
// has at most one derivation pending, waiting for a slot or running. Its
// further attempts wait in the client's own line until that one ends and
// only then join the shared queue, at its back. They are queued rather
// than refused because honest clients open several connections at once
// (Thunderbird logs in on up to five), and Guard already bounds how many
// attempts one address may have begun. So 40 guessing addresses hold at
// most 40 places in the shared queue, however many connections they
// open. Clients that logged in successfully before go ahead of the rest.
type slots struct {
	mu      sync.Mutex
	size    int // slots in all
	free    int
	queue   []*slotWait            // known clients first, each group in arrival order
	clients map[string]*clientLine // clients with a derivation pending
	known   knownClients
}

// clientLine is a client's attempts waiting behind its pending one.
type clientLine struct {
	behind []chan struct{}
}

type slotWait struct {
	client  string
	known   bool
	ready   chan struct{} // closed when granted
	granted bool
}

func newSlots(n int) *slots {
	return &slots{size: max(n, 1), free: max(n, 1), clients: map[string]*clientLine{}, known: knownClients{max: maxKnownClients}}
}

// acquire waits until client may run one derivation and returns the
// function that ends it, which reports whether that left every slot free
// and nobody waiting (the end of a burst).
func (s *slots) acquire(ctx context.Context, client string) (func() bool, error) {
	if err := s.enterLine(ctx, client); err != nil {
		return nil, err
	}
	if err := s.takeSlot(ctx, client); err != nil {
		s.leaveLine(client)
		return nil, err
	}
	var once sync.Once
	return func() bool {
		idle := false
		once.Do(func() {
			s.freeSlot()
			s.leaveLine(client)
			idle = s.idle()
		})
		return idle
	}, nil
}

// idle reports whether no derivation runs or waits for a slot.
func (s *slots) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.free == s.size && len(s.queue) == 0 && len(s.clients) == 0
}

// enterLine makes this attempt the client's pending one, waiting behind
// the one it has.
func (s *slots) enterLine(ctx context.Context, client string) error {
	s.mu.Lock()
	l, busy := s.clients[client]
	if !busy {
		s.clients[client] = &clientLine{}
		s.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	l.behind = append(l.behind, w)
	s.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if i := slices.Index(l.behind, w); i >= 0 {
		l.behind = slices.Delete(l.behind, i, i+1)
		s.mu.Unlock()
		return ctx.Err()
	}
	s.mu.Unlock()
	s.leaveLine(client) // handed over as ctx ended: pass it on
	return ctx.Err()
}

// leaveLine ends the client's pending attempt and wakes its next one.
func (s *slots) leaveLine(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.clients[client]
	if len(l.behind) == 0 {
		delete(s.clients, client)
		return
	}
	next := l.behind[0]
	l.behind = slices.Delete(l.behind, 0, 1)
	close(next)
}

func (s *slots) takeSlot(ctx context.Context, client string) error {
	s.mu.Lock()
	if s.free > 0 && len(s.queue) == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	w := &slotWait{client: client, known: s.known.has(client), ready: make(chan struct{})}
	at := len(s.queue)
	if w.known {
		at = slices.IndexFunc(s.queue, func(q *slotWait) bool { return !q.known })
		if at < 0 {
			at = len(s.queue)
		}
	}
	s.queue = slices.Insert(s.queue, at, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if !w.granted {
		s.queue = slices.DeleteFunc(s.queue, func(q *slotWait) bool { return q == w })
		s.mu.Unlock()
		return ctx.Err()
	}
	s.mu.Unlock()
	s.freeSlot() // granted as ctx ended: pass it on
	return ctx.Err()
}

// freeSlot gives a slot to the head of the queue, or returns it.
func (s *slots) freeSlot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		s.free++
		return
	}
	w := s.queue[0]
	s.queue = slices.Delete(s.queue, 0, 1)
	w.granted = true
	close(w.ready)
}

// succeeded remembers that client logged in, for priority next time.
func (s *slots) succeeded(client string) {
	s.mu.Lock()
	s.known.add(client)
	s.mu.Unlock()
}

// queued is how many derivations wait for a slot.
func (s *slots) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// knownClients remembers up to max clients, forgetting the one seen
// least recently when full.
type knownClients struct {
	max  int
	seen map[string]uint64
	next uint64
}

func (k *knownClients) has(client string) bool {
	_, ok := k.seen[client]
	return ok
}

func (k *knownClients) add(client string) {
	if k.seen == nil {
		k.seen = map[string]uint64{}
	}
	if _, ok := k.seen[client]; !ok && len(k.seen) >= k.max {
		oldest, at, first := "", uint64(0), true
		for c, n := range k.seen {
			if first || n < at {
				oldest, at, first = c, n, false
			}
		}
		delete(k.seen, oldest)
	}
	k.next++
	k.seen[client] = k.next
}
