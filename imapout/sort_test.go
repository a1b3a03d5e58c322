package imapout

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// appendAt APPENDs msg to INBOX with an internal date.
func (r *raw) appendAt(date, msg string) {
	r.t.Helper()
	r.ok("APPEND INBOX %q {%d+}\r\n%s", date, len(msg), msg)
}

// sortCorpus fills INBOX with four messages whose every sort key orders
// them differently; a first message is expunged so that UIDs are
// sequence numbers plus one.
func sortCorpus(t *testing.T) *raw {
	_, _, r := rfcEnv(t)
	r.appendAt("01-Nov-2026 00:00:00 +0000", crlf("Subject: gone\n\nx\n"))
	msgs := []struct{ internal, header, body string }{
		{"03-Dec-2026 00:00:00 +0000", "Date: Mon, 7 Dec 2026 10:00:00 +0000\nFrom: Zed <zed@x.org>\nTo: Zoe <bob@y.org>\nSubject: Re: [list] Beta\n",
			strings.Repeat("long line\n", 200)},
		{"01-Dec-2026 00:00:00 +0000", "Date: Mon, 7 Dec 2026 09:00:00 -0200\nFrom: alice@x.org\nTo: \"Carl\" <carl@y.org>\nCc: dave@z.org\nSubject: alpha\n",
			"short\n"},
		{"02-Dec-2026 00:00:00 +0000", "From: Bob <bob@x.org>\nTo: amy@y.org\nCc: \"Al\" <al@z.org>\nSubject: [fwd: Alpha (fwd)]\n",
			strings.Repeat("medium\n", 70)},
		{"04-Dec-2026 00:00:00 +0000", "Date: Sun, 6 Dec 2026 23:00:00 -0300\nFrom: =?utf-8?q?=C3=89mile?= <emile@x.org>\nTo: undisclosed:;\nSubject: RE: re: gamma\n",
			strings.Repeat("rather long\n", 80)},
	}
	for _, m := range msgs {
		r.appendAt(m.internal, crlf(m.header+"\n"+m.body))
	}
	r.ok("SELECT INBOX")
	r.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	r.ok("EXPUNGE")
	return r
}

// TestSortKeys: SORT and UID SORT order by each key of RFC 5256 and
// RFC 5957, REVERSE turns one key around, ties go in sequence order, and
// the search criteria choose the messages.
func TestSortKeys(t *testing.T) {
	t.Parallel()
	r := sortCorpus(t)
	for cmd, want := range map[string]string{
		"SORT (ARRIVAL) UTF-8 ALL":                              "* SORT 2 3 1 4",
		"SORT (DATE) UTF-8 ALL":                                 "* SORT 3 4 1 2",
		"SORT (FROM) UTF-8 ALL":                                 "* SORT 2 3 4 1",
		"SORT (DISPLAYFROM) UTF-8 ALL":                          "* SORT 2 3 1 4",
		"SORT (TO) UTF-8 ALL":                                   "* SORT 4 3 1 2",
		"SORT (DISPLAYTO) UTF-8 ALL":                            "* SORT 4 3 2 1",
		"SORT (CC) US-ASCII ALL":                                "* SORT 1 4 3 2",
		"SORT (SUBJECT) UTF-8 ALL":                              "* SORT 2 3 1 4",
		"SORT (SIZE) UTF-8 ALL":                                 "* SORT 2 3 4 1",
		"SORT (REVERSE SIZE) UTF-8 ALL":                         "* SORT 1 4 3 2",
		"SORT (SUBJECT REVERSE ARRIVAL) UTF-8 ALL":              "* SORT 3 2 1 4",
		"SORT (reverse subject date) utf-8 ALL":                 "* SORT 4 1 3 2",
		"SORT (DATE) UTF-8 FROM x.org NOT SUBJECT gamma":        "* SORT 3 1 2",
		"SORT (DATE) UTF-8 SUBJECT nothing-has-this":            "* SORT",
		"UID SORT (ARRIVAL) UTF-8 ALL":                          "* SORT 3 4 2 5",
		"UID SORT (DATE) UTF-8 UID 3:5":                         "* SORT 4 5 3",
		"SORT (SIZE) UTF-8 OR TO amy@y.org CC dave@z.org":       "* SORT 2 3",
		"SORT (REVERSE DISPLAYFROM REVERSE DATE) UTF-8 1:3 ALL": "* SORT 1 3 2",
	} {
		if got := r.ok("%s", cmd); fmt.Sprint(got) != "["+want+"]" {
			t.Errorf("%s: %q, want %s", cmd, got, want)
		}
	}
	if _, status := r.do("SORT (DATE) KOI8-R ALL"); !strings.HasPrefix(status, "NO [BADCHARSET]") {
		t.Errorf("unknown charset: %s", status)
	}
	for _, bad := range []string{"SORT (NAME) UTF-8 ALL", "SORT () UTF-8 ALL", "SORT (DATE) UTF-8", "SORT DATE UTF-8 ALL"} {
		if _, status := r.do("%s", bad); !strings.HasPrefix(status, "BAD") {
			t.Errorf("%s: %s", bad, status)
		}
	}
}

// TestESort: SORT RETURN answers ESEARCH (RFC 5267 §3.2): MIN and MAX
// are the first and last in sort order, ALL lists them in sort order.
func TestESort(t *testing.T) {
	t.Parallel()
	r := sortCorpus(t)
	for cmd, want := range map[string]string{
		"SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL":                  `* ESEARCH (TAG "%s") MIN 3 MAX 2 COUNT 4 ALL 3:4,1:2`,
		"SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL":                        `* ESEARCH (TAG "%s") ALL 4,1,3,2`,
		"UID SORT RETURN (COUNT MIN) (SIZE) UTF-8 ALL":                      `* ESEARCH (TAG "%s") UID MIN 3 COUNT 4`,
		"SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 SUBJECT nothing-has-this": `* ESEARCH (TAG "%s") COUNT 0`,
	} {
		tag := fmt.Sprintf("T%d", r.tag+1)
		if got := r.ok("%s", cmd); fmt.Sprint(got) != "["+fmt.Sprintf(want, tag)+"]" {
			t.Errorf("%s: %q, want %s", cmd, got, fmt.Sprintf(want, tag))
		}
	}
	if got := r.ok("SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT alpha"); len(got) != 0 {
		t.Errorf("SORT RETURN (SAVE): %q", got)
	}
	if got := r.ok("UID SEARCH $"); fmt.Sprint(got) != "[* SEARCH 3 4]" {
		t.Errorf("SEARCH $ after SORT RETURN (SAVE): %q", got)
	}
}

// TestSortCapabilities: SORT, SORT=DISPLAY, ESORT and the THREAD
// algorithms are advertised once logged in; ID always.
func TestSortCapabilities(t *testing.T) {
	t.Parallel()
	e, u, r := rfcEnv(t)
	got := strings.Fields(r.ok("CAPABILITY")[0])
	for _, c := range []string{"SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ID"} {
		if !slices.Contains(got, c) {
			t.Errorf("no %s in %q", c, got)
		}
	}
	before := strings.Fields(e.raw().ok("CAPABILITY")[0])
	if !slices.Contains(before, "ID") || slices.Contains(before, "SORT") {
		t.Errorf("before login: %q", before)
	}
	_ = u
}

// TestSortWithClient: go-imap's client sorts through the server.
func TestSortWithClient(t *testing.T) {
	t.Parallel()
	e, u, r := rfcEnv(t)
	for i, subj := range []string{"c", "a", "Re: b"} {
		r.rawAppend("INBOX", crlf(fmt.Sprintf("From: f%d@x.org\nSubject: %s\n\nbody\n", i, subj)))
	}
	c := e.login(u)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Sort(&imapclient.SortOptions{SearchCriteria: &imap.SearchCriteria{},
		SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeySubject}}}).Wait()
	if err != nil || fmt.Sprint(got) != "[2 3 1]" {
		t.Errorf("SORT SUBJECT: %v %v", got, err)
	}
	got, err = c.UIDSort(&imapclient.SortOptions{SearchCriteria: &imap.SearchCriteria{},
		SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeyFrom, Reverse: true}}}).Wait()
	if err != nil || fmt.Sprint(got) != "[3 2 1]" {
		t.Errorf("UID SORT REVERSE FROM: %v %v", got, err)
	}
}

// BenchmarkSortThread: SORT and THREAD over the 10,000 messages of
// bigMailbox, metadata caches warm (each of its 100 Message-IDs is on
// 100 messages, a worst case for REFERENCES' duplicates and subject
// merging).
func BenchmarkSortThread(b *testing.B) {
	e, u := bigMailbox(b)
	bc := e.benchLogin(b, u)
	waitIndexed(b, e, u)
	bc.do(b, "SELECT INBOX")
	for _, cmd := range []string{
		"UID FETCH 1:* (ENVELOPE)", // for comparison
		"UID SORT (REVERSE DATE) UTF-8 ALL",
		"UID SORT (SUBJECT FROM) UTF-8 ALL",
		"UID SORT RETURN (COUNT MIN) (DISPLAYFROM) UTF-8 ALL",
		"UID THREAD ORDEREDSUBJECT UTF-8 ALL",
		"UID THREAD REFERENCES UTF-8 ALL",
	} {
		b.Run(strings.ReplaceAll(cmd, " ", "_"), func(b *testing.B) {
			peakHeap(b, func() {
				for i := 0; i < b.N; i++ {
					bc.do(b, cmd)
				}
			})
		})
	}
}
