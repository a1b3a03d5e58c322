package imapout

import (
	"strings"
	"testing"
	"time"
)

// TestCatalogCacheGoesWithTheKey: the account's caches of unwrapped
// session keys and decrypted catalogs fill as messages are read, stay
// while the key lingers after the last session, and are emptied when the
// key goes (the linger ends), not left to whoever still holds the account.
func TestCatalogCacheGoesWithTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Options) { c.Linger = time.Hour })
	bob := e.addUser("bob@example.net")
	e.deliver(bob, message("alice@example.org", bob.Address, "cached", "Body of the cached message."), delivery{mailbox: "INBOX"})
	account := func() *account { e.srv.mu.Lock(); defer e.srv.mu.Unlock(); return e.srv.accounts[bob.ID] }
	noSessions := func() bool { e.srv.mu.Lock(); defer e.srv.mu.Unlock(); return len(e.srv.open) == 0 }

	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	for range 2 { // the second answer comes from the caches
		lines := r.ok("FETCH 1 BODY.PEEK[]")
		if !strings.Contains(strings.Join(lines, "\n"), "Body of the cached message.") {
			t.Fatalf("FETCH BODY.PEEK[]: %q", lines)
		}
	}
	a := account()
	if a.catalogs.len() == 0 || a.keys.len() == 0 {
		t.Fatalf("after a FETCH: %d catalogs, %d session keys cached", a.catalogs.len(), a.keys.len())
	}
	r.ok("LOGOUT")
	waitFor(t, noSessions)
	if _, ok := e.cfg.Unlocker.Get(bob.Address); !ok || a.catalogs.len() == 0 {
		t.Fatalf("while the key lingers: key held %v, %d catalogs cached", ok, a.catalogs.len())
	}
	e.srv.expire(a) // what the linger's timer does
	if _, ok := e.cfg.Unlocker.Get(bob.Address); ok {
		t.Fatal("key held after the linger")
	}
	if n, k, m := a.catalogs.len(), a.keys.len(), a.metaCache.len(); n+k+m != 0 {
		t.Errorf("after the key went: %d catalogs, %d session keys, %d metadata caches still held", n, k, m)
	}
}
