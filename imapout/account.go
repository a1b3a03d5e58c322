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
	// catalogs holds decrypted catalogs (open.go); like keys, it lives
	// exactly as long as the unlocked key (stop empties both).
	catalogs *lru[string, openedCatalog]
	// metaCache holds decoded metadata caches (see lru.go).
	metaCache *lru[metaKey, cachedMeta]
	// flags holds flag rows of its mailboxes (flagcache.go).
	flags flagCaches
	refs  int // sessions; guarded by srv.mu

	// lingering is the key hold of the last session, kept while the
	// account lingers after it (timer ends that); guarded by srv.mu.
	lingering func()
	timer     *time.Timer

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
// A lingering account (see Config.Linger) is taken up again: the key hold
// it kept is let go, as the new session holds the key itself.
func (s *Server) attach(u *store.User, key *keyring.Unlocked) (*account, error) {
	s.mu.Lock()
	// An account opened with keys since changed (a rotation) is left to
	// its sessions, which end at their next command; new ones get the new
	// keys.
	if a := s.accounts[u.ID]; a != nil && a.user.Generation == u.Generation {
		a.refs++
		release := a.unlinger()
		s.mu.Unlock()
		if release != nil {
			release()
		}
		return a, nil
	}
	old := s.accounts[u.ID]
	a, err := s.newAccount(u, key)
	s.mu.Unlock()
	if old != nil {
		s.expire(old) // if it lingers, its keys no longer log anyone in
	}
	return a, err
}

// newAccount registers a new account for u; s.mu is held.
func (s *Server) newAccount(u *store.User, key *keyring.Unlocked) (*account, error) {
	mc, err := newMetaCipher(key.DataKey)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	a := &account{srv: s, user: u, key: key, metas: mc, keys: newKeyCache(), refs: 1,
		catalogs:  newLRU[string, openedCatalog](catalogCacheBytes),
		metaCache: newLRU[metaKey, cachedMeta](metaCacheBytes), cancel: cancel,
		nudge: make(chan struct{}, 1), done: make(chan struct{}), deferred: map[int64]time.Time{}}
	s.accounts[u.ID] = a
	go a.run(ctx)
	return a, nil
}

// detach ends a session's use of the account; release lets go of the
// session's hold on the unlocked key. The last session leaves the account
// (and so the key and its caches) lingering for Config.Linger, so that a
// client that logs out and in again, or opens a connection per task, does
// not pay for a key derivation each time; then it stops.
func (s *Server) detach(a *account, release func()) {
	s.mu.Lock()
	a.refs--
	if a.refs > 0 {
		s.mu.Unlock()
		release()
		return
	}
	if d := s.linger(); d > 0 && !s.closed && s.accounts[a.user.ID] == a {
		a.lingering = release
		a.timer = time.AfterFunc(d, func() { s.expire(a) })
		s.mu.Unlock()
		return
	}
	if s.accounts[a.user.ID] == a {
		delete(s.accounts, a.user.ID)
	}
	s.mu.Unlock()
	a.stop()
	release()
}

// unlinger ends the account's lingering and returns the key hold it
// kept, nil if it was not lingering; s.mu is held.
func (a *account) unlinger() func() {
	release := a.lingering
	if release != nil {
		a.timer.Stop()
		a.lingering, a.timer = nil, nil
	}
	return release
}

// expire stops an account that lingers with no session, and lets go of
// its key. One that a session took up again is left alone.
func (s *Server) expire(a *account) {
	s.mu.Lock()
	if a.refs > 0 || a.lingering == nil {
		s.mu.Unlock()
		return
	}
	release := a.unlinger()
	if s.accounts[a.user.ID] == a {
		delete(s.accounts, a.user.ID)
	}
	s.mu.Unlock()
	a.stop()
	release()
}

// expireAll ends every lingering account (Server.Close).
func (s *Server) expireAll() {
	s.mu.Lock()
	var all []*account
	for _, a := range s.accounts {
		all = append(all, a)
	}
	s.mu.Unlock()
	for _, a := range all {
		s.expire(a)
	}
}

// lingers reports whether the account has no session. A lingering
// account only keeps its key and caches for the next login: it files and
// indexes nothing (its user may have changed password or keys meanwhile,
// which only a login notices).
func (a *account) lingers() bool {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	return a.refs == 0
}

// stop ends the account's background work, waits for it and empties
// the caches of what the key opened: they go with the key, not whenever
// the last reference to the account does.
func (a *account) stop() {
	a.cancel()
	<-a.done
	a.keys.clear()
	a.catalogs.clear()
	a.metaCache.clear()
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
		if a.lingers() {
			continue // mail waits for the next login, as without a linger
		}
		if err := a.fileAll(ctx); err != nil && ctx.Err() == nil {
			a.srv.log.Warn("imap: filing", "user", a.user.Address, "err", err)
		}
		a.index(ctx)
	}
}
