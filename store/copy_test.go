package store

import (
	"context"
	"io"
	"slices"
	"testing"
)

// TestCopyToCoversEveryTable: CopyTo knows every table the migrations
// make (a new table must be added to copyTables).
func TestCopyToCoversEveryTable(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	tables, err := s.tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if !slices.Contains(copyTables, tb) {
			t.Errorf("table %s is not copied by CopyTo: add it to copyTables", tb)
		}
	}
	for _, tb := range copyTables {
		if !slices.Contains(tables, tb) {
			t.Errorf("copyTables names %s, which the schema does not have", tb)
		}
	}
}

// TestCopyTo copies a SQLite store (users, mail with flags, a queue) into
// an empty one (PostgreSQL in the suite's run on it): the rows, UIDs,
// UIDVALIDITY, flags and blobs come through, blob references count the
// same, and new rows get new ids.
func TestCopyTo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	u := testUser(t, src, "alice@example.org")
	d1 := fileTest(t, src, u, "INBOX", "first")
	d2 := fileTest(t, src, u, "INBOX", "second")
	if _, _, err := src.StoreFlags(ctx, d1.MailboxID, []uint32{d1.UID}, FlagsAdd, []string{`\Seen`, "$Label"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.StoreFlags(ctx, d2.MailboxID, []uint32{d2.UID}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.ExpungeMessages(ctx, d2.MailboxID, d2.UID, nil); err != nil {
		t.Fatal(err)
	}
	enqueue(t, src, "bob@example.net", "carol@example.net")
	before, err := src.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}

	dst, err := Open(ctx, t.TempDir(), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		if c.Table == "users" && c.To != 1 || c.Table == "outbox_recipients" && c.To != 2 {
			t.Errorf("counts %+v", c)
		}
	}
	after, err := dst.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if after.UIDValidity != before.UIDValidity || after.UIDNext != before.UIDNext || after.ModSeq != before.ModSeq || after.ID != before.ID {
		t.Fatalf("INBOX after copy %+v, before %+v", after, before)
	}
	var flags string
	dst.read.QueryRow(`SELECT flags FROM mailbox_messages WHERE mailbox_id = ? AND uid = ?`, d1.MailboxID, d1.UID).Scan(&flags)
	if flags != `$Label \Seen` && flags != `\Seen $Label` {
		t.Errorf("flags after copy %q", flags)
	}
	var hash string
	var refs int
	dst.read.QueryRow(`SELECT b.hash, b.refs FROM message_blobs m JOIN blobs b ON b.hash = m.blob WHERE m.message_id = ?`, d1.MessageID).Scan(&hash, &refs)
	if refs != 1 {
		t.Errorf("blob %s refs %d after copy, want 1", hash, refs)
	}
	r, err := dst.Blobs().Open(hash)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "first" {
		t.Errorf("blob after copy %q", b)
	}
	// New rows continue above the copied ids; the copied UIDs go on.
	d3 := fileTest(t, dst, u, "INBOX", "third")
	if d3.UID != before.UIDNext || d3.MessageID <= d1.MessageID {
		t.Errorf("new message after copy: %+v", d3)
	}
	if _, err := src.CopyTo(ctx, dst); err == nil {
		t.Error("copy into a store that is not empty")
	}
}
