package imapout

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"tollbridge/store"
)

// TestResultsFilter checks which top-level Authentication-Results fields
// a rendered message loses (RFC 8601 §5, docs/protocol.md §3.7) and that everything
// else passes byte for byte, however Join cuts its writes.
func TestResultsFilter(t *testing.T) {
	t.Parallel()
	const tail = "From: a@example.org\r\nSubject: s\r\n\r\nbody\r\nAuthentication-Results: mx.test; tollbridge=pass\r\n"
	const kept = "From: a@example.org\r\nSubject: s\r\n\r\nbody\r\nAuthentication-Results: mx.test; tollbridge=pass\r\n"
	bigComment := "Authentication-Results: (" + strings.Repeat("x", maxResultsField) + ") mx.test; tollbridge=pass\r\n"
	bigForeign := "Authentication-Results: other.example; dkim=pass (" + strings.Repeat("y", 2*maxResultsField) + ")\r\n"
	cases := []struct{ name, in, want string }{
		{"forged", "Authentication-Results: mx.test; tollbridge=pass\r\n" + tail, kept},
		{"forged last", "From: a@example.org\r\nAuthentication-Results: mx.test; tollbridge=pass\r\n\r\nbody\r\n", "From: a@example.org\r\n\r\nbody\r\n"},
		{"folded", "Authentication-Results:\r\n mx.test;\r\n\ttollbridge=pass\r\n" + tail, kept},
		{"case", "AUTHENTICATION-results: MX.Test; tollbridge=pass\r\n" + tail, kept},
		{"version", "Authentication-Results: mx.test 1; tollbridge=pass\r\n" + tail, kept},
		{"no space", "Authentication-Results:mx.test;tollbridge=pass\r\n" + tail, kept},
		{"comment first", "Authentication-Results: (forged (nested) \\) ) mx.test; tollbridge=pass\r\n" + tail, kept},
		{"quoted", "Authentication-Results: \"mx.test\"; tollbridge=pass\r\n" + tail, kept},
		{"space before colon", "Authentication-Results \t: mx.test; tollbridge=pass\r\n" + tail, kept},
		{"several", "Authentication-Results: mx.test; a=pass\r\nX-A: 1\r\nAuthentication-Results: mx.test; b=pass\r\n" + tail, "X-A: 1\r\n" + kept},
		{"LF only", "Authentication-Results: mx.test; tollbridge=pass\nFrom: a\n\nbody\nAuthentication-Results: mx.test; x\n", "From: a\n\nbody\nAuthentication-Results: mx.test; x\n"},
		{"at the end, no line break", "From: a\r\nAuthentication-Results: mx.test; tollbridge=pass", "From: a\r\n"},
		{"leading continuation", " ; tollbridge=pass\r\n\t(more)\r\n" + tail, kept},
		{"giant comment", bigComment + tail, kept},
		{"white space before colon", "Authentication-Results" + strings.Repeat(" ", 300) + ": mx.test; tollbridge=pass\r\n" + tail, kept},
		{"endless white space", "Authentication-Results" + strings.Repeat("\t", maxResultsField+1) + ": mx.test; x\r\n" + tail, kept},

		{"foreign", "Authentication-Results: mx.example.com; spf=pass\r\n" + tail, "Authentication-Results: mx.example.com; spf=pass\r\n" + kept},
		{"longer name", "Authentication-Results: mx.test.evil.example; tollbridge=pass\r\n" + tail, "Authentication-Results: mx.test.evil.example; tollbridge=pass\r\n" + kept},
		{"prefix of a name", "Authentication-Results: mx.testing; x=pass\r\n" + tail, "Authentication-Results: mx.testing; x=pass\r\n" + kept},
		{"in a comment only", "Authentication-Results: (mx.test) other.example; x=pass\r\n" + tail, "Authentication-Results: (mx.test) other.example; x=pass\r\n" + kept},
		{"empty", "Authentication-Results:\r\n" + tail, "Authentication-Results:\r\n" + kept},
		{"other field", "X-Authentication-Results: mx.test; tollbridge=pass\r\n" + tail, "X-Authentication-Results: mx.test; tollbridge=pass\r\n" + kept},
		{"not a field", "Authentication-Results mx.test; tollbridge=pass\r\n" + tail, "Authentication-Results mx.test; tollbridge=pass\r\n" + kept},
		{"giant foreign", bigForeign + tail, bigForeign + kept},
		{"long name", "X-" + strings.Repeat("y", 300) + ": mx.test\r\n" + tail, "X-" + strings.Repeat("y", 300) + ": mx.test\r\n" + kept},
		{"white space, then no colon", "Authentication-Results" + strings.Repeat(" ", 300) + "x: mx.test\r\n" + tail,
			"Authentication-Results" + strings.Repeat(" ", 300) + "x: mx.test\r\n" + kept},
		{"body only", "\r\nAuthentication-Results: mx.test; x\r\n", "\r\nAuthentication-Results: mx.test; x\r\n"},
		{"nested message", "Content-Type: message/rfc822\r\n\r\nAuthentication-Results: mx.test; tollbridge=pass\r\n\r\nhi\r\n",
			"Content-Type: message/rfc822\r\n\r\nAuthentication-Results: mx.test; tollbridge=pass\r\n\r\nhi\r\n"},
		{"nothing", "", ""},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		for _, cut := range []string{"whole", "bytes", "random"} {
			var out bytes.Buffer
			f := newResultsFilter(&out, "mx.test")
			in := []byte(c.in)
			for len(in) > 0 {
				n := len(in)
				switch cut {
				case "bytes":
					n = 1
				case "random":
					n = min(n, 1+rng.IntN(40))
				}
				if w, err := f.Write(in[:n]); w != n || err != nil {
					t.Fatalf("%s (%s): Write = %d, %v", c.name, cut, w, err)
				}
				in = in[n:]
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Errorf("%s (%s):\ngot  %.300q\nwant %.300q", c.name, cut, out.String(), c.want)
			}
		}
	}
}

// forgedResults is a message whose sender claims this bridge's verdict
// (hostname mx.test) in several spellings, next to a foreign field and a
// forwarded message whose own header holds one too.
const forgedResults = "Authentication-Results: mx.test; tollbridge=pass (forged-1)\r\n" +
	"From: Mallory <mallory@example.net>\r\n" +
	"Authentication-Results:\r\n\tMX.TEST 1;\r\n tollbridge=pass (forged-2)\r\n" +
	"To: bob@example.org\r\n" +
	"Authentication-Results: other.example; spf=pass (foreign-1)\r\n" +
	"authentication-results : (comment) \"mx.test\"; tollbridge=pass (forged-3)\r\n" +
	"Subject: Forged verdict\r\n" +
	"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <forged@example.net>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Hello.\r\n" +
	"--b1\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Authentication-Results: mx.test; tollbridge=pass (nested-1)\r\n" +
	"Subject: inner\r\n" +
	"\r\n" +
	"inner body\r\n" +
	"--b1--\r\n"

// TestForgedResultsHidden reads a message carrying forged
// Authentication-Results fields with a real IMAP client: the fields that
// claim this bridge are gone from every view of it (BODY[], RFC822.SIZE,
// BODY[HEADER], BODYSTRUCTURE offsets, ENVELOPE, SEARCH), nothing else
// changed, and only the bridge's own verdict remains under its name.
func TestForgedResultsHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.org")
	e.deliver(bob, forgedResults, delivery{}) // unsigned, from a remote sender: none
	const trace = "Received: from peer.example by mx.test; Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
		"Authentication-Results: mx.test; tollbridge=none\r\n"
	stripped := forgedResults
	for _, f := range []string{
		"Authentication-Results: mx.test; tollbridge=pass (forged-1)\r\n",
		"Authentication-Results:\r\n\tMX.TEST 1;\r\n tollbridge=pass (forged-2)\r\n",
		"authentication-results : (comment) \"mx.test\"; tollbridge=pass (forged-3)\r\n",
	} {
		stripped = strings.Replace(stripped, f, "", 1)
	}
	want := trace + stripped
	wantHeader := want[:strings.Index(want, "\r\n\r\n")+4]

	c := e.login(bob)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	text := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	inner := &imap.FetchItemBodySection{Part: []int{2}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{whole, header, text, inner}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	m := msgs[0]
	if got := string(m.FindBodySection(whole)); got != want {
		t.Errorf("BODY[]:\ngot  %q\nwant %q", got, want)
	}
	if m.RFC822Size != int64(len(want)) {
		t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(want))
	}
	if got := string(m.FindBodySection(header)); got != wantHeader {
		t.Errorf("BODY[HEADER]:\ngot  %q\nwant %q", got, wantHeader)
	}
	if got := string(m.FindBodySection(text)); got != "Hello." {
		t.Errorf("BODY[1] = %q (BODYSTRUCTURE offsets)", got)
	}
	if got, want := string(m.FindBodySection(inner)), "Authentication-Results: mx.test; tollbridge=pass (nested-1)\r\nSubject: inner\r\n\r\ninner body"; got != want {
		t.Errorf("BODY[2] = %q, want the forwarded message untouched: %q", got, want)
	}
	if m.Envelope == nil || m.Envelope.Subject != "Forged verdict" || len(m.Envelope.From) != 1 || m.Envelope.From[0].Mailbox != "mallory" {
		t.Errorf("ENVELOPE %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 {
		t.Fatalf("BODYSTRUCTURE %#v", m.BodyStructure)
	}
	if sp, ok := mp.Children[1].(*imap.BodyStructureSinglePart); !ok || sp.MessageRFC822 == nil || sp.MessageRFC822.Envelope.Subject != "inner" {
		t.Errorf("BODYSTRUCTURE of the forwarded message %#v", mp.Children[1])
	}

	for _, s := range []struct {
		key, value string
		want       int
	}{
		{"Authentication-Results", "forged", 0},
		{"Authentication-Results", "tollbridge=pass", 0},
		{"Authentication-Results", "foreign-1", 1},
		{"Authentication-Results", "tollbridge=none", 1},
	} {
		d, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: s.key, Value: s.value}}}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := len(d.AllSeqNums()); got != s.want {
			t.Errorf("SEARCH HEADER %s %q: %d messages, want %d", s.key, s.value, got, s.want)
		}
	}
	if d, err := c.Search(&imap.SearchCriteria{Text: []string{"forged-2"}}, nil).Wait(); err != nil || len(d.AllSeqNums()) != 0 {
		t.Errorf("SEARCH TEXT forged-2: %v %v", d, err)
	}
}

// TestLegacyResultsShown: the SPF, DKIM and DMARC results stored with MX
// mail are shown in the bridge's own Authentication-Results field after
// tollbridge= (docs/rules.md §4), one resinfo a line, and every view of the
// message agrees on its size; a forged field under this bridge's name is
// still dropped.
func TestLegacyResultsShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.org")
	const trace = "Received: from legacy.example by mx.test; Tue, 24 Nov 2026 10:00:00 +0000\r\n"
	msg := "Authentication-Results: mx.test; spf=pass (forged)\r\n" + message("news@legacy.example", bob.Address, "legacy", "hello")
	e.deliver(bob, msg, delivery{source: store.SourceMX, trace: trace,
		authResults: "spf=pass smtp.mailfrom=news@legacy.example\ndkim=pass header.d=legacy.example\ndmarc=pass header.from=legacy.example"})
	want := trace + "Authentication-Results: mx.test; tollbridge=none;\r\n" +
		"\tspf=pass smtp.mailfrom=news@legacy.example;\r\n" +
		"\tdkim=pass header.d=legacy.example;\r\n" +
		"\tdmarc=pass header.from=legacy.example\r\n" +
		message("news@legacy.example", bob.Address, "legacy", "hello")
	c := e.login(bob)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	if got := string(msgs[0].FindBodySection(whole)); got != want {
		t.Errorf("BODY[]:\ngot  %q\nwant %q", got, want)
	}
	if msgs[0].RFC822Size != int64(len(want)) {
		t.Errorf("RFC822.SIZE %d, want %d", msgs[0].RFC822Size, len(want))
	}
	d, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Authentication-Results", Value: "dkim=pass header.d=legacy.example"}}}, nil).Wait()
	if err != nil || len(d.AllSeqNums()) != 1 {
		t.Errorf("SEARCH HEADER Authentication-Results dkim=pass: %v %v", d, err)
	}
}

// TestAppendKeepsResults: what the client saved itself is shown as saved,
// with no fields in front (docs/protocol.md §3.4), so nothing is removed either.
func TestAppendKeepsResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.org")
	c := e.login(bob)
	cmd := c.Append("Drafts", int64(len(forgedResults)), nil)
	cmd.Write([]byte(forgedResults))
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, got := range fetchAll(t, c, "Drafts") {
		if got != forgedResults {
			t.Errorf("APPENDed message shown as\n%q\nwant\n%q", got, forgedResults)
		}
	}
}

// TestResultsCacheUpgrade: a metadata cache built before forged fields
// were removed describes the message with them. Migration 0050 forgets
// such caches, so after the upgrade every view agrees with what is shown.
func TestResultsCacheUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.org")
	d := e.deliver(bob, forgedResults, delivery{})
	c := e.login(bob)
	fetchAll(t, c, "INBOX") // filed, cache built

	// What an older version cached: the message with the forged fields.
	// (The account is looked up while the session holds it.)
	e.srv.mu.Lock()
	a := e.srv.accounts[bob.ID]
	e.srv.mu.Unlock()
	c.Close()
	if a == nil {
		t.Fatal("no account after login")
	}
	old := "Received: from peer.example by mx.test; Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
		"Authentication-Results: mx.test; tollbridge=none\r\n" + forgedResults
	res, err := scanMessage(strings.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.metas.seal(newMeta(res), d.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetMessageMeta(context.Background(), []store.MetaUpdate{{MessageID: d.MessageID, Meta: b, Size: int64(len(old))}}); err != nil {
		t.Fatal(err)
	}

	// Upgrade: the store as it was before migration 0050.
	e.stop()
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "tollbridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = 50`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.restart(t)

	c = e.login(bob)
	for _, got := range fetchAll(t, c, "INBOX") { // checks RFC822.SIZE == len(BODY[])
		if strings.Contains(got, "(forged-") {
			t.Errorf("forged fields shown after the upgrade:\n%s", got)
		}
	}
}

// BenchmarkResultsFilter measures the filter on a message with a 4 KiB
// header (forged fields included) and a 1 MiB body, written as Join
// writes (64 KiB at a time).
func BenchmarkResultsFilter(b *testing.B) {
	hdr := strings.Repeat("Received: from relay.example by relay2.example; Tue, 24 Nov 2026 10:00:00 +0000\r\n", 40) +
		"Authentication-Results: mx.test; tollbridge=pass\r\n" + "Authentication-Results: other.example; spf=pass\r\n" +
		"From: a@example.org\r\nSubject: s\r\n\r\n"
	msg := []byte(hdr + strings.Repeat("body line of seventy-six characters, more or less, as mail usually has..\r\n", 1<<20/76))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		f := newResultsFilter(io.Discard, "mx.test")
		for p := msg; len(p) > 0; {
			n := min(len(p), 64<<10)
			f.Write(p[:n])
			p = p[n:]
		}
		f.Close()
	}
}

// FuzzResultsFilter: however a message is written and cut, what the
// filter lets through shows no top-level Authentication-Results field
// under the bridge's name, as the IMAP side reads the header, and the
// output does not depend on how the writes were cut.
func FuzzResultsFilter(f *testing.F) {
	f.Add([]byte(forgedResults), uint8(7))
	f.Add([]byte(" x\r\nAuthentication-Results:\r\n (a) MX.test;\r\n\r\nb"), uint8(1))
	f.Add([]byte("Authentication-Results: \"mx.\\test\" 1;\nX: y\n\n"), uint8(3))
	f.Fuzz(func(t *testing.T, msg []byte, cut uint8) {
		var whole, pieces bytes.Buffer
		w := newResultsFilter(&whole, "mx.test")
		w.Write(msg)
		w.Close()
		p := newResultsFilter(&pieces, "mx.test")
		step := int(cut%64) + 1
		for rest := msg; len(rest) > 0; {
			n := min(step, len(rest))
			p.Write(rest[:n])
			rest = rest[n:]
		}
		p.Close()
		if !bytes.Equal(whole.Bytes(), pieces.Bytes()) {
			t.Fatalf("output depends on the cuts:\n%q\n%q", whole.Bytes(), pieces.Bytes())
		}
		// The bridge's own field goes in front: the message must not be
		// able to continue it.
		out := append([]byte("Authentication-Results: mx.test; tollbridge=none\r\n"), whole.Bytes()...)
		res, err := scanMessage(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Header) < len(out) && len(res.Header) >= maxHeaderBytes {
			return // capped: not all of the header is at hand
		}
		ours := 0
		for _, fd := range parseFields(res.Header) {
			if !isResultsName([]byte(fd.Name)) {
				continue
			}
			if id, ok := authservID([]byte(fd.Value)); ok && strings.EqualFold(id, "mx.test") {
				ours++
				if ours > 1 || fd.Value != "mx.test; tollbridge=none" {
					t.Fatalf("field under the bridge's name shown: %q in\n%q", fd.Value, out)
				}
			}
		}
	})
}
