package conformance_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/store"
)

// TestMalformedCatalogIsFail: §3.6 "the header and the catalog are strict
// (… a malformed catalog is `fail`)": a catalog with an unknown top-level
// field, a catalog that is not JSON, a catalog with a second signature
// packet after the literal data, and one with a second one-pass signature
// (the same signature twice, nested as RFC 4880 §5.4 has it) are each taken at complete (202: the
// server holds no private key and cannot read the catalog) and filed for
// their recipient in Junk with the verdict fail. A control message with a
// valid catalog, sealed and signed the same way, reads as pass in INBOX.
// Each message goes to its own user of bob's site, so that one user's
// mailboxes tell that message's fate; imapout over the site's store files
// them at login. A message the receiver cannot open is not shown to a
// client (§3.4), so its verdict is read from the site's store.
func TestMalformedCatalogIsFail(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	alice := newKey(t, "alice@example.org")
	imapAddr := s.imap(func(_ context.Context, address string) (*openpgp.Entity, error) {
		if address != "alice@example.org" {
			t.Errorf("filing asked for the key of %q, want alice@example.org", address)
		}
		return alice, nil
	})
	cases := []struct {
		user string
		seal func(cat []byte, parts []*part) *sealed
	}{
		{"control@example.net", func(cat []byte, parts []*part) *sealed {
			return sealMessage(t, cat, parts, alice)
		}},
		{"unknown-field@example.net", func(cat []byte, parts []*part) *sealed {
			cat = bytes.Replace(cat, []byte(`{"version": 1,`), []byte(`{"version": 1, "importance": "high",`), 1)
			return sealMessage(t, cat, parts, alice)
		}},
		{"not-json@example.net", func(cat []byte, parts []*part) *sealed {
			return sealMessage(t, cat[:len(cat)-1], parts, alice) // the closing brace cut off
		}},
		{"two-signatures@example.net", func(cat []byte, parts []*part) *sealed {
			return sealPGPyStyle(t, cat, parts, alice, 2)
		}},
		{"two-one-pass@example.net", func(cat []byte, parts []*part) *sealed {
			return sealOnePassStyle(t, cat, parts, alice, 2, 2) // signed twice, RFC 4880 §5.4 nesting
		}},
	}
	users := map[string]*store.User{}
	for _, c := range cases {
		u, key := s.addUser(c.user)
		users[c.user] = u
		b1 := &part{id: "b1", kind: "block", plain: []byte("Hello " + c.user + ".\r\n")}
		a1 := &part{id: "a1", kind: "attachment", plain: []byte("%PDF-1.4 not really\n")}
		m := c.seal(simpleCatalog("alice@example.org", c.user, b1, a1), []*part{b1, a1})
		header := m.header(t, hashAddr(t, "alice@example.org"), u.AddressHash, key, true)
		r := uploadByHand(t, s.api, m, "alice@example.org", c.user, header)
		if r.status != 202 {
			t.Fatalf("%s: complete: HTTP %d, want 202 (the server cannot read the catalog): %s", c.user, r.status, r.body)
		}
		checkReceipt(t, s, r, header)
	}

	for _, c := range cases[1:] {
		inbox, junk := counts(t, imapAddr, c.user, "pw")
		if inbox != 0 || junk != 1 {
			t.Errorf("%s: INBOX holds %d, Junk %d; want 0 and 1 (§3.6: a malformed catalog is fail)", c.user, inbox, junk)
			continue
		}
		if v := filedVerdict(t, s, users[c.user], "Junk"); v != "fail" {
			t.Errorf("%s: filed in Junk with tollbridge=%s, want fail (§3.6)", c.user, v)
		}
	}
	const control = "control@example.net"
	if inbox, junk := counts(t, imapAddr, control, "pw"); inbox != 1 || junk != 0 {
		t.Fatalf("%s: INBOX holds %d, Junk %d; want 1 and 0", control, inbox, junk)
	}
	got := mailbox(t, imapAddr, control, "pw", "INBOX")
	if body, v := splitTrace(got[0]); v != "pass" || !bytes.Contains(body, []byte("Hello "+control)) {
		t.Errorf("%s: INBOX shows tollbridge=%s:\n%.300s\nwant the valid, signed message as pass", control, v, got[0])
	}
}

// filedVerdict is the verdict the site's store holds for the first message
// of user's mailbox box.
func filedVerdict(t *testing.T, s *site, u *store.User, box string) string {
	t.Helper()
	ctx := context.Background()
	mb, err := s.st.MailboxByName(ctx, u.ID, box)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.st.MessageRows(ctx, mb.ID, []uint32{1}, store.RowMeta)
	if err != nil || len(rows) != 1 {
		t.Fatalf("%s %s UID 1: %d rows, %v", u.Address, box, len(rows), err)
	}
	return rows[0].Auth
}
