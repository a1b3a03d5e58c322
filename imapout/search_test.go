package imapout

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"tollbridge/store"
)

func searchMessages() []string {
	pad := strings.Repeat("padding line to make this message larger\r\n", 120)
	return []string{
		crlf("From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: Quarterly report\nDate: Fri, 09 Jan 2026 10:00:00 +0000\n\nThe numbers look good.\n"),
		crlf("From: Bob <bob@example.net>\nTo: alice@example.org\nSubject: Lunch?\nDate: Sun, 15 Feb 2026 10:00:00 +0000\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n") +
			base64.StdEncoding.EncodeToString([]byte("Shall we meet for lunch at noon?")) + "\r\n",
		crlf("From: carol@example.com\nTo: bob@example.net\nSubject: =?iso-8859-1?q?Caf=E9?=\nDate: Fri, 20 Mar 2026 10:00:00 +0000\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nUn caf=E9 cr=E8me, s'il vous pla=EEt.\n") + pad,
		crlf("From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: Re: Quarterly report\nDate: Wed, 01 Apr 2026 10:00:00 +0000\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/html\n\n<p>See attached</p>\n--x\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n") +
			base64.StdEncoding.EncodeToString([]byte("numbers numbers numbers")) + "\r\n--x--\r\n",
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	days := []time.Time{
		time.Date(2026, 1, 10, 12, 0, 0, 0, time.Local), time.Date(2026, 2, 15, 12, 0, 0, 0, time.Local),
		time.Date(2026, 3, 20, 12, 0, 0, 0, time.Local), time.Date(2026, 4, 1, 12, 0, 0, 0, time.Local),
	}
	for i, m := range searchMessages() {
		e.deliver(bob, m, delivery{mailbox: "INBOX", source: store.SourceMX, received: days[i]})
	}
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	r.ok(`STORE 2 +FLAGS ($Important \Flagged)`)
	r.ok(`STORE 3 +FLAGS (\Seen \Deleted)`)
	for _, c := range []struct{ query, want string }{
		{`SEARCH FROM alice`, "1 4"},
		{`SEARCH OR FROM bob FROM carol`, "2 3"},
		{`SEARCH NOT FROM alice`, "2 3"},
		{`SEARCH HEADER Subject quarterly`, "1 4"},
		{`SEARCH HEADER X-Missing ""`, ""},
		{`SEARCH HEADER subject ""`, "1 2 3 4"},
		{`SEARCH CHARSET UTF-8 SUBJECT "café"`, "3"},
		{`SEARCH TO bob@example.net`, "1 3 4"},
		{`SEARCH BODY lunch`, "2"},
		{`SEARCH BODY "CAFÉ CRÈME"`, "3"},
		{`SEARCH BODY numbers`, "1"},
		{`SEARCH TEXT quarterly`, "1 4"},
		{`SEARCH TEXT attached`, "4"},
		{`SEARCH LARGER 3000`, "3"},
		{`SEARCH SMALLER 3000`, "1 2 4"},
		{`SEARCH SINCE 1-Feb-2026`, "2 3 4"},
		{`SEARCH BEFORE 1-Feb-2026`, "1"},
		{`SEARCH ON 15-Feb-2026`, "2"},
		{`SEARCH SENTBEFORE 10-Jan-2026`, "1"},
		{`SEARCH SENTON 20-Mar-2026`, "3"},
		{`SEARCH UID 2:3`, "2 3"},
		{`SEARCH UID 3:*`, "3 4"},
		{`SEARCH 1,4`, "1 4"},
		{`SEARCH 2:*`, "2 3 4"},
		{`SEARCH KEYWORD $important`, "2"},
		{`SEARCH UNKEYWORD $Important FLAGGED`, ""},
		{`SEARCH FLAGGED`, "2"},
		{`SEARCH UNSEEN`, "1 2 4"},
		{`SEARCH DELETED`, "3"},
		{`SEARCH UNDELETED SEEN`, ""},
		{`SEARCH NOT (OR FROM alice SMALLER 10)`, "2 3"},
		{`SEARCH OR (FROM alice BODY good) (BODY lunch)`, "1 2"},
		{`SEARCH ALL NOT NOT FROM carol`, "3"},
		{`SEARCH NEW`, "1 2 4"},
		{`UID SEARCH OLD`, ""},
	} {
		got := r.ok("%s", c.query)
		want := strings.TrimSpace("* SEARCH " + c.want)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %q", c.query, got, want)
		}
	}
	// ESEARCH return options.
	if got := r.ok(`UID SEARCH RETURN (MIN MAX COUNT) FROM alice`); len(got) != 1 || !strings.HasSuffix(got[0], "UID MIN 1 MAX 4 COUNT 2") {
		t.Errorf("ESEARCH: %q", got)
	}
	if got := r.ok(`SEARCH RETURN () FROM nobody`); len(got) != 1 || !strings.HasPrefix(got[0], "* ESEARCH (TAG ") || strings.Contains(got[0], "ALL") {
		t.Errorf("empty ESEARCH: %q", got)
	}
	// SEARCHRES: save, then use $.
	r.ok(`SEARCH RETURN (SAVE) FROM alice`)
	if got := r.ok(`FETCH $ (UID)`); fmt.Sprint(got) != "[* 1 FETCH (UID 1) * 4 FETCH (UID 4)]" {
		t.Errorf("FETCH $: %q", got)
	}
	if got := r.ok(`UID SEARCH $ SUBJECT "Re:"`); fmt.Sprint(got) != "[* SEARCH 4]" {
		t.Errorf("SEARCH $: %q", got)
	}
	// IMAP4rev2 clients get ESEARCH.
	r.ok("ENABLE IMAP4rev2")
	if got := r.ok(`SEARCH FROM alice`); len(got) != 1 || !strings.HasSuffix(got[0], " ALL 1,4") {
		t.Errorf("rev2 SEARCH: %q", got)
	}
}

// TestSearchHeaderFromAccountCache: a second SEARCH SUBJECT, even in a new
// session, is answered from the account's decoded metadata: it neither
// reads nor decrypts the stored metadata caches again (here made
// unreadable, which a read would log and rebuild).
func TestSearchHeaderFromAccountCache(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	e := newEnvLogging(t, logs)
	bob := e.addUser("bob@example.net")
	for _, m := range searchMessages() {
		e.deliver(bob, m, delivery{mailbox: "INBOX"})
	}
	search := func() []uint32 {
		c := e.login(bob)
		defer c.Close()
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		data, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "quarterly"}}}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return data.AllSeqNums()
	}
	first := search()
	if fmt.Sprint(first) != "[1 4]" {
		t.Fatalf("SEARCH SUBJECT quarterly: %v, want [1 4]", first)
	}
	// The background indexer may still be storing caches it built: let
	// it finish, so that nothing rewrites the spoiled ones.
	for ids := []int64{0}; len(ids) > 0; {
		var err error
		if ids, err = e.st.UnindexedMessages(context.Background(), bob.ID, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	e.srv.mu.Lock()
	a := e.srv.accounts[bob.ID]
	e.srv.mu.Unlock()
	a.work.Lock()
	a.work.Unlock()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "tollbridge.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE messages SET meta = X'00'`); err != nil {
		t.Fatal(err)
	}
	if again := search(); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("second search: %v, want %v", again, first)
	}
	if strings.Contains(logs.String(), "metadata cache unreadable") {
		t.Errorf("the second search read the stored metadata:\n%s", logs.String())
	}
}

// TestSearchTextFilterSkipsDecryption: SEARCH BODY does not decrypt the
// text of a message whose text filter rules the needle out. Here the
// other message's parts are gone, which a decryption would report.
func TestSearchTextFilterSkipsDecryption(t *testing.T) {
	t.Parallel()
	for _, appended := range []bool{false, true} {
		t.Run(fmt.Sprint("appended=", appended), func(t *testing.T) {
			t.Parallel()
			testTextFilterSkips(t, appended)
		})
	}
}

// testTextFilterSkips delivers (or APPENDs, whose caches list no text
// parts: the search renders such messages) two messages, then searches.
func testTextFilterSkips(t *testing.T, appended bool) {
	logs := &lockedBuffer{}
	e := newEnvLogging(t, logs)
	bob := e.addUser("bob@example.net")
	var other int64
	for i, body := range []string{"a haystack with the zebracorn in it", "nothing to see here"} {
		raw := message("alice@example.org", bob.Address, fmt.Sprint("msg ", i), body)
		if !appended {
			other = e.deliver(bob, raw, delivery{mailbox: "INBOX"}).MessageID
			continue
		}
		c := e.login(bob)
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		cmd.Write([]byte(raw))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		box, err := e.st.MailboxByName(context.Background(), bob.ID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := e.st.MessageRows(context.Background(), box.ID, []uint32{uint32(i + 1)}, store.RowFlags)
		if err != nil || len(rows) != 1 {
			t.Fatal(rows, err)
		}
		other = rows[0].MessageID
	}
	search := func() string {
		c := e.login(bob)
		defer c.Close()
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		data, err := c.Search(&imap.SearchCriteria{Body: []string{"ZebraCorn"}}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(data.AllSeqNums())
	}
	if got := search(); got != "[1]" {
		t.Fatalf("SEARCH BODY: %s, want [1]", got)
	}
	sealed, err := e.st.SealedMessage(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	for name, hash := range sealed.Blobs {
		if name != store.CatalogBlob {
			if err := e.st.Blobs().Remove(hash); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A new account (no linger) reads the filters from the sealed caches.
	e.srv.expireAll()
	if got := search(); got != "[1]" {
		t.Errorf("SEARCH BODY again: %s, want [1]", got)
	}
	if strings.Contains(logs.String(), "cannot be searched") {
		t.Errorf("the search decrypted a message its filter rules out:\n%s", logs.String())
	}
}
