package store

import "sync"

// EventKind says what changed.
type EventKind int

const (
	// EventNewMessage: a message was filed into a mailbox.
	EventNewMessage EventKind = iota + 1
	// EventUnfiled: a message arrived that waits for its owner's key.
	EventUnfiled
	// EventChanged: flags changed or messages were expunged in a mailbox.
	EventChanged
	// EventMailboxes: mailboxes were created, renamed or deleted.
	EventMailboxes
)

// Event is one change in a user's mail.
type Event struct {
	Kind      EventKind
	UserID    int64
	MailboxID int64
	UID       uint32
}

// Hub fans events out to subscribers in this process. Slow subscribers
// never block publishers: an event that does not fit a subscriber's buffer
// is dropped for it, and it sees the change at its next poll of the store.
type Hub struct {
	mu   sync.Mutex
	subs map[int64]map[chan Event]struct{}
}

func newHub() *Hub { return &Hub{subs: map[int64]map[chan Event]struct{}{}} }

// Subscribe returns a channel of events for one user (userID 0: every
// user) and a function that ends the subscription.
func (h *Hub) Subscribe(userID int64) (<-chan Event, func()) {
	ch := make(chan Event, 64)
	h.mu.Lock()
	if h.subs[userID] == nil {
		h.subs[userID] = map[chan Event]struct{}{}
	}
	h.subs[userID][ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs[userID], ch)
			if len(h.subs[userID]) == 0 {
				delete(h.subs, userID)
			}
			h.mu.Unlock()
		})
	}
}

// Publish sends an event to its user's subscribers and to those of every user.
func (h *Hub) Publish(e Event) { h.publish(e) }

func (h *Hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range []int64{e.UserID, 0} {
		for ch := range h.subs[id] {
			select {
			case ch <- e:
			default:
			}
		}
	}
}
