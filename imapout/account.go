package imapout

import (
	"context"
	"sync"
	"time"

	"tollbridge/keyring"
	"tollbridge/store"
)

// account is what the sessions of one logged-in user share: the unlocked
// key, the metadata cipher and the background work done with them
// (filing new mail, building missing metadata caches).
type account struct {
	srv   *Server
	user  *store.User
	key   *keyring.Unlocked
	metas *metaCipher
	keys  *keyCache
	refs  int // sessions; guarded by srv.mu

	work sync.Mutex // one filing or indexing run at a time

	deferMu  sync.Mutex
	deferred map[int64]time.Time // messages waiting for a sender key, next try
	nudge    chan struct{}       // asks run to file now (a login ran out of time)
	cancel   context.CancelFunc
	done     chan struct{}
}

// fileLater asks the account's background loop to file what a login left.
func (a *account) fileLater() {
	select {
	case a.nudge <- struct{}{}:
	default:
	}
}

// attach returns the user's account, creating it for the first session.
func (s *Server) attach(u *store.User, key *keyring.Unlocked) (*account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// An account opened with keys since changed (a rotation) is left to
	// its sessions, which end at their next command; new ones get the new
	// keys.
	if a := s.accounts[u.ID]; a != nil && a.user.Generation == u.Generation {
		a.refs++
		return a, nil
	}
	mc, err := newMetaCipher(key.DataKey)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	a := &account{srv: s, user: u, key: key, metas: mc, keys: newKeyCache(), refs: 1, cancel: cancel,
		nudge: make(chan struct{}, 1), done: make(chan struct{}), deferred: map[int64]time.Time{}}
	s.accounts[u.ID] = a
	go a.run(ctx)
	return a, nil
}

// detach ends a session's use of the account; the last one stops it.
func (s *Server) detach(a *account) {
	s.mu.Lock()
	a.refs--
	last := a.refs == 0
	if last && s.accounts[a.user.ID] == a {
		delete(s.accounts, a.user.ID)
	}
	s.mu.Unlock()
	if last {
		a.cancel()
		<-a.done
	}
}

// run files mail that arrives while the user is logged in, at once when
// the store announces it and every half minute in case an announcement
// was dropped, and builds metadata caches that are missing.
func (a *account) run(ctx context.Context) {
	defer close(a.done)
	events, unsubscribe := a.srv.st.Hub().Subscribe(a.user.ID)
	defer unsubscribe()
	a.index(ctx)
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			if e.Kind != store.EventUnfiled {
				continue
			}
		case <-a.nudge:
		case <-tick.C:
		}
		if err := a.fileAll(ctx); err != nil && ctx.Err() == nil {
			a.srv.log.Warn("imap: filing", "user", a.user.Address, "err", err)
		}
		a.index(ctx)
	}
}
