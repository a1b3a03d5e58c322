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
	for i := 0; i < 3; i++ {
		if err := g.Check("192.0.2.1"); err != nil {
			t.Fatalf("refused after %d failures", i)
		}
		g.Failed(ctx, "192.0.2.1")
	}
	if err := g.Check("192.0.2.1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("not refused after 3 failures: %v", err)
	}
	if g.Check("192.0.2.2") != nil {
		t.Fatal("another address refused")
	}
	// One IPv6 host is one /64.
	g.Failed(ctx, "2001:db8::1")
	g.Failed(ctx, "2001:db8::2")
	g.Failed(ctx, "2001:db8::ffff:1")
	if g.Check("2001:db8::99") == nil {
		t.Fatal("IPv6 /64 not counted together")
	}
	now = now.Add(6 * time.Minute)
	if g.Check("192.0.2.1") != nil {
		t.Fatal("still refused after the ban")
	}
}
