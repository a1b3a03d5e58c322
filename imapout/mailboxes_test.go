package imapout

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func listNames(t *testing.T, r *raw, cmd string) []string {
	t.Helper()
	var out []string
	for _, l := range r.ok("%s", cmd) {
		out = append(out, l)
	}
	return out
}

func TestMailboxes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	r := e.rawLogin(bob)
	got := listNames(t, r, `LIST "" "*"`)
	want := []string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren \Archive) "/" "Archive"`,
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
		`* LIST (\HasNoChildren \Junk) "/" "Junk"`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("LIST:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := listNames(t, r, `LIST "" ""`); fmt.Sprint(got) != `[* LIST (\Noselect) "/" ""]` {
		t.Errorf("LIST delimiter: %q", got)
	}
	if got := listNames(t, r, `LIST "" "inbox"`); fmt.Sprint(got) != `[* LIST (\HasNoChildren) "/" INBOX]` {
		t.Errorf("LIST inbox: %q", got)
	}

	r.ok(`CREATE Projects/2026/Q1`)
	r.ok(`CREATE Travel (USE (\Archive))`)
	if _, status := r.do(`CREATE Projects`); !strings.Contains(status, "ALREADYEXISTS") {
		t.Errorf("CREATE existing: %s", status)
	}
	if _, status := r.do(`CREATE Bad (USE (\All))`); !strings.Contains(status, "USEATTR") {
		t.Errorf("CREATE \\All: %s", status)
	}
	if _, status := r.do(`CREATE "a//b"`); !strings.HasPrefix(status, "NO") {
		t.Errorf("CREATE a//b: %s", status)
	}
	if got := listNames(t, r, `LIST "" "Projects/%"`); fmt.Sprint(got) != `[* LIST (\HasChildren) "/" "Projects/2026"]` {
		t.Errorf("LIST %%: %q", got)
	}
	if got := listNames(t, r, `LIST (SPECIAL-USE) "" "*"`); len(got) != 6 {
		t.Errorf("LIST (SPECIAL-USE): %q", got)
	}
	if _, status := r.do(`DELETE Projects`); !strings.Contains(status, "HASCHILDREN") {
		t.Errorf("DELETE with children: %s", status)
	}
	if _, status := r.do(`DELETE INBOX`); !strings.HasPrefix(status, "NO") {
		t.Errorf("DELETE INBOX: %s", status)
	}
	r.ok(`RENAME Projects Work/Projects`)
	got = listNames(t, r, `LIST "" "Work*"`)
	sort.Strings(got)
	if fmt.Sprint(got) != `[* LIST (\HasChildren) "/" "Work" * LIST (\HasChildren) "/" "Work/Projects" * LIST (\HasChildren) "/" "Work/Projects/2026" * LIST (\HasNoChildren) "/" "Work/Projects/2026/Q1"]` {
		t.Errorf("after RENAME: %q", got)
	}
	r.ok(`DELETE Work/Projects/2026/Q1`)
	if _, status := r.do(`SELECT Work/Projects/2026/Q1`); !strings.HasPrefix(status, "NO") {
		t.Errorf("SELECT deleted: %s", status)
	}

	// Subscriptions.
	r.ok(`SUBSCRIBE Travel`) // CREATE does not subscribe
	r.ok(`UNSUBSCRIBE Trash`)
	if got := listNames(t, r, `LSUB "" "T*"`); fmt.Sprint(got) != `[* LSUB (\HasNoChildren \Subscribed \Archive) "/" "Travel"]` {
		t.Errorf("LSUB: %q", got)
	}
	if got := listNames(t, r, `LIST (SUBSCRIBED) "" "Tra*"`); fmt.Sprint(got) != `[* LIST (\HasNoChildren \Subscribed \Archive) "/" "Travel"]` {
		t.Errorf("LIST (SUBSCRIBED): %q", got)
	}

	// LIST-STATUS and STATUS=SIZE, APPENDLIMIT.
	e.fill(bob, 2)
	got = listNames(t, r, `LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN SIZE UIDNEXT UIDVALIDITY))`)
	if len(got) != 2 || !regexp.MustCompile(`^\* STATUS INBOX \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2 SIZE \d+\)$`).MatchString(got[1]) {
		t.Errorf("LIST-STATUS: %q", got)
	}
	if got := r.ok(`STATUS Drafts (APPENDLIMIT)`); fmt.Sprint(got) != `[* STATUS "Drafts" (APPENDLIMIT 52428800)]` {
		t.Errorf("STATUS APPENDLIMIT: %q", got)
	}

	// RENAME INBOX moves its messages and leaves it empty.
	r.ok(`RENAME INBOX "Old Inbox"`)
	if got := r.ok(`STATUS INBOX (MESSAGES)`); fmt.Sprint(got) != `[* STATUS INBOX (MESSAGES 0)]` {
		t.Errorf("INBOX after RENAME: %q", got)
	}
	if got := r.ok(`STATUS "Old Inbox" (MESSAGES)`); fmt.Sprint(got) != `[* STATUS "Old Inbox" (MESSAGES 2)]` {
		t.Errorf("renamed INBOX: %q", got)
	}

	// Delete a mailbox with messages; re-create it: new UIDVALIDITY.
	sel := r.ok(`SELECT "Old Inbox"`)
	v1 := matching(sel, `UIDVALIDITY`)
	r.ok(`UNSELECT`)
	r.ok(`DELETE "Old Inbox"`)
	r.ok(`CREATE "Old Inbox"`)
	v2 := matching(r.ok(`SELECT "Old Inbox"`), `UIDVALIDITY`)
	if len(v1) != 1 || len(v2) != 1 || v1[0] == v2[0] {
		t.Errorf("UIDVALIDITY reused: %q %q", v1, v2)
	}
	_ = imap.CapIMAP4rev2
}

func TestDeletedWhileSelected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	a := e.rawLogin(bob)
	a.ok("CREATE Temp")
	b := e.rawLogin(bob)
	e.fill(bob, 2)
	a.ok("SELECT INBOX")
	a.ok("COPY 1:2 Temp")
	a.ok("SELECT Temp")
	b.ok("DELETE Temp")
	if got := a.ok("NOOP"); fmt.Sprint(got) != "[* 2 EXPUNGE * 1 EXPUNGE]" {
		t.Errorf("deleted selected mailbox: %q", got)
	}
}
