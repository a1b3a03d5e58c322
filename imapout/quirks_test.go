package imapout

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"tollbridge/store"
)

// Apple Mail saves a draft again and again: APPEND the new version, flag
// the old one \Deleted, UID EXPUNGE it.
func TestQuirkAppleMailDraftResave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	r := e.rawLogin(bob)
	r.ok("SELECT Drafts")
	var last string
	for i := 1; i <= 3; i++ {
		draft := crlf(fmt.Sprintf("From: bob@example.net\nTo: alice@example.org\nBcc: hidden@example.org\nSubject: draft\nX-Uniform-Type-Identifier: com.apple.mail-draft\n\nversion %d\n", i))
		r.send(`APPEND Drafts (\Seen \Draft) {%d+}`+"\r\n%s", len(draft), draft)
		r.expect(fmt.Sprintf(`^T\d+ OK \[APPENDUID \d+ %d\]`, i))
		if i > 1 {
			r.ok(`UID STORE %d +FLAGS.SILENT (\Deleted)`, i-1)
			r.ok(`UID EXPUNGE %d`, i-1)
		}
		last = draft
	}
	got := r.ok("UID FETCH 1:* (UID BODY.PEEK[])")
	if len(got) != 1 || got[0] != fmt.Sprintf("* 1 FETCH (UID 3 BODY[] {%d}\r\n%s)", len(last), last) {
		t.Errorf("drafts: %q", got)
	}
}

// Outlook moves without MOVE: COPY, STORE \Deleted, EXPUNGE.
func TestQuirkOutlookMoveWithoutMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 3)
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	r.ok("UID COPY 2 Trash")
	r.ok(`UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	if got := r.ok("EXPUNGE"); fmt.Sprint(got) != "[* 2 EXPUNGE * 2 RECENT]" {
		t.Errorf("EXPUNGE: %q", got)
	}
	if got := r.ok(`STATUS Trash (MESSAGES)`); fmt.Sprint(got) != `[* STATUS "Trash" (MESSAGES 1)]` {
		t.Errorf("Trash: %q", got)
	}
}

// Thunderbird opens several connections at once, while mail arrives.
func TestQuirkThunderbirdParallelConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	alice := e.remoteSender("alice@example.org")
	for i := 0; i < 5; i++ {
		e.deliver(bob, message("alice@example.org", bob.Address, fmt.Sprintf("waiting %d", i), "x"), delivery{signer: alice})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 5; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			e.deliver(bob, message("alice@example.org", bob.Address, "during login", "x"), delivery{signer: alice})
		}()
		go func() {
			defer wg.Done()
			c := e.login(bob)
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				errs <- err
				return
			}
			if _, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true, Flags: true}).Collect(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c := e.login(bob)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 10 {
		t.Errorf("INBOX after parallel logins: %v %v", st, err)
	}
	res, err := c.Select("INBOX", nil).Wait()
	if err != nil || res.NumMessages != 10 {
		t.Errorf("SELECT: %v %v", res, err)
	}
}

// A message filed without its metadata cache (by a path that had no
// private key) still has an exact RFC822.SIZE.
func TestColdSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	r := e.rawLogin(bob)
	msg := message("x@example.com", bob.Address, "cold", strings.Repeat("line\r\n", 50))
	e.deliver(bob, msg, delivery{mailbox: "INBOX", source: store.SourceDSN, trace: "Received: by " + hostname + "\r\n"})
	r.ok("SELECT INBOX")
	want := len("Received: by "+hostname+"\r\n") + len("Authentication-Results: "+hostname+"; tollbridge=none\r\n") + len(msg)
	if got := r.ok("FETCH 1 RFC822.SIZE"); fmt.Sprint(got) != fmt.Sprintf("[* 1 FETCH (RFC822.SIZE %d)]", want) {
		t.Errorf("RFC822.SIZE: %q, want %d", got, want)
	}
	if got := r.ok("SEARCH LARGER %d", want-1); fmt.Sprint(got) != "[* SEARCH 1]" {
		t.Errorf("LARGER: %q", got)
	}
}
