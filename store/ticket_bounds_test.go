package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	t.Parallel()
	for ip, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":      "2001:db8:1:2::",
		"2001:db8:1:2:ffff::1":      "2001:db8:1:2::",
		"::ffff:192.0.2.7":          "::ffff:192.0.2.7",
		"not an address":            "not an address",
		"2001:0db8:0001:0002::abcd": "2001:db8:1:2::",
	} {
		if got := ClientKey(ip); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}

// TestPendingQuotaAndFailedCompletes: the store sums what open tickets
// hold per client key, refuses an upload beyond an UploadQuota, and closes
// a ticket at the limit-th failed completion, deleting its uploads.
func TestPendingQuotaAndFailedCompletes(t *testing.T) {
	t.Parallel()
	s, clk := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "bob@example.net")
	for _, tk := range []*Ticket{
		{ID: "t_1", ClientIP: "2001:db8::1"}, {ID: "t_2", ClientIP: "2001:db8::2"}, {ID: "t_3", ClientIP: "192.0.2.1"},
	} {
		tk.UserID, tk.Valid, tk.Expires, tk.Blocks, tk.Bytes = u.ID, true, clk.Now().Add(time.Hour), 1, 1000
		if err := s.CreateTicket(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	q := UploadQuota{PerClient: 30, Total: 40}
	if err := s.PutUploadWithin(ctx, "t_1", "catalog", putBlob(t, s, "0123456789"), q); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUploadWithin(ctx, "t_2", "catalog", putBlob(t, s, "0123456789abcdef"), q); err != nil {
		t.Fatal(err)
	}
	// t_1 and t_2 share a /64: 26 bytes pending, 5 more is too many.
	if err := s.PutUploadWithin(ctx, "t_1", "header", putBlob(t, s, "12345"), q); !errors.Is(err, ErrPendingQuota) {
		t.Fatalf("over the client quota: %v", err)
	}
	// Replacing an upload counts the difference.
	if err := s.PutUploadWithin(ctx, "t_1", "catalog", putBlob(t, s, "0123456789abcd"), q); err != nil {
		t.Fatalf("replacing: %v", err)
	}
	if err := s.PutUploadWithin(ctx, "t_3", "catalog", putBlob(t, s, "0123456789abc"), q); !errors.Is(err, ErrPendingQuota) {
		t.Fatalf("over the total: %v", err)
	}
	if c, total, err := s.PendingBytes(ctx, "2001:db8::"); err != nil || c != 30 || total != 30 {
		t.Fatalf("pending %d of %d, %v", c, total, err)
	}
	for i := 1; i <= 3; i++ {
		closed, err := s.FailComplete(ctx, "t_1", 3)
		if err != nil || closed != (i == 3) {
			t.Fatalf("failure %d: closed %v, %v", i, closed, err)
		}
	}
	if _, err := s.CheckTicket(ctx, "t_1", true); !errors.Is(err, ErrTicketExpired) {
		t.Fatalf("closed ticket: %v", err)
	}
	if c, total, err := s.PendingBytes(ctx, "2001:db8::"); err != nil || c != 16 || total != 16 {
		t.Fatalf("pending after close %d of %d, %v", c, total, err)
	}
	if _, err := s.FailComplete(ctx, "t_nope", 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown ticket: %v", err)
	}
}
