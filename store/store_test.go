package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"tollbridge/internal/testkit"
)

func openTest(t testing.TB) (*Store, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(testkit.Epoch)
	s, err := Open(context.Background(), t.TempDir(), withClock(testOptions(t), clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clk
}

func testUser(t testing.TB, s *Store, addr string) *User {
	t.Helper()
	u := &User{Address: addr, AddressHash: strings.Repeat("a", 60) + addr[:4], WKDName: addr, Fingerprint: "f", PublicKey: []byte("pub"), PrivateKey: []byte("priv")}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func putBlob(t *testing.T, s *Store, content string) BlobRef {
	t.Helper()
	ref, err := s.Blobs().Put(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestReopenKeepsSchemaAndData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	opts := testOptions(t)
	s, err := Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	testUser(t, s, "alice@example.org")
	s.Close()
	s, err = Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.UserByAddress(ctx, "ALICE@example.org")
	if err != nil || u.Address != "alice@example.org" {
		t.Fatalf("user after reopen: %v %v", u, err)
	}
	if err := s.CreateUser(ctx, &User{Address: "alice@example.org", AddressHash: "x", WKDName: "x", PublicKey: []byte{1}, PrivateKey: []byte{1}}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	if _, err := s.UserByAddress(ctx, "nobody@example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
}

func TestTrust(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "bob@example.net")
	if a, _ := s.TrustedAddress(ctx, u.ID, "h1"); a != "" {
		t.Fatal("trusted before anything")
	}
	s.Allow(ctx, u.ID, "h1", "one@example.org")
	s.NoteCorrespondent(ctx, u.ID, Correspondent{Hash: "h2", Address: "two@example.org"})
	s.NoteCorrespondent(ctx, u.ID, Correspondent{Hash: "h3"}) // noted before addresses were kept
	for h, want := range map[string]string{"h1": "one@example.org", "h2": "two@example.org", "h3": "", "h4": ""} {
		if a, err := s.TrustedAddress(ctx, u.ID, h); a != want || err != nil {
			t.Errorf("TrustedAddress(%s) = %q, %v; want %q", h, a, err, want)
		}
	}
}

func TestFirstSighting(t *testing.T) {
	t.Parallel()
	s, clk := openTest(t)
	ctx := context.Background()
	for i, want := range []bool{true, false} {
		if fresh, err := s.FirstSighting(ctx, "d1", 10*time.Minute); fresh != want || err != nil {
			t.Fatalf("sighting %d = %v, %v; want %v", i, fresh, err, want)
		}
	}
	clk.Add(10 * time.Minute)
	if fresh, _ := s.FirstSighting(ctx, "d1", 10*time.Minute); !fresh {
		t.Error("after the window: want fresh again")
	}
	clk.Add(10 * time.Minute)
	if n, err := s.SweepSeenRequests(ctx); n != 1 || err != nil {
		t.Errorf("sweep = %d, %v; want 1", n, err)
	}
}

func TestPins(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	p, err := s.PinKey(ctx, "Carol@Example.com", "fp1", []byte("k1"))
	if err != nil || p.Fingerprint != "fp1" {
		t.Fatalf("pin: %v %v", p, err)
	}
	p, _ = s.PinKey(ctx, "carol@example.com", "fp2", []byte("k2"))
	if p.Fingerprint != "fp1" {
		t.Fatalf("second pin replaced the first: %v", p.Fingerprint)
	}
	if err := s.OfferKey(ctx, "carol@example.com", "fp2", []byte("k2")); err != nil {
		t.Fatal(err)
	}
	p, _ = s.PinnedKey(ctx, "carol@example.com")
	if p.OfferedFingerprint != "fp2" {
		t.Fatalf("offer not recorded: %+v", p)
	}
	p, err = s.AcceptOfferedKey(ctx, "carol@example.com")
	if err != nil || p.Fingerprint != "fp2" || p.OfferedFingerprint != "" {
		t.Fatalf("accept: %+v %v", p, err)
	}
	if _, err := s.AcceptOfferedKey(ctx, "carol@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("accept with nothing offered: %v", err)
	}
}

func TestTicketLifecycle(t *testing.T) {
	t.Parallel()
	s, clk := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "bob@example.net")
	tk := &Ticket{ID: "t_1", SenderHash: "s", RecipientHash: u.AddressHash, UserID: u.ID, Worktype: "pow",
		Challenge: []byte(`{}`), Needed: 2, Expires: clk.Now().Add(time.Hour), Blocks: 1, Bytes: 1000}
	if err := s.CreateTicket(ctx, tk); err != nil {
		t.Fatal(err)
	}
	ref := putBlob(t, s, "catalog bytes")
	if err := s.PutUpload(ctx, "t_1", "catalog", ref); !errors.Is(err, ErrTicketNotValid) {
		t.Fatalf("upload before valid: %v", err)
	}
	got, err := s.AddProofs(ctx, "t_1", []string{"1", "1"}, 10*time.Minute)
	if err != nil || got.Done != 1 || got.Valid {
		t.Fatalf("first proofs: %+v %v", got, err)
	}
	clk.Add(time.Minute)
	got, err = s.AddProofs(ctx, "t_1", []string{"1", "2"}, 10*time.Minute)
	if err != nil || got.Done != 2 || !got.Valid || !got.Expires.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("second proofs: %+v %v", got, err)
	}
	if err := s.PutUpload(ctx, "t_1", "catalog", ref); err != nil {
		t.Fatal(err)
	}
	hdr := putBlob(t, s, "header")
	s.PutUpload(ctx, "t_1", "header", hdr)
	m := &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceTicket, Trace: []byte("Received: x\r\n")}
	if err := s.CompleteTicket(ctx, "t_1", m, map[string]string{"catalog": "catalog"}, map[string]BlobRef{"catalog": ref}, []byte("sig"), "m1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteTicket(ctx, "t_1", m, nil, nil, nil, "m2"); !errors.Is(err, ErrTicketCompleted) {
		t.Fatalf("second complete: %v", err)
	}
	if err := s.PutUpload(ctx, "t_1", "catalog", ref); !errors.Is(err, ErrTicketCompleted) {
		t.Fatalf("upload after complete: %v", err)
	}
	// The header upload was dropped with the ticket's uploads; the catalog
	// lives on in the message.
	var refs int
	s.read.QueryRow(`SELECT refs FROM blobs WHERE hash = ?`, ref.Hash).Scan(&refs)
	if refs != 1 {
		t.Errorf("catalog refs = %d, want 1", refs)
	}
	s.read.QueryRow(`SELECT refs FROM blobs WHERE hash = ?`, hdr.Hash).Scan(&refs)
	if refs != 0 {
		t.Errorf("header refs = %d, want 0", refs)
	}
}

func TestTicketExpiryAndSweep(t *testing.T) {
	t.Parallel()
	s, clk := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "bob@example.net")
	s.CreateTicket(ctx, &Ticket{ID: "t_2", UserID: u.ID, Valid: true, Expires: clk.Now().Add(time.Minute), Blocks: 1, Bytes: 100})
	ref := putBlob(t, s, "part")
	if err := s.PutUpload(ctx, "t_2", "blocks/b1", ref); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if _, err := s.CheckTicket(ctx, "t_2", true); !errors.Is(err, ErrTicketExpired) {
		t.Fatalf("expired ticket: %v", err)
	}
	up, tk, err := s.SweepTickets(ctx, time.Hour)
	if err != nil || up != 1 || tk != 0 {
		t.Fatalf("sweep = %d %d %v", up, tk, err)
	}
	if _, err := s.CheckTicket(ctx, "t_2", true); !errors.Is(err, ErrTicketExpired) {
		t.Fatalf("swept ticket still answers expired: %v", err)
	}
	clk.Add(2 * time.Hour)
	n, err := s.SweepBlobs(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("SweepBlobs = %d, %v", n, err)
	}
	if _, err := s.Blobs().Open(ref.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("swept blob still there: %v", err)
	}
	if _, tk, _ = s.SweepTickets(ctx, time.Hour); tk != 1 {
		t.Fatalf("old ticket not forgotten")
	}
}

func TestDeliverFilesWithUIDs(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "bob@example.net")
	events, cancel := s.Hub().Subscribe(u.ID)
	defer cancel()
	for i := 1; i <= 3; i++ {
		d, err := s.DeliverMessage(ctx, &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceMX,
			Blobs: map[string]BlobRef{"catalog": putBlob(t, s, "c"+string(rune('0'+i)))}, Mailbox: "INBOX", Auth: "none"})
		if err != nil {
			t.Fatal(err)
		}
		if d.UID != uint32(i) {
			t.Fatalf("uid = %d, want %d", d.UID, i)
		}
		if e := <-events; e.Kind != EventNewMessage || e.UID != uint32(i) {
			t.Fatalf("event = %+v", e)
		}
	}
	// Deleting the last mailbox entry deletes the message and unreferences
	// its blobs.
	if _, err := s.write.Exec(`DELETE FROM mailbox_messages WHERE uid = 1`); err != nil {
		t.Fatal(err)
	}
	var n int
	s.read.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n)
	if n != 2 {
		t.Fatalf("messages = %d after delete", n)
	}
	s.read.QueryRow(`SELECT COUNT(*) FROM blobs WHERE refs = 0`).Scan(&n)
	if n != 1 {
		t.Fatalf("unreferenced blobs = %d", n)
	}
}

func TestMigrationAppliedOutOfOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	opts := testOptions(t)
	s, err := Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	// A database that had a higher migration before a lower one landed.
	// (0231 alters the tables 0002 makes, so it is missing too.)
	for _, q := range []string{`DELETE FROM schema_migrations WHERE version IN (2, 231)`, `DROP TABLE deliveries`,
		`DROP TABLE outbox_recipients`, `DROP TABLE outbox_blobs`, `DROP TABLE outbox`} {
		if _, err := s.write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(ctx, dir, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.Deliveries(ctx, 1); err != nil {
		t.Fatalf("migration 2 not reapplied: %v", err)
	}
}

// TestAuthResultsKept: the legacy checks' results stored with a message
// come back with it, whichever way it is read; other mail has none.
func TestAuthResultsKept(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "bob@example.net")
	const results = "spf=pass smtp.mailfrom=a@legacy.example\ndkim=none\ndmarc=none header.from=legacy.example"
	var ids []int64
	for i, r := range []string{results, ""} {
		d, err := s.DeliverMessage(ctx, &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceMX,
			Blobs: map[string]BlobRef{"catalog": putBlob(t, s, "c"+string(rune('0'+i)))}, AuthResults: r})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.MessageID)
	}
	m, err := s.SealedMessage(ctx, ids[0])
	if err != nil || m.AuthResults != results {
		t.Errorf("SealedMessage: %q, %v", m.AuthResults, err)
	}
	ms, err := s.SealedMessages(ctx, ids)
	if err != nil || ms[ids[0]].AuthResults != results || ms[ids[1]].AuthResults != "" {
		t.Errorf("SealedMessages: %v", err)
	}
}

// A migration that fails leaves the schema as it was: the pending
// migrations before it in the same run are not applied either (they are
// one transaction), and the next start applies them all again.
func TestMigrationsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	good := migration{version: 9001, name: "9001_good.sql", sql: `CREATE TABLE good_9001 (id INTEGER PRIMARY KEY)`}
	bad := migration{version: 9002, name: "9002_bad.sql", sql: `CREATE TABLE deliveries (id INTEGER PRIMARY KEY)`} // exists
	if err := s.apply(ctx, []migration{good, bad}); err == nil {
		t.Fatal("a failing migration applied")
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if applied[good.version] {
		t.Error("the migration before the failing one is recorded as applied")
	}
	if _, err := s.write.ExecContext(ctx, `SELECT id FROM good_9001`); err == nil {
		t.Error("the migration before the failing one left its table")
	}
	if err := s.apply(ctx, []migration{good}); err != nil {
		t.Fatalf("applying it again: %v", err)
	}
}
