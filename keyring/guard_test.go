package keyring

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	g := &Guard{Limit: 3, Delay: -1, Now: func() time.Time { return now }}
	ctx := context.Background()
	fail := func(ip string) {
		done, err := g.Begin(ip)
		if err != nil {
			t.Fatalf("%s refused: %v", ip, err)
		}
		done(ctx, true)
	}
	for i := 0; i < 3; i++ {
		fail("192.0.2.1")
	}
	if _, err := g.Begin("192.0.2.1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("not refused after 3 failures: %v", err)
	}
	if done, err := g.Begin("192.0.2.2"); err != nil {
		t.Fatal("another address refused")
	} else {
		done(ctx, false)
	}
	// One IPv6 host is one /64.
	fail("2001:db8::1")
	fail("2001:db8::2")
	fail("2001:db8::ffff:1")
	if _, err := g.Begin("2001:db8::99"); err == nil {
		t.Fatal("IPv6 /64 not counted together")
	}
	// Attempts still being checked count: parallel guesses cannot pass.
	for i := 0; i < 3; i++ {
		if _, err := g.Begin("198.51.100.1"); err != nil {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if _, err := g.Begin("198.51.100.1"); err == nil {
		t.Fatal("a fourth parallel attempt was let through")
	}
	now = now.Add(6 * time.Minute)
	if _, err := g.Begin("192.0.2.1"); err != nil {
		t.Fatal("still refused after the ban")
	}
}
