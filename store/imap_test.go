package store

import (
	"context"
	"testing"
)

// fileTest stores a message with its own catalog blob in a mailbox.
func fileTest(t *testing.T, s *Store, u *User, box, content string) *Delivered {
	t.Helper()
	ref := putBlob(t, s, content)
	d, err := s.DeliverMessage(context.Background(), &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceMX,
		Blobs: map[string]BlobRef{"catalog": ref}, Mailbox: box})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func count(t *testing.T, s *Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.read.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIMAPDeleteMailboxFreesMessages(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "alice@example.org")
	box, err := s.CreateMailbox(ctx, u.ID, "Old/Stuff", "")
	if err != nil {
		t.Fatal(err)
	}
	d := fileTest(t, s, u, "Old/Stuff", "only here")
	shared := fileTest(t, s, u, "INBOX", "also in INBOX")
	if _, err := s.CopyMessages(ctx, shared.MailboxID, []uint32{shared.UID}, box.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, u.ID, "Old"); err == nil {
		t.Fatal("deleted a mailbox with children")
	}
	if err := s.DeleteMailbox(ctx, u.ID, "Old/Stuff"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM messages WHERE id = ?`, d.MessageID); n != 0 {
		t.Error("message of the deleted mailbox is left")
	}
	if n := count(t, s, `SELECT COUNT(*) FROM messages WHERE id = ?`, shared.MessageID); n != 1 {
		t.Error("message still in INBOX was deleted")
	}
	if n := count(t, s, `SELECT COUNT(*) FROM blobs WHERE refs > 0`); n != 1 {
		t.Errorf("%d referenced blobs, want 1", n)
	}
}

func TestIMAPMoveAndExpungeTombstones(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "alice@example.org")
	var uids []uint32
	var inbox int64
	for _, c := range []string{"a", "b", "c"} {
		d := fileTest(t, s, u, "INBOX", c)
		uids, inbox = append(uids, d.UID), d.MailboxID
	}
	before, err := s.MailboxState(ctx, inbox)
	if err != nil {
		t.Fatal(err)
	}
	archive, _ := s.MailboxByName(ctx, u.ID, "Archive")
	res, err := s.CopyMessages(ctx, inbox, uids[1:2], archive.ID, true)
	if err != nil || len(res.Dest) != 1 || res.Dest[0] != 1 {
		t.Fatalf("move: %+v %v", res, err)
	}
	states, _, err := s.StoreFlags(ctx, inbox, uids, FlagsAdd, []string{`\Deleted`, "$Work"})
	if err != nil || len(states) != 2 {
		t.Fatalf("store: %v %v", states, err)
	}
	gone, _, err := s.ExpungeMessages(ctx, inbox, 3, []uint32{3})
	if err != nil || len(gone) != 1 || gone[0] != 3 {
		t.Fatalf("expunge: %v %v", gone, err)
	}
	after, _ := s.MailboxState(ctx, inbox)
	expunged, err := s.ExpungedUIDs(ctx, inbox, before.ModSeq, after.ModSeq)
	if err != nil || len(expunged) != 2 || expunged[0] != 2 || expunged[1] != 3 {
		t.Errorf("tombstones: %v %v", expunged, err)
	}
	if len(after.Keywords) != 1 || after.Keywords[0] != "$Work" {
		t.Errorf("keywords %v", after.Keywords)
	}
	left, _ := s.MailboxUIDs(ctx, inbox, 0, 0)
	if len(left) != 1 || left[0] != 1 {
		t.Errorf("left %v", left)
	}
	// UIDs are never reused.
	d := fileTest(t, s, u, "INBOX", "d")
	if d.UID != 4 {
		t.Errorf("new UID %d", d.UID)
	}
}
