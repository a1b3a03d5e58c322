package imapout

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/store"
)

// highestModSeq returns the HIGHESTMODSEQ and UIDVALIDITY a SELECT
// answered.
func highestModSeq(t *testing.T, sel []string) (modseq uint64, uidValidity uint32) {
	t.Helper()
	for _, l := range sel {
		if m := regexp.MustCompile(`^\* OK \[HIGHESTMODSEQ (\d+)\]`).FindStringSubmatch(l); m != nil {
			modseq, _ = strconv.ParseUint(m[1], 10, 64)
		}
		if m := regexp.MustCompile(`^\* OK \[UIDVALIDITY (\d+)\]`).FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 32)
			uidValidity = uint32(v)
		}
	}
	if modseq == 0 || uidValidity == 0 {
		t.Fatalf("SELECT without HIGHESTMODSEQ or UIDVALIDITY: %q", sel)
	}
	return modseq, uidValidity
}

// other is a second session, through the go-imap client, that changes the
// mailbox: flags added to some messages, others expunged.
func other(t *testing.T, e *env, u *store.User, flag []uint32, expunge []uint32) {
	t.Helper()
	c := e.login(u)
	defer c.Logout()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, uid := range flag {
		if err := c.Store(imap.UIDSetNum(imap.UID(uid)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, uid := range expunge {
		if err := c.Store(imap.UIDSetNum(imap.UID(uid)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(expunge) > 0 {
		if _, err := c.Expunge().Collect(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCondStoreCapabilitySelectStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 3)
	c := e.login(bob)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapCondStore) || !caps.Has(imap.CapQResync) {
		t.Fatalf("capabilities %v lack CONDSTORE or QRESYNC", caps)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.HighestModSeq == 0 {
		t.Fatal("SELECT (CONDSTORE) gave no HIGHESTMODSEQ")
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, ModSeq: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, m := range msgs {
		if m.ModSeq == 0 || m.ModSeq > sel.HighestModSeq || seen[m.ModSeq] {
			t.Errorf("UID %d: MODSEQ %d (HIGHESTMODSEQ %d)", m.UID, m.ModSeq, sel.HighestModSeq)
		}
		seen[m.ModSeq] = true
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.HighestModSeq != sel.HighestModSeq {
		t.Errorf("STATUS HIGHESTMODSEQ %d, SELECT said %d", st.HighestModSeq, sel.HighestModSeq)
	}
	// A plain SELECT says HIGHESTMODSEQ too, never NOMODSEQ.
	r := e.rawLogin(bob)
	if sel := r.ok("EXAMINE INBOX"); len(matching(sel, `NOMODSEQ`)) > 0 {
		t.Errorf("EXAMINE: %q", sel)
	} else {
		highestModSeq(t, sel)
	}
}

func TestCondStoreChangedSinceAfterOtherSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 5)
	c := e.login(bob)
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	other(t, e, bob, []uint32{2, 4}, nil)
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5), &imap.FetchOptions{UID: true, Flags: true, ChangedSince: sel.HighestModSeq}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		if m.ModSeq <= sel.HighestModSeq {
			t.Errorf("UID %d: MODSEQ %d not above %d", m.UID, m.ModSeq, sel.HighestModSeq)
		}
		got = append(got, fmt.Sprintf("%d %v", m.UID, m.Flags))
	}
	if strings.Join(got, ";") != `2 [\Flagged \Recent];4 [\Flagged \Recent]` {
		t.Errorf("FETCH CHANGEDSINCE: %q", got)
	}
}

func TestCondStoreUnchangedSinceConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 3)
	r := e.rawLogin(bob)
	h, _ := highestModSeq(t, r.ok("SELECT INBOX (CONDSTORE)"))
	other(t, e, bob, []uint32{2}, nil)

	u, status := r.do(`STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\Seen)`, h)
	if status != "OK [MODIFIED 2] Conditional STORE failed" {
		t.Fatalf("STORE UNCHANGEDSINCE: %s (after %q)", status, u)
	}
	for _, n := range []int{1, 3} {
		re := fmt.Sprintf(`^\* %d FETCH \(UID %d FLAGS \(\\Seen \\Recent\) MODSEQ \((\d+)\)\)$`, n, n)
		if len(matching(u, re)) != 1 {
			t.Errorf("no FETCH with MODSEQ for %d: %q", n, u)
		}
	}
	for _, l := range matching(u, `^\* 2 FETCH`) {
		if strings.Contains(l, `\Seen`) {
			t.Errorf("message 2 changed despite the conflict: %q", l)
		}
	}
	// UID STORE names UIDs; UNCHANGEDSINCE 0 fails for every message.
	if _, status := r.do(`UID STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\Answered)`); status != "OK [MODIFIED 1:3] Conditional STORE failed" {
		t.Errorf("UID STORE UNCHANGEDSINCE 0: %s", status)
	}
	if u := r.ok(`FETCH 1:3 (FLAGS)`); len(matching(u, `Answered`)) > 0 {
		t.Errorf("a failed conditional STORE changed flags: %q", u)
	}
	// .SILENT leaves the flags out but, with CONDSTORE, not the new MODSEQ.
	if u := r.ok(`STORE 1 +FLAGS.SILENT (\Answered)`); len(u) != 1 || !regexp.MustCompile(`^\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)$`).MatchString(u[0]) {
		t.Errorf("STORE .SILENT with CONDSTORE: %q", u)
	}
}

func TestCondStoreSearchModSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 4)
	r := e.rawLogin(bob)
	h, _ := highestModSeq(t, r.ok("SELECT INBOX"))
	other(t, e, bob, []uint32{3}, nil)
	u := r.ok("FETCH 3 (MODSEQ)")
	m := regexp.MustCompile(`MODSEQ \((\d+)\)`).FindStringSubmatch(strings.Join(u, "\n"))
	if m == nil {
		t.Fatalf("FETCH MODSEQ: %q", u)
	}
	if u := r.ok("SEARCH MODSEQ %d", h+1); len(matching(u, fmt.Sprintf(`^\* SEARCH 3 \(MODSEQ %s\)$`, m[1]))) != 1 {
		t.Errorf("SEARCH MODSEQ: %q", u)
	}
	if u := r.ok(`UID SEARCH RETURN (ALL) MODSEQ "/flags/\\flagged" all %d`, h+1); len(matching(u, fmt.Sprintf(`ESEARCH .*UID ALL 3 MODSEQ %s$`, m[1]))) != 1 {
		t.Errorf("ESEARCH MODSEQ: %q", u)
	}
}

func TestQResyncSelectAfterOtherSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 6)
	a := e.rawLogin(bob)
	a.ok("ENABLE QRESYNC")
	h, uv := highestModSeq(t, a.ok("SELECT INBOX"))
	a.ok("LOGOUT")

	other(t, e, bob, []uint32{2}, []uint32{3, 5})
	e.fill(bob, 1) // UID 7

	c := e.rawLogin(bob)
	if _, status := c.do("SELECT INBOX (QRESYNC (%d %d 1:6))", uv, h); !strings.HasPrefix(status, "BAD") {
		t.Errorf("QRESYNC before ENABLE: %s", status)
	}
	c.ok("ENABLE QRESYNC")
	u := c.ok("SELECT INBOX (QRESYNC (%d %d 1:6))", uv, h)
	if got := matching(u, `VANISHED`); len(got) != 1 || got[0] != "* VANISHED (EARLIER) 3,5" {
		t.Errorf("VANISHED: %q", u)
	}
	fetches := matching(u, `FETCH`)
	if len(fetches) != 2 || !regexp.MustCompile(`^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$`).MatchString(fetches[0]) ||
		!regexp.MustCompile(`^\* 5 FETCH \(UID 7 FLAGS \(\\Recent\) MODSEQ \(\d+\)\)$`).MatchString(fetches[1]) {
		t.Errorf("FETCH of changes: %q", fetches)
	}
	if len(matching(u, `EXPUNGE`)) > 0 {
		t.Errorf("EXPUNGE under QRESYNC: %q", u)
	}
	// Another UIDVALIDITY: a plain SELECT, no resync.
	u = c.ok("SELECT INBOX (QRESYNC (%d %d 1:6))", uv+1, h)
	if len(matching(u, `VANISHED|FETCH`)) > 0 {
		t.Errorf("resync with a stale UIDVALIDITY: %q", u)
	}
}

func TestQResyncLiveVanishedAndModSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 4)
	a := e.rawLogin(bob)
	a.ok("ENABLE QRESYNC")
	a.ok("SELECT INBOX")
	other(t, e, bob, []uint32{4}, []uint32{1})
	u := a.ok("NOOP")
	if got := matching(u, `VANISHED|EXPUNGE`); len(got) != 1 || got[0] != "* VANISHED 1" {
		t.Errorf("expunge by another session: %q", u)
	}
	if len(matching(u, `^\* 3 FETCH \(UID 4 FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)$`)) != 1 {
		t.Errorf("flag change by another session: %q", u)
	}
	a.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	if u := matching(a.ok("EXPUNGE"), `VANISHED|EXPUNGE`); len(u) != 1 || u[0] != "* VANISHED 2" {
		t.Errorf("own EXPUNGE: %q", u)
	}
	if u := matching(a.ok("UID MOVE 4 Archive"), `VANISHED|EXPUNGE`); len(u) != 1 || u[0] != "* VANISHED 4" {
		t.Errorf("own MOVE: %q", u)
	}
}

func TestQResyncUIDFetchVanished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 5)
	a := e.rawLogin(bob)
	h, _ := highestModSeq(t, a.ok("SELECT INBOX"))
	if _, status := a.do("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", h); !strings.HasPrefix(status, "BAD") {
		t.Errorf("VANISHED without ENABLE QRESYNC: %s", status)
	}
	a.ok("ENABLE QRESYNC")
	other(t, e, bob, []uint32{4}, []uint32{2})
	a.ok("NOOP")
	u := a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", h)
	if len(u) != 2 || u[0] != "* VANISHED (EARLIER) 2" || !regexp.MustCompile(`^\* 3 FETCH \(UID 4 FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)$`).MatchString(u[1]) {
		t.Errorf("UID FETCH CHANGEDSINCE VANISHED: %q", u)
	}
}

func TestQResyncAfterPruning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 8)
	a := e.rawLogin(bob)
	a.ok("ENABLE QRESYNC")
	h, uv := highestModSeq(t, a.ok("SELECT INBOX"))
	a.ok("LOGOUT")
	// A session that stays open across the prune.
	open := e.rawLogin(bob)
	open.ok("SELECT INBOX")

	other(t, e, bob, nil, []uint32{2, 6})
	n, err := e.st.PruneExpunged(context.Background(), -time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("PruneExpunged: %d, %v", n, err)
	}
	other(t, e, bob, nil, []uint32{7}) // recorded after the prune

	c := e.rawLogin(bob)
	c.ok("ENABLE QRESYNC")
	// Records from h on are gone: every known UID no longer there is
	// reported.
	if got := matching(c.ok("EXAMINE INBOX (QRESYNC (%d %d 1:3,5:8))", uv, h), `VANISHED`); len(got) != 1 || got[0] != "* VANISHED (EARLIER) 2,6:7" {
		t.Errorf("after pruning: %q", got)
	}
	// Sequence match data: the client had UID 3 at 2, as now, so it
	// knows every expunge up to UID 3, and only 6 and 7 are told.
	if got := matching(c.ok("EXAMINE INBOX (QRESYNC (%d %d 1:8 (1,2 1,3)))", uv, h), `VANISHED`); len(got) != 1 || got[0] != "* VANISHED (EARLIER) 6:7" {
		t.Errorf("after pruning, with seq-match data: %q", got)
	}
	// The long-open session still hears of all three expunges.
	if got := matching(open.ok("NOOP"), `EXPUNGE`); strings.Join(got, ";") != "* 2 EXPUNGE;* 5 EXPUNGE;* 5 EXPUNGE" {
		t.Errorf("open session after pruning: %q", got)
	}
}

// TestCondStoreClientLib checks that the go-imap client reads what the
// server sends with CONDSTORE enabled: unsolicited FETCH with MODSEQ.
func TestCondStoreClientLib(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 2)
	updates := make(chan uint64, 4)
	c := e.login(bob, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: func(msg *imapclient.FetchMessageData) {
			buf, err := msg.Collect()
			if err == nil {
				updates <- buf.ModSeq
			}
		},
	}})
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	other(t, e, bob, []uint32{1}, nil)
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-updates:
		if m <= sel.HighestModSeq {
			t.Errorf("unsolicited FETCH MODSEQ %d, not above %d", m, sel.HighestModSeq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no unsolicited FETCH")
	}
}

// TestCondStoreHighestBelowPendingExpunge: after FETCH, where expunges by
// others may not be told, the MODSEQs the client sees are answered with
// an OK [HIGHESTMODSEQ] below the expunge's, so that a client that loses
// its connection then resynchronizes from before it (RFC 7162 §3.2).
func TestCondStoreHighestBelowPendingExpunge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 3)
	a := e.rawLogin(bob)
	h, _ := highestModSeq(t, a.ok("SELECT INBOX (CONDSTORE)"))
	other(t, e, bob, nil, []uint32{1})
	other(t, e, bob, []uint32{3}, nil)
	u := a.ok("FETCH 3 (MODSEQ)")
	if len(matching(u, `EXPUNGE|VANISHED`)) > 0 {
		t.Fatalf("expunge told after FETCH: %q", u)
	}
	got := matching(u, `HIGHESTMODSEQ`)
	if len(got) != 1 || got[0] != fmt.Sprintf("* OK [HIGHESTMODSEQ %d] Highest", h) {
		t.Errorf("after FETCH with an expunge pending: %q", u)
	}
	if got := matching(a.ok("NOOP"), `EXPUNGE`); len(got) != 1 || got[0] != "* 1 EXPUNGE" {
		t.Errorf("NOOP: %q", got)
	}
}

// TestCondStoreBadSyntax: malformed modifiers and parameters are a BAD
// answer, and the session goes on.
func TestCondStoreBadSyntax(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 2)
	r := e.rawLogin(bob)
	r.ok("ENABLE QRESYNC")
	for _, cmd := range []string{
		"SELECT INBOX (QRESYNC (1 1 1:5 1:3))",
		"SELECT INBOX (QRESYNC (1 1 1:5 ($ 1)))",
		"SELECT INBOX (QRESYNC (1 1 $))",
		"SELECT INBOX (QRESYNC (0 1))",
		"SELECT INBOX (QRESYNC (1 0))",
		"SELECT INBOX (BOGUS)",
	} {
		if _, status := r.do("%s", cmd); !strings.HasPrefix(status, "BAD") {
			t.Errorf("%s: %s", cmd, status)
		}
	}
	r.ok("SELECT INBOX")
	for _, cmd := range []string{
		"FETCH 1 (FLAGS) (CHANGEDSINCE 0)",
		"FETCH 1 (FLAGS) (VANISHED)",
		"FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)",
		"FETCH 1 (FLAGS) (BOGUS 1)",
		`STORE 1 (UNCHANGEDSINCE x) +FLAGS (\Seen)`,
		`STORE 1 (BOGUS 1) +FLAGS (\Seen)`,
		`SEARCH MODSEQ "/flags/\\seen" bogus 5`,
		"SEARCH MODSEQ x",
	} {
		if _, status := r.do("%s", cmd); !strings.HasPrefix(status, "BAD") {
			t.Errorf("%s: %s", cmd, status)
		}
	}
	r.ok("NOOP")
}

// The go-imap client (our copy) resynchronizes with QRESYNC against the
// server: SELECT (QRESYNC (uidvalidity modseq)) brings the flags changed
// and, as VANISHED (EARLIER), the UIDs expunged since.
func TestClientQResync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 5)
	c := e.login(bob)
	st, err := c.Status("INBOX", &imap.StatusOptions{UIDValidity: true, HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	c.Logout()
	other(t, e, bob, []uint32{2}, []uint32{4})

	var mu sync.Mutex
	var fetched []uint32
	var vanished imap.UIDSet
	var earlier bool
	c = e.login(bob, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: func(m *imapclient.FetchMessageData) {
			mu.Lock()
			defer mu.Unlock()
			buf, err := m.Collect()
			if err == nil {
				fetched = append(fetched, uint32(buf.UID))
			}
		},
		Vanished: func(e bool, uids imap.UIDSet) {
			mu.Lock()
			defer mu.Unlock()
			earlier, vanished = e, uids
		},
	}})
	if _, err := c.Enable(imap.CapQResync).Wait(); err != nil {
		t.Fatal(err)
	}
	q := &imap.SelectQResync{UIDValidity: st.UIDValidity, ModSeq: st.HighestModSeq}
	if _, err := c.Select("INBOX", &imap.SelectOptions{QResync: q}).Wait(); err != nil {
		t.Fatal(err)
	}
	// The client hands unilateral FETCH data to the handler in a
	// goroutine of its own.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(fetched)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(fetched) != "[2]" || !earlier || vanished.String() != "4" {
		t.Errorf("resync: FETCH of UIDs %v, VANISHED (EARLIER %v) %v; want [2], true, 4", fetched, earlier, vanished)
	}
}
