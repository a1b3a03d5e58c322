package imapout

import (
	"testing"
)

// A FETCH (FLAGS) answered from the account's flag cache still shows
// what another session changed since, and leaves out what it expunged;
// a new session of the user reads the same cache.
func TestFetchFlagsCacheSeesOtherSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 5)
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	if u := r.ok("UID FETCH 1:* (FLAGS)"); len(matching(u, `Flagged`)) > 0 {
		t.Fatalf("flagged before any STORE: %q", u)
	}
	// Twice: the second is answered from the cache.
	r.ok("UID FETCH 1:* (FLAGS)")

	other(t, e, bob, []uint32{2, 4}, nil)
	u := r.ok("UID FETCH 1:* (FLAGS)")
	for _, n := range []string{"2", "4"} {
		if len(matching(u, `^\* `+n+` FETCH \(UID `+n+` FLAGS \(\\Flagged`)) == 0 {
			t.Errorf("UID %s: no \\Flagged from the other session: %q", n, u)
		}
	}
	if u := r.ok("UID FETCH 3:4 (FLAGS)"); len(matching(u, `^\* 4 FETCH \(UID 4 FLAGS \(\\Flagged`)) != 1 {
		t.Errorf("UID FETCH 3:4 after the cache was refilled: %q", u)
	}

	other(t, e, bob, nil, []uint32{3})
	u = r.ok("UID FETCH 1:* (FLAGS)")
	if len(matching(u, `UID 3 FLAGS`)) > 0 {
		t.Errorf("UID 3, expunged by the other session, still answered: %q", u)
	}
	if len(matching(u, `UID 5 FLAGS`)) != 1 {
		t.Errorf("UID 5 missing: %q", u)
	}

	r2 := e.rawLogin(bob)
	r2.ok("SELECT INBOX")
	other(t, e, bob, []uint32{5}, nil)
	r.ok("UID FETCH 1:* (FLAGS)") // the cache is filled again
	u = r2.ok("UID FETCH 1:* (FLAGS)")
	for _, n := range []string{"2", "4", "5"} {
		if len(matching(u, `\(UID `+n+` FLAGS \(\\Flagged`)) == 0 {
			t.Errorf("a new session after the other's STORE: UID %s not flagged: %q", n, u)
		}
	}
	if len(matching(u, `UID 3 FLAGS`)) > 0 {
		t.Errorf("a new session sees expunged UID 3: %q", u)
	}
}
