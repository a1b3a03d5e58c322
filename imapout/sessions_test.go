package imapout

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/store"
)

// fill delivers n small messages straight into a user's INBOX (legacy
// mail, already filed), UIDs 1..n.
func (e *env) fill(u *store.User, n int) []string {
	var msgs []string
	for i := 1; i <= n; i++ {
		m := message("sender@example.com", u.Address, fmt.Sprintf("message %d", i), fmt.Sprintf("body of message %d", i))
		e.deliver(u, m, delivery{mailbox: "INBOX", source: store.SourceMX})
		msgs = append(msgs, m)
	}
	return msgs
}

// collect reads lines until one matches until, returning them all.
func (r *raw) collect(until string) []string {
	r.t.Helper()
	re := regexp.MustCompile(until)
	var out []string
	for {
		l := r.line()
		out = append(out, l)
		if re.MatchString(l) {
			return out
		}
	}
}

func matching(lines []string, re string) []string {
	var out []string
	for _, l := range lines {
		if regexp.MustCompile(re).MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

func TestTwoSessionsIdle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 5)

	a := e.rawLogin(bob)
	sel := a.ok("SELECT INBOX")
	if len(matching(sel, `^\* 5 EXISTS$`)) != 1 {
		t.Fatalf("SELECT: %q", sel)
	}
	a.send("IDLE")
	a.expect(`^\+ `)

	b := e.login(bob)
	if _, err := b.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// STORE in B: A sees the new flags of message 2.
	if err := b.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if l := a.expect(`FETCH`); l != `* 2 FETCH (UID 2 FLAGS (\Flagged \Recent))` {
		t.Errorf("flag update: %q", l)
	}
	// MOVE in B: A sees message 3 go.
	if _, err := b.Move(imap.SeqSetNum(3), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	if l := a.expect(`EXPUNGE|FETCH`); l != "* 3 EXPUNGE" {
		t.Errorf("after MOVE: %q", l)
	}
	// EXPUNGE in B of what were messages 1 and 4: A's numbers are 1 and 3,
	// and after the first EXPUNGE the second is 2.
	if err := b.Store(imap.UIDSetNum(1, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	seqs, err := b.Expunge().Collect()
	if err != nil || fmt.Sprint(seqs) != "[1 2]" {
		t.Errorf("B's EXPUNGE: %v %v", seqs, err)
	}
	lines := a.collect(`^\* 2 EXPUNGE$`)
	if ex := matching(lines, `EXPUNGE`); fmt.Sprint(ex) != "[* 1 EXPUNGE * 2 EXPUNGE]" {
		t.Errorf("A's expunges: %q", lines)
	}
	for _, l := range matching(lines, `FETCH`) {
		if l != `* 1 FETCH (UID 1 FLAGS (\Deleted \Recent))` && l != `* 3 FETCH (UID 4 FLAGS (\Deleted \Recent))` {
			t.Errorf("A's flag update: %q", l)
		}
	}
	// New mail: EXISTS counts A's view (2 left, plus 1).
	msg := message("x@example.com", bob.Address, "new", "new")
	app := b.Append("INBOX", int64(len(msg)), nil)
	app.Write([]byte(msg))
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	a.expect(`^\* 3 EXISTS$`)
	a.c.Write([]byte("DONE\r\n"))
	a.expect(`^T\d+ OK`)
	got := a.ok("FETCH 1:* (UID)")
	if fmt.Sprint(got) != "[* 1 FETCH (UID 2) * 2 FETCH (UID 5) * 3 FETCH (UID 6)]" {
		t.Errorf("A's view: %q", got)
	}
}

// TestNoExpungeDuringFetch checks that EXPUNGE waits for a command that
// allows it, and numbering stays right meanwhile.
func TestNoExpungeDuringFetch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 3)
	a := e.rawLogin(bob)
	a.ok("SELECT INBOX")
	b := e.rawLogin(bob)
	b.ok("SELECT INBOX")
	b.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	untagged, status := a.do("FETCH 1:3 (UID)")
	if len(matching(untagged, "EXPUNGE")) > 0 {
		t.Errorf("EXPUNGE during FETCH: %q", untagged)
	}
	if fmt.Sprint(matching(untagged, "FETCH")) != "[* 1 FETCH (UID 1) * 3 FETCH (UID 3)]" || !strings.Contains(status, "EXPUNGEISSUED") {
		t.Errorf("FETCH: %q %s", untagged, status)
	}
	untagged, _ = a.do("SEARCH ALL")
	if len(matching(untagged, "EXPUNGE")) > 0 || fmt.Sprint(matching(untagged, "SEARCH")) != "[* SEARCH 1 3]" {
		t.Errorf("SEARCH: %q", untagged)
	}
	// Message 2 was \Recent here: the count follows (issue 13 item 8).
	if got := a.ok("NOOP"); fmt.Sprint(got) != "[* 2 EXPUNGE * 2 RECENT]" {
		t.Errorf("NOOP: %q", got)
	}
	if got := a.ok("FETCH 1:* (UID)"); fmt.Sprint(got) != "[* 1 FETCH (UID 1) * 2 FETCH (UID 3)]" {
		t.Errorf("after NOOP: %q", got)
	}
	// UID commands may carry EXPUNGE; UIDs that are gone are ignored.
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	if got, status := a.do("UID FETCH 1:* (FLAGS)"); !strings.HasPrefix(status, "OK") ||
		len(matching(got, `UID 3`)) != 1 {
		t.Errorf("UID FETCH: %q %s", got, status)
	}
}

func TestCopyMoveExpunge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 4)
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	_, status := r.do("COPY 1:2 Archive")
	if !regexp.MustCompile(`^OK \[COPYUID \d+ 1:2 1:2\]`).MatchString(status) {
		t.Errorf("COPY: %s", status)
	}
	if _, status := r.do("COPY 1 Nowhere"); !strings.Contains(status, "TRYCREATE") {
		t.Errorf("COPY to a missing mailbox: %s", status)
	}
	got := r.ok("UID MOVE 2:3 Archive")
	if len(got) != 4 || !regexp.MustCompile(`^\* OK \[COPYUID \d+ 2:3 3:4\]`).MatchString(got[0]) ||
		got[1] != "* 2 EXPUNGE" || got[2] != "* 2 EXPUNGE" || got[3] != "* 2 RECENT" {
		t.Errorf("UID MOVE: %q", got)
	}
	r.ok(`STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	if got := r.ok("UID EXPUNGE 4"); fmt.Sprint(got) != "[* 2 EXPUNGE * 1 RECENT]" {
		t.Errorf("UID EXPUNGE: %q", got)
	}
	if got := r.ok("FETCH 1 (UID FLAGS)"); fmt.Sprint(got) != `[* 1 FETCH (UID 1 FLAGS (\Deleted \Recent))]` {
		t.Errorf("left: %q", got)
	}
	// CLOSE expunges silently.
	if got := r.ok("CLOSE"); len(got) != 0 {
		t.Errorf("CLOSE: %q", got)
	}
	st := r.ok("STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)")
	if len(st) != 1 || !strings.Contains(st[0], "MESSAGES 0") || !strings.Contains(st[0], "UIDNEXT 5") {
		t.Errorf("STATUS: %q", st)
	}
	st = r.ok("STATUS Archive (MESSAGES)")
	if len(st) != 1 || !strings.Contains(st[0], "MESSAGES 4") {
		t.Errorf("STATUS Archive: %q", st)
	}
	// Fetch what was moved: same content.
	r.ok("EXAMINE Archive")
	if got := r.ok("FETCH 4 (BODY.PEEK[TEXT])"); len(got) != 1 || !strings.Contains(got[0], "body of message 3") {
		t.Errorf("moved message: %q", got)
	}
}

func TestStoreFlagsAndKeywords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 2)
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	// $Work is new: FLAGS comes first (issue 13 item 9).
	if got := r.ok(`STORE 1 +FLAGS (\Seen \seen $Work)`); len(got) != 2 || got[1] != `* 1 FETCH (UID 1 FLAGS ($Work \Seen \Recent))` {
		t.Errorf("STORE +FLAGS: %q", got)
	}
	if got := r.ok(`UID STORE 1:2 FLAGS (\Answered)`); fmt.Sprint(matching(got, "FETCH")) != `[* 1 FETCH (UID 1 FLAGS (\Answered \Recent)) * 2 FETCH (UID 2 FLAGS (\Answered \Recent))]` {
		t.Errorf("STORE FLAGS: %q", got)
	}
	if got := r.ok(`STORE 2 -FLAGS.SILENT (\Answered)`); len(got) != 0 {
		t.Errorf("STORE .SILENT: %q", got)
	}
	sel := r.ok("SELECT INBOX")
	if len(matching(sel, `^\* FLAGS \(.*\$Work`)) != 1 || len(matching(sel, `PERMANENTFLAGS \(.*\$Work.*\\\*\)`)) != 1 {
		t.Errorf("keyword not announced: %q", sel)
	}
	if got := r.ok(`SEARCH KEYWORD $work`); fmt.Sprint(got) != "[* SEARCH]" {
		t.Errorf("keyword search after FLAGS replace: %q", got)
	}
	_ = time.Now
	_ = imapclient.Options{}
}

// TestIdleAfterBatchedFetches: FETCH and STORE answers are written in a
// batch, flushed at the command's end (go-imap's beginBatch/endBatch);
// the batch must end whichever way the command does, so that what IDLE
// pushes afterwards goes out at once.
func TestIdleAfterBatchedFetches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 3)

	a := e.rawLogin(bob)
	a.ok("SELECT INBOX")
	if got := a.ok("FETCH 1:* (FLAGS)"); len(got) != 3 {
		t.Fatalf("FETCH: %q", got)
	}
	a.ok(`STORE 1:3 +FLAGS (\Seen)`)
	// A FETCH the session refuses (too many sections) after the batch began.
	if _, status := a.do("FETCH 1 (%s)", strings.TrimSpace(strings.Repeat("BODY.PEEK[1] ", maxSections+1))); !strings.HasPrefix(status, "BAD [LIMIT]") {
		t.Fatalf("FETCH of %d sections: %s", maxSections+1, status)
	}
	a.send("IDLE")
	a.expect(`^\+ `)
	other(t, e, bob, []uint32{2}, nil) // \Flagged on UID 2 from another session
	if l := a.expect(`FETCH`); !regexp.MustCompile(`^\* 2 FETCH \(UID 2 FLAGS \(.*\\Flagged`).MatchString(l) {
		t.Errorf("flag update during IDLE: %q", l)
	}
	a.c.Write([]byte("DONE\r\n"))
	a.expect(`^T\d+ OK`)
}
