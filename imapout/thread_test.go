package imapout

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestReferencesAnyInput: on random corpora full of duplicate ids,
// self-references, loops and shared subjects, REFERENCES and
// ORDEREDSUBJECT place every message exactly once, in trees without
// loops, with dummies only at the root and only over two or more
// children.
func TestReferencesAnyInput(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	id := func() string { return fmt.Sprintf("m%d@x", rng.IntN(40)) }
	for round := range 50 {
		items := make([]*sortItem, 1+rng.IntN(120))
		for i := range items {
			env := &imap.Envelope{MessageID: id(), Subject: []string{"a", "Re: a", "b", "[l] Fwd: b", ""}[rng.IntN(5)],
				Date: time.Unix(int64(rng.IntN(1000)), 0)}
			if rng.IntN(3) == 0 {
				env.MessageID = ""
			}
			md := &meta{Envelope: env}
			for range rng.IntN(5) {
				md.References = append(md.References, id())
			}
			if rng.IntN(4) == 0 {
				env.InReplyTo = []string{id()}
			}
			items[i] = &sortItem{seq: uint32(i + 1), uid: uint32(i + 1), md: md}
		}
		for alg, roots := range map[string][]*container{"references": references(items), "orderedsubject": orderedSubject(slices.Clone(items))} {
			seen := map[uint32]int{}
			var walk func(c *container, depth int, root bool)
			walk = func(c *container, depth int, root bool) {
				if depth > len(items)+1 {
					t.Fatalf("round %d %s: a loop", round, alg)
				}
				if c.item == nil && (!root || len(c.children) < 2) {
					t.Errorf("round %d %s: a dummy with %d children (root %v)", round, alg, len(c.children), root)
				}
				if c.item != nil {
					seen[c.item.seq]++
				}
				for _, ch := range c.children {
					walk(ch, depth+1, false)
				}
			}
			for _, c := range roots {
				walk(c, 0, true)
			}
			for _, it := range items {
				if seen[it.seq] != 1 {
					t.Fatalf("round %d %s: message %d placed %d times", round, alg, it.seq, seen[it.seq])
				}
			}
		}
	}
}
