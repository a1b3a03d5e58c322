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

// TestGuardIdenticalAttemptsAreOneGuess: many connections trying the
// same name and password at once are one attempt in flight, so none is
// refused while it is checked; distinct ones still count, and so does
// every failure.
func TestGuardIdenticalAttemptsAreOneGuess(t *testing.T) {
	t.Parallel()
	g := &Guard{Limit: 3, Delay: -1}
	ctx := context.Background()
	const ip = "192.0.2.1"
	var dones []func(context.Context, bool)
	for i := range 20 {
		done, err := g.BeginLogin(ip, "bob@example.net", "pw")
		if err != nil {
			t.Fatalf("identical attempt %d refused: %v", i, err)
		}
		dones = append(dones, done)
	}
	// Two distinct guesses fill the limit with the first attempt.
	for _, pw := range []string{"a", "b"} {
		done, err := g.BeginLogin(ip, "bob@example.net", pw)
		if err != nil {
			t.Fatalf("guess %s refused: %v", pw, err)
		}
		dones = append(dones, done)
	}
	if _, err := g.BeginLogin(ip, "bob@example.net", "c"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fourth distinct attempt in flight: %v", err)
	}
	if _, err := g.Begin(ip); !errors.Is(err, ErrThrottled) {
		t.Fatalf("attempt without a password past the limit: %v", err)
	}
	for _, done := range dones {
		done(ctx, false)
	}
	if done, err := g.BeginLogin(ip, "bob@example.net", "c"); err != nil {
		t.Fatalf("after the attempts ended: %v", err)
	} else {
		done(ctx, false)
	}
	// Identical wrong attempts in parallel each count as a failure.
	var wrong []func(context.Context, bool)
	for range 3 {
		done, err := g.BeginLogin("192.0.2.2", "bob@example.net", "wrong")
		if err != nil {
			t.Fatal(err)
		}
		wrong = append(wrong, done)
	}
	for _, done := range wrong {
		done(ctx, true)
	}
	if _, err := g.BeginLogin("192.0.2.2", "bob@example.net", "pw"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("not refused after 3 identical failures: %v", err)
	}
}
