package store

import (
	"context"
	"testing"
	"time"
)

func TestTicketedEvidence(t *testing.T) {
	t.Parallel()
	s, clk := openTest(t)
	ctx := context.Background()
	for _, d := range []string{"example.net", "sub.example.net", "other.example"} {
		if e, err := s.TicketedEvidence(ctx, d); err != nil || e.Any() {
			t.Fatalf("%s before anything: %+v %v", d, e, err)
		}
	}
	if err := s.RecordTicketedDelivery(ctx, "Example.NET", "https://mail.example.net:8443"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if err := s.RecordTicketedDelivery(ctx, "example.net", "https://new.example.net"); err != nil {
		t.Fatal(err)
	}
	e, err := s.TicketedEvidence(ctx, "example.net")
	if err != nil || !e.Any() || e.Endpoint != "https://new.example.net" || e.LastDelivered.Unix() != clk.Now().Unix() {
		t.Fatalf("after deliveries: %+v %v", e, err)
	}
	// Pinned keys count for their own domain only, not a parent's.
	if _, err := s.PinKey(ctx, "carol@sub.example.net", "fp", []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PinKey(ctx, "dave@other.example", "fp", []byte("k")); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.TicketedEvidence(ctx, "sub.example.net"); e.PinnedKeys != 1 || e.Endpoint != "" || !e.Any() {
		t.Errorf("sub.example.net: %+v", e)
	}
	if e, _ := s.TicketedEvidence(ctx, "example.net"); e.PinnedKeys != 0 {
		t.Errorf("example.net counts a subdomain's pins: %+v", e)
	}
	if e, _ := s.TicketedEvidence(ctx, "her.example"); e.Any() {
		t.Errorf("her.example matches other.example: %+v", e)
	}
}
