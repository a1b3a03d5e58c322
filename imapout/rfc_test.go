package imapout

import (
	"fmt"
	"strings"
	"testing"

	"tollbridge/store"
)

// rawAppend APPENDs msg to mailbox with a non-synchronising literal.
func (r *raw) rawAppend(mailbox, msg string) {
	r.t.Helper()
	r.ok("APPEND %s {%d+}\r\n%s", mailbox, len(msg), msg)
}

// rfcEnv is a server with one user logged in over a raw connection.
func rfcEnv(t *testing.T) (*env, *store.User, *raw) {
	t.Helper()
	e := newEnv(t)
	u := e.addUser("rfc@example.org")
	return e, u, e.rawLogin(u)
}

// TestEnvelopeAsWritten: ENVELOPE gives address groups with their start
// and end markers, empty groups too, drops comments from addresses,
// gives source routes as their ADL, and passes encoded words through
// (issue 13 items 4, 12).
func TestEnvelopeAsWritten(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	r.rawAppend("INBOX", crlf(`From: "Joe Q. Public" <joe (the man)@ (home) example.com>
To: group: g1@d1.org, "G Two" <g2@d2.org>;, solo@d3.org
Cc: undisclosed-recipients:;
Bcc: <@route:user@domain>
Subject: =?utf-8?b?Q2Fmw6kgb3V2ZXJ0?=
Date: Mon, 30 Nov 2026 10:00:00 +0100

body
`))
	r.ok("SELECT INBOX")
	got := r.ok("FETCH 1 ENVELOPE")
	want := `* 1 FETCH (ENVELOPE ("Mon, 30 Nov 2026 10:00:00 +0100" "=?utf-8?b?Q2Fmw6kgb3V2ZXJ0?=" ` +
		`(("Joe Q. Public" NIL "joe" "example.com")) (("Joe Q. Public" NIL "joe" "example.com")) (("Joe Q. Public" NIL "joe" "example.com")) ` +
		`((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")("G Two" NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "solo" "d3.org")) ` +
		`((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ` +
		`((NIL "@route" "user" "domain")) NIL NIL))`
	// go-imap separates the addresses of a list with a space, which
	// RFC 3501's grammar does not have; clients accept both.
	tight := func(s string) string { return strings.ReplaceAll(s, ") (", ")(") }
	if len(got) != 1 || tight(got[0]) != tight(want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSearchFromIgnoresComments: SEARCH FROM matches the address without
// the comments inside it (issue 13 item 6).
func TestSearchFromIgnoresComments(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	r.rawAppend("INBOX", crlf("From: <user-from (comment)@ (comment) domain.org>\nSubject: a\n\nbody\n"))
	r.rawAppend("INBOX", crlf("From: other@domain.org\nSubject: b\n\nbody\n"))
	r.ok("SELECT INBOX")
	for _, q := range []string{"user-from@domain.org", "USER-FROM@DOMAIN", "from@domain.org"} {
		if got := r.ok("SEARCH FROM %q", q); fmt.Sprint(got) != "[* SEARCH 1]" {
			t.Errorf("SEARCH FROM %q: %q", q, got)
		}
	}
}

// TestSentDatesIgnoreZones: SENTBEFORE, SENTON and SENTSINCE compare the
// day written in the Date field, whatever its zone and the server's
// (issue 13 item 7).
func TestSentDatesIgnoreZones(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	dates := []string{
		"Tue, 1 Dec 2026 23:30:00 -1100", // 2 Dec in UTC
		"Wed, 2 Dec 2026 00:30:00 +1400", // 1 Dec in UTC
		"Wed, 2 Dec 2026 12:00:00 +0000",
	}
	for i, d := range dates {
		r.rawAppend("INBOX", crlf(fmt.Sprintf("From: a@b.org\nSubject: %d\nDate: %s\n\nbody\n", i, d)))
	}
	r.ok("SELECT INBOX")
	for q, want := range map[string]string{
		"SENTON 1-Dec-2026":                          "[* SEARCH 1]",
		"SENTON 2-Dec-2026":                          "[* SEARCH 2 3]",
		"SENTBEFORE 2-Dec-2026":                      "[* SEARCH 1]",
		"SENTSINCE 2-Dec-2026":                       "[* SEARCH 2 3]",
		"SENTSINCE 1-Dec-2026 SENTBEFORE 3-Dec-2026": "[* SEARCH 1 2 3]",
	} {
		if got := r.ok("SEARCH %s", q); fmt.Sprint(got) != want {
			t.Errorf("SEARCH %s: %q, want %s", q, got, want)
		}
	}
}

// FuzzParseAddressList: any header value parses, in bounded time, into
// balanced groups.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{`a@b`, `g: a@b, "x" <c@d>;, e@f`, `;;`, `<@r:u@d>`, `(c (d)) x@y (z)`, `g:;`, `"unterminated`, `>;<`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		depth := 0
		for _, a := range parseAddressList(v) {
			switch {
			case a.Host == "" && a.Mailbox != "":
				depth++
			case a.Host == "" && a.Mailbox == "":
				depth--
			}
			if depth < 0 || depth > 1 {
				t.Fatalf("unbalanced groups in %q", v)
			}
		}
	})
}

// TestSubscriptionsAreNames: CREATE does not subscribe, DELETE does not
// unsubscribe (the name stays listed as \NonExistent until UNSUBSCRIBE),
// CHILDINFO marks only unsubscribed parents, and LSUB "%" shows them as
// \Noselect (issue 13 item 5).
func TestSubscriptionsAreNames(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	r.ok(`CREATE a/b/c`)
	if got := listNames(t, r, `LIST (SUBSCRIBED) "" "a*"`); len(got) != 0 {
		t.Errorf("subscribed after CREATE: %q", got)
	}
	r.ok(`SUBSCRIBE a/b/c`)
	r.ok(`SUBSCRIBE a`)
	for cmd, want := range map[string]string{
		`LSUB "" "a/%"`: `[* LSUB (\HasChildren \Noselect) "/" "a/b"]`,
		`LSUB "" "a"`:   `[* LSUB (\HasChildren \Subscribed) "/" "a"]`,
		`LIST (SUBSCRIBED RECURSIVEMATCH) "" "a*"`: `[* LIST (\HasChildren \Subscribed) "/" "a" ` +
			`* LIST (\HasChildren) "/" "a/b" (CHILDINFO ("SUBSCRIBED")) * LIST (\HasNoChildren \Subscribed) "/" "a/b/c"]`,
	} {
		if got := listNames(t, r, cmd); fmt.Sprint(got) != want {
			t.Errorf("%s:\n got  %q\n want %s", cmd, got, want)
		}
	}
	r.ok(`DELETE a/b/c`)
	if got := listNames(t, r, `LIST (SUBSCRIBED) "" "a/b/c"`); fmt.Sprint(got) != `[* LIST (\Noselect \NonExistent \Subscribed) "/" "a/b/c"]` {
		t.Errorf("LIST (SUBSCRIBED) after DELETE: %q", got)
	}
	if got := listNames(t, r, `LIST "" "a/b/c"`); len(got) != 0 {
		t.Errorf("LIST after DELETE: %q", got)
	}
	r.ok(`UNSUBSCRIBE a/b/c`)
	if got := listNames(t, r, `LIST (SUBSCRIBED) "" "a*"`); fmt.Sprint(got) != `[* LIST (\HasChildren \Subscribed) "/" "a"]` {
		t.Errorf("LIST (SUBSCRIBED) after UNSUBSCRIBE: %q", got)
	}
}

// TestRecentAfterOtherSessionsExpunge: when another session expunges
// \Recent messages, the next untagged responses include the new RECENT
// count, so a client never counts more recent messages than exist
// (issue 13 item 8).
func TestRecentAfterOtherSessionsExpunge(t *testing.T) {
	t.Parallel()
	e, u, a := rfcEnv(t)
	e.fill(u, 3)
	if got := matching(a.ok("SELECT INBOX"), "RECENT"); fmt.Sprint(got) != "[* 3 RECENT]" {
		t.Fatalf("SELECT: %q", got)
	}
	b := e.rawLogin(u)
	b.ok("SELECT INBOX")
	b.ok(`STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	if got := a.ok("NOOP"); fmt.Sprint(got) != "[* 1 EXPUNGE * 1 EXPUNGE * 1 RECENT]" {
		t.Errorf("NOOP after the other session's EXPUNGE: %q", got)
	}
	a.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	if got := a.ok("EXPUNGE"); fmt.Sprint(got) != "[* 1 EXPUNGE * 0 RECENT]" {
		t.Errorf("own EXPUNGE: %q", got)
	}
}

// TestStoreNewKeywordFlagsFirst: a STORE that adds a keyword the mailbox
// did not have sends the new FLAGS before the FETCH responses carrying it
// (issue 13 item 9); .SILENT sends FLAGS only.
func TestStoreNewKeywordFlagsFirst(t *testing.T) {
	t.Parallel()
	e, u, r := rfcEnv(t)
	e.fill(u, 2)
	r.ok("SELECT INBOX")
	got := r.ok(`STORE 1:2 +FLAGS ($Fresh)`)
	if len(got) != 3 || !strings.HasPrefix(got[0], "* FLAGS (") || !strings.Contains(got[0], "$Fresh") ||
		!strings.HasPrefix(got[1], "* 1 FETCH (UID 1 FLAGS (") || !strings.Contains(got[1], "$Fresh") ||
		!strings.HasPrefix(got[2], "* 2 FETCH (UID 2 FLAGS (") {
		t.Errorf("STORE new keyword: %q", got)
	}
	if got := r.ok(`STORE 1 +FLAGS ($Fresh $Other)`); fmt.Sprint(matching(got, "FLAGS")) != fmt.Sprint(got) ||
		len(got) != 2 || !strings.HasPrefix(got[0], "* FLAGS (") || !strings.Contains(got[1], "$Other") {
		t.Errorf("STORE second keyword: %q", got)
	}
	if got := r.ok(`STORE 2 +FLAGS.SILENT ($Quiet)`); len(got) != 1 || !strings.Contains(got[0], "* FLAGS (") {
		t.Errorf("STORE.SILENT new keyword: %q", got)
	}
	if got := r.ok(`STORE 2 +FLAGS ($Fresh)`); fmt.Sprint(got) != `[* 2 FETCH (UID 2 FLAGS ($Fresh $Quiet \Recent))]` {
		t.Errorf("STORE known keyword: %q", got)
	}
}

// TestNoNULInLiterals: a part stored with raw NUL bytes (binary transfer
// encoding) is sent by BODY[…] without NUL, same size, and by BINARY[…]
// as it is, in a literal8 (issue 13 item 1).
func TestNoNULInLiterals(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	r.rawAppend("INBOX", "From: a@b.org\r\nSubject: bin\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"+
		"--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"+
		"ab\x00cd\x00\r\n--x--\r\n")
	r.ok("SELECT INBOX")
	for _, item := range []string{"BODY.PEEK[1]", "BODY.PEEK[]", "RFC822.TEXT", "BODY.PEEK[TEXT]<10.40>"} {
		got := r.ok("FETCH 1 (%s)", item)
		if len(got) != 1 || strings.Contains(got[0], "\x00") || strings.Contains(got[0], "~{") {
			t.Errorf("FETCH %s: %q", item, got)
		}
	}
	if got := r.ok("FETCH 1 (BODY.PEEK[1])"); len(got) != 1 || !strings.HasSuffix(got[0], "{6}\r\nab\x80cd\x80)") {
		t.Errorf("FETCH BODY[1]: %q", got)
	}
	if got := r.ok("FETCH 1 (BINARY.PEEK[1])"); len(got) != 1 || !strings.HasSuffix(got[0], "~{6}\r\nab\x00cd\x00)") {
		t.Errorf("FETCH BINARY[1]: %q", got)
	}
}

// TestListPatternOfAtomChars: a LIST pattern is list-mailbox, any atom
// characters; one that is not valid modified UTF-7 is still a pattern
// (issue 13 item 2).
func TestListPatternOfAtomChars(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	if got := r.ok(`LIST "" "!#$&'+,-.%%*"`); len(got) != 0 {
		t.Errorf("LIST: %q", got)
	}
}

// TestPartialBinaryOrigin: a partial BINARY answer names its origin
// (RFC 3516 §4.2; issue 13 item 3).
func TestPartialBinaryOrigin(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	r.rawAppend("INBOX", "Subject: b\r\n\r\n0123456789\r\n")
	r.ok("SELECT INBOX")
	if got := r.ok("FETCH 1 (BINARY.PEEK[1]<0.7>)"); fmt.Sprint(got) != "[* 1 FETCH (BINARY[1]<0> ~{7}\r\n0123456)]" {
		t.Errorf("FETCH: %q", got)
	}
}

// TestEnvelopeDateAndRouteAsWritten: ENVELOPE gives the Date field and
// a source route as written (issue 13 items 4 and 12).
func TestEnvelopeDateAndRouteAsWritten(t *testing.T) {
	t.Parallel()
	_, _, r := rfcEnv(t)
	r.rawAppend("INBOX", "Date: 1 Dec 2026 10:00:00 -0000\r\nTo: <@route:user@domain>\r\n\r\nbody\r\n")
	r.ok("SELECT INBOX")
	got := r.ok("FETCH 1 ENVELOPE")
	if len(got) != 1 || !strings.Contains(got[0], `("1 Dec 2026 10:00:00 -0000" `) || !strings.Contains(got[0], `((NIL "@route" "user" "domain"))`) {
		t.Errorf("FETCH: %q", got)
	}
}

// TestMetaV3CacheUpgradedInPlace: a message whose stored metadata cache
// is of version 3 is answered from it, completed (the Date field as
// written), and the cache is stored again as the current version, with
// no rebuild from the message.
func TestMetaV3CacheUpgradedInPlace(t *testing.T) {
	t.Parallel()
	e, u, r := rfcEnv(t)
	msg := "Date: 1 Dec 2026 10:00:00 -0000\r\nSubject: old\r\n\r\nbody\r\n"
	r.rawAppend("INBOX", msg)
	// No FETCH before the cache is replaced: the account would keep the
	// decoded metadata in memory and answer from there.
	r.ok("SELECT INBOX")
	ctx := t.Context()
	box, err := e.st.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	e.srv.mu.Lock()
	cipher := e.srv.accounts[u.ID].metas
	e.srv.mu.Unlock()
	rows, err := e.st.MessageRows(ctx, box.ID, []uint32{1}, store.RowMeta)
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	s, _ := scanMessage(strings.NewReader(msg))
	old := newMeta(s)
	// A size no rebuild would give shows that the cache was used.
	old.Version, old.Size = 3, 12345
	b, _ := cipher.seal(old, rows[0].MessageID)
	if err := e.st.SetMessageMeta(ctx, []store.MetaUpdate{{MessageID: rows[0].MessageID, Meta: b, Size: old.Size}}); err != nil {
		t.Fatal(err)
	}
	if got := r.ok("FETCH 1 (RFC822.SIZE ENVELOPE)"); len(got) != 1 || !strings.Contains(got[0], "RFC822.SIZE 12345") ||
		!strings.Contains(got[0], `("1 Dec 2026 10:00:00 -0000" "old"`) {
		t.Errorf("FETCH from a version 3 cache: %q", got)
	}
	rows, _ = e.st.MessageRows(ctx, box.ID, []uint32{1}, store.RowMeta)
	if m, err := cipher.open(rows[0].Meta, rows[0].MessageID); err != nil || m.upgraded || m.Version != metaVersion || m.Size != 12345 {
		t.Errorf("stored again: %+v %v", m, err)
	}
}
