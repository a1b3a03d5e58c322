package store

import (
	"context"
	"errors"
	"testing"
)

// TestRemoveUser: removing a user deletes their mail (filed and waiting),
// mailboxes, tickets and trust, leaves no blob referenced, takes them out
// of aliases, and leaves other users alone.
func TestRemoveUser(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "carol@example.org")
	other := testUser(t, s, "dan@example.org")
	fileTest(t, s, u, "INBOX", "filed")
	if _, err := s.DeliverMessage(ctx, &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceMX,
		Blobs: map[string]BlobRef{"catalog": putBlob(t, s, "waiting")}}); err != nil {
		t.Fatal(err)
	}
	fileTest(t, s, other, "INBOX", "dan's")
	if err := s.Allow(ctx, u.ID, "h", "x@example.net"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Alias{
		{Address: "solo@example.org", AddressHash: "s", WKDName: "s", Targets: []string{"carol@example.org"}},
		{Address: "team@example.org", AddressHash: "t", WKDName: "t", Targets: []string{"carol@example.org", "dan@example.org"}},
	} {
		if err := s.AddAlias(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.RemoveUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Messages != 2 || len(r.AliasesDeleted) != 1 || len(r.AliasesChanged) != 1 {
		t.Fatalf("removal = %+v", r)
	}
	for q, want := range map[string]int{
		`SELECT COUNT(*) FROM messages`:             1,
		`SELECT COUNT(*) FROM mailboxes`:            len(DefaultMailboxes),
		`SELECT COUNT(*) FROM allow_list`:           0,
		`SELECT COUNT(*) FROM blobs WHERE refs > 0`: 1,
		`SELECT COUNT(*) FROM aliases`:              1,
	} {
		if n := count(t, s, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	if _, err := s.UserByAddress(ctx, "carol@example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("user still there: %v", err)
	}
	if _, err := s.KeyGeneration(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key generation of a removed user: %v", err)
	}
	if _, err := s.RemoveUser(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
}

// TestUpdateKeysBumpsGeneration: each update bumps the generation, and an
// update from a stale read is refused.
func TestUpdateKeysBumpsGeneration(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "erin@example.org")
	k := KeyUpdate{Fingerprint: u.Fingerprint, PublicKey: u.PublicKey, PrivateKey: []byte("new")}
	if err := s.UpdateKeys(ctx, u.ID, u.Generation, k); err != nil {
		t.Fatal(err)
	}
	if gen, _ := s.KeyGeneration(ctx, u.ID); gen != u.Generation+1 {
		t.Fatalf("generation %d after one update", gen)
	}
	if err := s.UpdateKeys(ctx, u.ID, u.Generation, k); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("stale update: %v", err)
	}
}

// BenchmarkKeyGeneration is the check every IMAP command and SMTP
// transaction of a logged-in user now makes.
func BenchmarkKeyGeneration(b *testing.B) {
	s, _ := openTest(b)
	u := testUser(b, s, "bench@example.org")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.KeyGeneration(ctx, u.ID); err != nil {
			b.Fatal(err)
		}
	}
}
