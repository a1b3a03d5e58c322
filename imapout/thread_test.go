package imapout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// threadCorpus fills INBOX with RFC 5256's tricky cases: a reply by
// In-Reply-To and one by References, a parent that is missing (for one
// child, then two), a duplicate Message-ID, a References loop, a reply
// found by subject only ("[list] Re:"), and a second non-reply with the
// same subject. A first message is expunged so that UIDs are sequence
// numbers plus one.
func threadCorpus(t *testing.T) (*env, *raw) {
	e, _, r := rfcEnv(t)
	r.rawAppend("INBOX", crlf("Subject: gone\n\nx\n"))
	msgs := []string{
		"Message-ID: <a@x>\nSubject: Meeting",
		"Message-ID: <b@x>\nIn-Reply-To: <a@x>\nSubject: Re: Meeting",
		"Message-ID: <c@x>\nReferences: <a@x>\n <b@x>\nSubject: Re: Meeting",
		"Message-ID: <d@x>\nReferences: <missing@x>\nSubject: Lost parent",
		"Message-ID: <e@x>\nReferences: <missing@x>\nSubject: Re: Lost parent",
		"Message-ID: <a@x>\nSubject: Dupe",
		"Message-ID: <f@x>\nReferences: <g@x>\nSubject: Loop one",
		"Message-ID: <g@x>\nReferences: <f@x>\nSubject: Loop two",
		"Message-ID: <h@x>\nSubject: [list] Re: Meeting",
		"Subject: meeting",
	}
	for i, m := range msgs {
		hour := i + 1
		if i == 5 {
			hour = 0 // the duplicate is the oldest
		}
		r.rawAppend("INBOX", crlf(fmt.Sprintf("Date: Tue, 1 Dec 2026 %02d:00:00 +0000\n%s\n\nbody\n", hour, m)))
	}
	r.ok("SELECT INBOX")
	r.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	r.ok("EXPUNGE")
	return e, r
}

// TestThread: THREAD=REFERENCES runs the whole algorithm of RFC 5256 §4
// (dummies kept at the root only with two children, the first owner of
// a Message-ID, no loops, threads merged by base subject);
// THREAD=ORDEREDSUBJECT groups by base subject; UID THREAD gives UIDs;
// search criteria choose the messages.
func TestThread(t *testing.T) {
	t.Parallel()
	_, r := threadCorpus(t)
	for cmd, want := range map[string]string{
		"THREAD REFERENCES UTF-8 ALL":                      "* THREAD (6)((1 (2 3)(9))(10))((4)(5))(8 7)",
		"THREAD ORDEREDSUBJECT UTF-8 ALL":                  "* THREAD (6)(1 (2)(3)(9)(10))(4 5)(7)(8)",
		"UID THREAD REFERENCES UTF-8 ALL":                  "* THREAD (7)((2 (3 4)(10))(11))((5)(6))(9 8)",
		"UID THREAD ORDEREDSUBJECT US-ASCII ALL":           "* THREAD (7)(2 (3)(4)(10)(11))(5 6)(8)(9)",
		"THREAD REFERENCES UTF-8 NOT SUBJECT meeting":      "* THREAD (6)((4)(5))(8 7)",
		"THREAD REFERENCES UTF-8 1:3":                      "* THREAD (1 2 3)",
		"THREAD references UTF-8 2:5":                      "* THREAD (2 3)((4)(5))",
		"THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing-here": "* THREAD",
	} {
		if got := r.ok("%s", cmd); fmt.Sprint(got) != "["+want+"]" {
			t.Errorf("%s:\n got  %q\n want %s", cmd, got, want)
		}
	}
	if _, status := r.do("THREAD REFS UTF-8 ALL"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("unknown algorithm: %s", status)
	}
	if _, status := r.do("THREAD REFERENCES KOI8-R ALL"); !strings.HasPrefix(status, "NO [BADCHARSET]") {
		t.Errorf("unknown charset: %s", status)
	}
}

// TestThreadWithClient: go-imap's client threads through the server.
func TestThreadWithClient(t *testing.T) {
	t.Parallel()
	e, _ := threadCorpus(t)
	u, _ := e.st.UserByAddress(t.Context(), "rfc@example.org")
	c := e.login(u)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.UIDThread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences,
		SearchCriteria: &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "Loop"}}}}).Wait()
	if err != nil || fmt.Sprint(got) != "[{[9 8] []}]" {
		t.Errorf("UID THREAD: %v %v", got, err)
	}
}
