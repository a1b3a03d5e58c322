package imapout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/intake"
	"tollbridge/keyring"
	"tollbridge/store"
)

// porter unlocks u's key with its password and returns a Porter.
func (e *env) porter(t testing.TB, u *store.User) *Porter {
	t.Helper()
	ent, err := keyring.Unlock(u.PrivateKey, []byte(password(u.Address)))
	if err != nil {
		t.Fatal(err)
	}
	dk, err := keyring.DataKey(ent)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.srv.Porter(u, &keyring.Unlocked{Address: u.Address, Entity: ent, DataKey: dk})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seen is a message as an IMAP client sees it.
type seen struct {
	body  string
	flags string // sorted, lowercased, \Recent left out
	date  time.Time
}

// snapshot fetches every message of every mailbox of the logged-in client.
func snapshot(t testing.TB, c *imapclient.Client) map[string][]seen {
	t.Helper()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]seen{}
	whole := &imap.FetchItemBodySection{Peek: true}
	for _, b := range boxes {
		sel, err := c.Select(b.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		out[b.Mailbox] = []seen{}
		if sel.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
		for _, m := range msgs {
			var fl []string
			for _, f := range m.Flags {
				if f != "\\Recent" {
					fl = append(fl, strings.ToLower(string(f)))
				}
			}
			sort.Strings(fl)
			out[b.Mailbox] = append(out[b.Mailbox], seen{body: string(m.FindBodySection(whole)), flags: strings.Join(fl, " "), date: m.InternalDate})
		}
	}
	return out
}

// flagSets are given to the test messages in turn.
var flagSets = [][]string{
	nil,
	{`\Seen`},
	{`\Seen`, `\Answered`},
	{`\Flagged`, "$label1"},
	{`\Seen`, `\Deleted`},
	{`\Draft`},
	{`\Seen`, "$Forwarded", "Work"},
	{"$Junk", "NonJunk", `\Answered`, `\Flagged`, `\Draft`, `\Seen`, `\Deleted`},
}

// fill gives u n messages spread over several mailboxes, with flags and
// dates, and returns the mailboxes.
func fill(t testing.TB, e *env, u *store.User, n int) {
	t.Helper()
	ctx := context.Background()
	boxes := []string{"INBOX", "Sent", "Archive/2026", "a.b", "Archive"}
	for _, b := range boxes {
		if _, err := e.st.CreateMailbox(ctx, u.ID, b, ""); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
	}
	bodies := []string{
		"",
		strings.Replace(multipartMessage, "Bcc: secret@example.net\r\n", "", 1),
		crlf("From: alice@example.org\nTo: bob@example.net\nSubject: no final newline\n\nlast line"),
		crlf("From: alice@example.org\nTo: bob@example.net\nSubject: =?utf-8?q?caf=C3=A9?=\n\nFrom the start of a line\n>From quoted\n.\n"),
	}
	for i := 0; i < n; i++ {
		box := boxes[i%len(boxes)]
		raw := bodies[i%len(bodies)]
		if raw == "" {
			raw = message("Alice <alice@example.org>", u.Address, fmt.Sprintf("message %d", i), strings.Repeat("line of text\r\n", i%50))
		}
		d := e.deliver(u, raw, delivery{mailbox: box, received: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)})
		if fl := flagSets[i%len(flagSets)]; fl != nil {
			if _, _, err := e.st.StoreFlags(ctx, d.MailboxID, []uint32{d.UID}, store.FlagsSet, fl); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var maildirFileName = regexp.MustCompile(`^\d+\.M\d+P\d+Q\d+\.[^/:]+,S=\d+:2,(D?F?P?R?S?T?)([a-z]*)$`)

// TestExportImportRoundTrip: 1,000 messages exported to Maildirs and
// imported for another user read back byte for byte with every flag and
// date, through a real IMAP client; an export of the import is the same
// files; importing again stores nothing twice.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Seal as bridge user import does: the bridge's Sealer, one sync per group.
	e.srv.cfg.Seal = (&intake.Sealer{Store: e.st, Deferred: true}).ForUser
	bob := e.addUser("bob@example.net")
	carol := e.addUser("carol@example.net")
	// 200 messages: four import groups of 64 (the last one short), every
	// mailbox and body kind of fill many times over. Speed at scale is
	// BenchmarkExport/BenchmarkImport's (port_bench_test.go), not this.
	n := 200
	fill(t, e, bob, n)
	before := snapshot(t, e.login(bob))

	dir := filepath.Join(t.TempDir(), "export")
	ctx := context.Background()
	st, err := e.porter(t, bob).Export(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != n || len(st.Unreadable) > 0 || len(st.Dropped) > 0 {
		t.Fatalf("export: %+v", st)
	}
	checkMaildirs(t, dir, before)

	ist, err := e.porter(t, carol).Import(ctx, dir, ImportOptions{Group: 64})
	if err != nil || ist.Messages != n || len(ist.Failed) > 0 {
		t.Fatalf("import: %+v %v", ist, err)
	}
	after := snapshot(t, e.login(carol))
	compareSnapshots(t, before, after)

	again, err := e.porter(t, carol).Import(ctx, dir, ImportOptions{})
	if err != nil || again.Messages != 0 || again.Skipped != n {
		t.Fatalf("import again: %+v %v", again, err)
	}

	dir2 := filepath.Join(t.TempDir(), "export")
	if _, err := e.porter(t, carol).Export(ctx, dir2); err != nil {
		t.Fatal(err)
	}
	if a, b := maildirContents(t, dir), maildirContents(t, dir2); !slices.Equal(a, b) {
		t.Errorf("export of the import differs: %d vs %d files", len(a), len(b))
	}
}

// checkMaildirs checks the layout and names of an export.
func checkMaildirs(t *testing.T, dir string, want map[string][]seen) {
	t.Helper()
	for box, msgs := range want {
		md := filepath.Join(dir, maildirName(box))
		for _, sub := range []string{"cur", "new", "tmp"} {
			if _, err := os.Stat(filepath.Join(md, sub)); err != nil {
				t.Fatalf("%s: %v", box, err)
			}
		}
		entries, _ := os.ReadDir(filepath.Join(md, "cur"))
		if len(entries) != len(msgs) {
			t.Errorf("%s: %d files, want %d", box, len(entries), len(msgs))
		}
		for _, en := range entries {
			if !maildirFileName.MatchString(en.Name()) {
				t.Errorf("%s: file name %q", box, en.Name())
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "Archive.2026", "cur")); err != nil {
		t.Errorf("nested mailbox: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a%2Eb", "cur")); err != nil {
		t.Errorf("escaped mailbox name: %v", err)
	}
	kw, err := os.ReadFile(filepath.Join(dir, "INBOX", "dovecot-keywords"))
	if err != nil || !strings.Contains(string(kw), "0 ") {
		t.Errorf("dovecot-keywords: %q %v", kw, err)
	}
}

func compareSnapshots(t *testing.T, before, after map[string][]seen) {
	t.Helper()
	for box, want := range before {
		got := after[box]
		if len(got) != len(want) {
			t.Errorf("%s: %d messages, want %d", box, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i].body != want[i].body {
				t.Errorf("%s message %d: body differs:\n%q\nwant\n%q", box, i+1, got[i].body, want[i].body)
			}
			if got[i].flags != want[i].flags {
				t.Errorf("%s message %d: flags %q, want %q", box, i+1, got[i].flags, want[i].flags)
			}
			if !got[i].date.Equal(want[i].date) {
				t.Errorf("%s message %d: date %v, want %v", box, i+1, got[i].date, want[i].date)
			}
		}
	}
}

// maildirContents lists "mailbox/flags/content" of every exported file,
// in order.
func maildirContents(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(p)) != "cur" {
			return err
		}
		b, err := os.ReadFile(p)
		_, info, _ := strings.Cut(d.Name(), ":")
		out = append(out, filepath.Base(filepath.Dir(filepath.Dir(p)))+"/"+info+"/"+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestMaildirNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"INBOX", "Archive/2026", "a.b", "50%", "~home", "x/~y", "Ünïcode/日本", "..", "a/./b"} {
		dir := maildirName(name)
		if strings.ContainsAny(dir, "/") || strings.HasPrefix(dir, ".") || dir == "" {
			t.Errorf("%q: unsafe directory name %q", name, dir)
		}
		if !validName(name) {
			continue
		}
		back, err := mailboxFromMaildir(dir)
		if err != nil || back != name {
			t.Errorf("%q -> %q -> %q, %v", name, dir, back, err)
		}
	}
	info, dropped := maildirInfo([]string{`\Seen`, `\Deleted`, `\Draft`, "$Forwarded", `\Answered`, `\Flagged`, "work", "other", `\Recent`}, map[string]byte{"work": 'b'})
	if info != ":2,DFPRSTb" || !slices.Equal(dropped, []string{"other"}) {
		t.Errorf("info %q, dropped %v", info, dropped)
	}
	if !naturalLess("1700000000.M1P2Q9.h", "1700000000.M1P2Q10.h") || naturalLess("1700000001.x", "1700000000.x") {
		t.Error("natural order")
	}
}

// mboxrd is an mbox file as mutt and Thunderbird write it: LF line ends,
// flag fields, a blank line after each message, mboxrd quoting.
const mboxrd = `From alice@example.org Mon Nov 23 10:00:00 2026
Return-Path: <alice@example.org>
From: alice@example.org
To: bob@example.net
Subject: first
Status: RO
X-Status: AF
X-Keywords: Work $label1

Hello
>From the start of a line
>>From quoted once in the original
From: not a separator, no space after From

From bob@example.net Tue Nov 24 11:30:00 2026
From: bob@example.net
To: alice@example.org
Subject: second
X-Mozilla-Status: 1003
X-Mozilla-Status2: 00000000

Body without status

From someone@example.com  Wed Nov 25 09:15:07 +0100 2026
From: someone@example.com
Subject: third, unread and last
Status: O

last line
`

// TestImportMbox: messages, unescaped >From lines, flags from status
// fields (removed), dates from From lines, CRLF line ends.
func TestImportMbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	path := filepath.Join(t.TempDir(), "mbox")
	writeFile(t, path, mboxrd)
	st, err := e.porter(t, bob).Import(context.Background(), path, ImportOptions{Mailbox: "Old/Mail"})
	if err != nil || st.Messages != 3 || len(st.Failed) > 0 {
		t.Fatalf("import: %+v %v", st, err)
	}
	got := snapshot(t, e.login(bob))["Old/Mail"]
	want := []seen{
		{body: crlf("Return-Path: <alice@example.org>\nFrom: alice@example.org\nTo: bob@example.net\nSubject: first\n\nHello\nFrom the start of a line\n>From quoted once in the original\nFrom: not a separator, no space after From\n"),
			flags: `$label1 \answered \flagged \seen work`, date: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)},
		{body: crlf("From: bob@example.net\nTo: alice@example.org\nSubject: second\n\nBody without status\n"),
			flags: `$forwarded \answered \seen`, date: time.Date(2026, 11, 24, 11, 30, 0, 0, time.UTC)},
		{body: crlf("From: someone@example.com\nSubject: third, unread and last\n\nlast line\n"),
			date: time.Date(2026, 11, 25, 8, 15, 7, 0, time.UTC)},
	}
	compareSnapshots(t, map[string][]seen{"Old/Mail": want}, map[string][]seen{"Old/Mail": got})
}

// TestImportDovecotMaildir reads a Maildir++ tree written by hand as
// Dovecot and mutt write them (testdata/maildir): LF line ends, flags
// with keyword letters from dovecot-keywords, new/ without info, folders
// as .Name and .Parent.Child, a stray file in tmp/ that is not mail yet.
func TestImportDovecotMaildir(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := os.CopyFS(dir, os.DirFS("testdata/maildir")); err != nil {
		t.Fatal(err)
	}
	// Git keeps no mtimes: give each file the delivery time of its name.
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var sec int64
		if _, err := fmt.Sscanf(d.Name(), "%d.", &sec); err != nil {
			return nil
		}
		return os.Chtimes(p, time.Unix(sec, 0), time.Unix(sec, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"tmp", ".Sent/tmp", ".Lists.go-nuts/tmp"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	writeFile(t, filepath.Join(dir, "tmp", "1764000000.M1P1.host"), "From: half written")
	st, err := e.porter(t, bob).Import(context.Background(), dir, ImportOptions{})
	if err != nil || st.Messages != 5 || len(st.Failed) > 0 {
		t.Fatalf("import: %+v %v", st, err)
	}
	snap := snapshot(t, e.login(bob))
	inbox, sent, lists := snap["INBOX"], snap["Sent"], snap["Lists/go-nuts"]
	if len(inbox) != 3 || len(sent) != 1 || len(lists) != 1 {
		t.Fatalf("INBOX %d, Sent %d, Lists/go-nuts %d messages", len(inbox), len(sent), len(lists))
	}
	wantInbox := []struct{ subject, flags string }{
		{"Subject: oldest, replied and tagged", `$label1 \answered \seen work`},
		{"Subject: flagged draft", `$forwarded \draft \flagged \seen`},
		{"Subject: new mail", ""},
	}
	for i, w := range wantInbox {
		if !strings.Contains(inbox[i].body, w.subject+"\r\n") || inbox[i].flags != w.flags || strings.Contains(strings.ReplaceAll(inbox[i].body, "\r\n", ""), "\n") {
			t.Errorf("INBOX %d: flags %q, body %q", i+1, inbox[i].flags, inbox[i].body)
		}
	}
	if want := time.Unix(1763900000, 0); !inbox[0].date.Equal(want) {
		t.Errorf("INBOX 1: date %v, want %v", inbox[0].date, want)
	}
	if sent[0].flags != `\seen` || lists[0].flags != `\deleted \seen` {
		t.Errorf("Sent %q, Lists/go-nuts %q", sent[0].flags, lists[0].flags)
	}
}

// TestImportRefusesWhole: a message over the size limit is refused and
// named, the others are stored, and nothing of it is.
func TestImportRefusesWhole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Options) { c.AppendLimit = 2000 })
	bob := e.addUser("bob@example.net")
	path := filepath.Join(t.TempDir(), "mbox")
	big := "From a@example.org Mon Nov 23 10:00:00 2026\nFrom: a@example.org\nSubject: big\n\n" + strings.Repeat("x", 3000) + "\n\n"
	writeFile(t, path, big+"From a@example.org Mon Nov 23 10:00:00 2026\nFrom: a@example.org\nSubject: small\n\nok\n")
	st, err := e.porter(t, bob).Import(context.Background(), path, ImportOptions{})
	if err != nil || st.Messages != 1 || len(st.Failed) != 1 || !strings.Contains(st.Failed[0], "message 1: ") {
		t.Fatalf("import: %+v %v", st, err)
	}
	inbox := snapshot(t, e.login(bob))["INBOX"]
	if len(inbox) != 1 || !strings.Contains(inbox[0].body, "Subject: small") {
		t.Errorf("INBOX: %+v", inbox)
	}
	if _, err := e.porter(t, bob).Import(context.Background(), t.TempDir(), ImportOptions{}); err == nil || !strings.Contains(err.Error(), "neither an mbox") {
		t.Errorf("empty directory: %v", err)
	}
}
