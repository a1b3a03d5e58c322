package imapout

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestCapabilities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.addUser("alice@example.org")
	c := e.login(u)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapIdle, imap.CapUIDPlus, imap.CapMove,
		imap.CapNamespace, imap.CapUnselect, imap.CapESearch, imap.CapListStatus, imap.CapStatusSize, imap.CapSpecialUse,
		imap.CapCreateSpecialUse, imap.CapLiteralPlus, imap.CapBinary, imap.CapChildren, imap.CapSearchRes, "APPENDLIMIT=52428800"} {
		if !caps.Has(want) {
			t.Errorf("missing capability %s in %v", want, caps)
		}
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("namespace %+v %v", ns, err)
	}
}

const multipartMessage = "From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.net>\r\n" +
	"Bcc: secret@example.net\r\n" +
	"Subject: Report\r\n" +
	"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <report@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello Bob, the report is attached.\r\n" +
	"--b1\r\n" +
	"Content-Type: application/octet-stream; name=\"data.bin\"\r\n" +
	"Content-Disposition: attachment; filename=\"data.bin\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n" +
	"OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\r\n" +
	"--b1--\r\n"

func TestAppendFetchByteIdentical(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.addUser("alice@example.org")
	c := e.login(u)
	msg := []byte(multipartMessage)
	cmd := c.Append("Drafts", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Label1"},
		Time: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)})
	cmd.Write(msg)
	cmd.Close()
	ad, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Fatalf("APPENDUID %+v", ad)
	}
	sel, err := c.Select("Drafts", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("select %+v %v", sel, err)
	}
	if !hasFlag(sel.Flags, "$Label1") {
		t.Errorf("FLAGS %v lacks the keyword", sel.Flags)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	fields := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "bcc"}, Peek: true}
	text1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	mime2 := &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME, Peek: true}
	part := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: 100}}
	bin := &imap.FetchItemBinarySection{Peek: true}
	bin2 := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{
		Flags: true, InternalDate: true, RFC822Size: true, Envelope: true, UID: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{whole, header, fields, text1, mime2, part},
		BinarySection: []*imap.FetchItemBinarySection{bin, bin2},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch %v %v", msgs, err)
	}
	m := msgs[0]
	if got := m.FindBodySection(whole); !bytes.Equal(got, msg) {
		t.Errorf("BODY[] differs:\n%q\n%q", got, msg)
	}
	if m.RFC822Size != int64(len(msg)) {
		t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(msg))
	}
	if got, want := string(m.FindBodySection(header)), multipartMessage[:strings.Index(multipartMessage, "\r\n\r\n")+4]; got != want {
		t.Errorf("BODY[HEADER] %q", got)
	}
	if got := string(m.FindBodySection(fields)); got != "Bcc: secret@example.net\r\nSubject: Report\r\n\r\n" {
		t.Errorf("HEADER.FIELDS %q", got)
	}
	if got := string(m.FindBodySection(text1)); got != "Hello Bob, the report is attached." {
		t.Errorf("BODY[1] %q", got)
	}
	if got := string(m.FindBodySection(mime2)); !strings.HasPrefix(got, "Content-Type: application/octet-stream") || !strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("BODY[2.MIME] %q", got)
	}
	if got := m.FindBodySection(part); !bytes.Equal(got, msg[:100]) {
		t.Errorf("BODY[]<0.100> %q", got)
	}
	if got := m.FindBinarySection(bin); !bytes.Equal(got, msg) {
		t.Errorf("BINARY[] differs")
	}
	if got := m.FindBinarySection(bin2); len(got) != 114 || got[0] != 0 || got[113] != 113 {
		t.Errorf("BINARY[2] %v", got)
	}
	if !hasFlag(m.Flags, imap.FlagDraft) || !hasFlag(m.Flags, "$Label1") || hasFlag(m.Flags, imap.FlagSeen) {
		t.Errorf("flags %v", m.Flags)
	}
	if !m.InternalDate.Equal(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("INTERNALDATE %v", m.InternalDate)
	}
	env := m.Envelope
	if env == nil || env.Subject != "Report" || env.From[0].Name != "Alice" || env.To[0].Mailbox != "bob" ||
		env.Bcc[0].Host != "example.net" || env.MessageID != "report@example.org" {
		t.Errorf("envelope %+v", env)
	}
	bs, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(bs.Children) != 2 || bs.Children[1].(*imap.BodyStructureSinglePart).Encoding != "base64" {
		t.Errorf("bodystructure %#v", m.BodyStructure)
	}

	// A non-peek fetch sets \Seen and says so.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}}}).Collect()
	if err != nil || len(msgs) != 1 || !hasFlag(msgs[0].Flags, imap.FlagSeen) {
		t.Fatalf("BODY[TEXT] did not report \\Seen: %+v %v", msgs, err)
	}
	// In an EXAMINEd mailbox it does not.
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Drafts", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || hasFlag(msgs[0].Flags, imap.FlagSeen) {
		t.Fatalf("EXAMINE set \\Seen: %v %v", msgs[0].Flags, err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err == nil {
		t.Error("STORE in an EXAMINEd mailbox succeeded")
	}
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

func TestFetchSequenceErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.addUser("alice@example.org")
	r := e.rawLogin(u)
	r.ok("SELECT INBOX")
	if _, status := r.do("FETCH 1:* FLAGS"); !strings.HasPrefix(status, "BAD") {
		t.Errorf("FETCH 1:* in an empty mailbox: %s", status)
	}
	if untagged := r.ok("UID FETCH 1:* FLAGS"); len(untagged) != 0 {
		t.Errorf("UID FETCH 1:* in an empty mailbox: %q", untagged)
	}
	if untagged := r.ok("UID SEARCH 1:* NOT DELETED"); len(untagged) != 1 || untagged[0] != "* SEARCH" {
		t.Errorf("iOS's UID SEARCH 1:* NOT DELETED: %q", untagged)
	}
	_ = imapclient.Options{}
}

func TestFetchItemsWire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	msg := "Subject: hi\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n"
	r := e.rawLogin(bob)
	r.send("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
	r.expect(`^T\d+ OK`)
	r.ok("SELECT INBOX")
	for _, c := range []struct{ cmd, want string }{
		{"FETCH 1 (RFC822.SIZE BINARY.SIZE[1])", fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d BINARY.SIZE[1] 11)", len(msg))},
		{"FETCH 1 BINARY.PEEK[1]", "* 1 FETCH (BINARY[1] ~{11}\r\nhello world)"},
		{"FETCH 1 BODY.PEEK[]<60.8>", "* 1 FETCH (BODY[]<60> {8}\r\n" + msg[60:68] + ")"},
		{"FETCH 1 BODY.PEEK[]<500.8>", "* 1 FETCH (BODY[]<500> {0}\r\n)"},
		{"FETCH 1 RFC822.HEADER", "* 1 FETCH (RFC822.HEADER {" + fmt.Sprint(len(msg)-18) + "}\r\n" + msg[:len(msg)-18] + ")"},
		{"FETCH 1 BODY", `* 1 FETCH (BODY ("text" "plain" NIL NIL NIL "base64" 18 1))`},
		{"FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Content-Type Content-Transfer-Encoding)]", "* 1 FETCH (BODY[HEADER.FIELDS.NOT (\"Content-Type\" \"Content-Transfer-Encoding\")] {15}\r\nSubject: hi\r\n\r\n)"},
		{"FETCH 1 RFC822.TEXT", "* 1 FETCH (FLAGS (\\Seen \\Recent) RFC822.TEXT {18}\r\naGVsbG8gd29ybGQ=\r\n)"},
	} {
		if got := r.ok("%s", c.cmd); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.cmd, got, c.want)
		}
	}
}
