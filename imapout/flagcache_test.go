package imapout

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"tollbridge/store"
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

// merge brings an index up to date: changed rows in place, new ones in
// UID order (also one read out of order), expunged ones out, and a row
// both changed and expunged since stays out.
func TestIndexMerge(t *testing.T) {
	row := func(uid uint32, flags ...string) store.IndexRow {
		return store.IndexRow{UID: uid, ModSeq: int64(uid), MessageID: int64(100 + uid), Flags: flags}
	}
	rows := []store.IndexRow{row(1), row(2), row(4), row(6)}
	changed := []store.IndexRow{row(2, `\Seen`), row(3), row(6, `\Deleted`), row(7), row(9)}
	got := merge(rows, changed, []uint32{4, 6, 9})
	var desc []string
	for _, r := range got {
		desc = append(desc, fmt.Sprintf("%d%v", r.UID, r.Flags))
	}
	if want := `1[] 2[\Seen] 3[] 7[]`; strings.Join(desc, " ") != want {
		t.Errorf("merged: %s, want %s", strings.Join(desc, " "), want)
	}
}

// When the expunge records an index would need were pruned, the index is
// read again whole: a second session still never sees an expunged message.
func TestIndexAfterPrunedExpunges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 4)
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	r.ok("UID FETCH 1:* (FLAGS)") // the index holds 1-4
	r.ok("UNSELECT")
	other(t, e, bob, nil, []uint32{2})
	if _, err := e.st.PruneExpunged(context.Background(), -time.Hour); err != nil {
		t.Fatal(err)
	}
	r.ok("SELECT INBOX")
	u := r.ok("UID FETCH 1:* (FLAGS)")
	if len(matching(u, `UID 2 FLAGS`)) > 0 || len(matching(u, `UID [134] FLAGS`)) != 3 {
		t.Errorf("after the expunge of UID 2 and the prune of its record: %q", u)
	}
}

// The account keeps the indexes of the mailboxes it used last: a client
// going through more folders than the bound drops the least recently
// used one, not all of them.
func TestIndexesLeastRecentlyUsedGo(t *testing.T) {
	var fc flagCaches
	key := func(i int) metaKey { return metaKey{mailbox: int64(i), validity: 1} }
	for i := range maxFlagCaches {
		fc.get(key(i))
	}
	inbox := fc.get(key(0)) // used again: the newest
	fc.get(key(maxFlagCaches))
	if len(fc.m) != maxFlagCaches || fc.m[key(0)] != inbox || fc.m[key(1)] != nil {
		t.Errorf("after one more mailbox: %d indexes, INBOX kept %v, the oldest dropped %v",
			len(fc.m), fc.m[key(0)] == inbox, fc.m[key(1)] == nil)
	}
}
