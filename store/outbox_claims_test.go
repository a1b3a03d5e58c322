package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
	"tollbridge/internal/testkit"
)

// twoNodes opens the same store twice, as two bridges sharing it would,
// with one clock and a 30 s lease.
func twoNodes(t *testing.T) (a, b *Store, clk *testkit.Clock) {
	t.Helper()
	clk = testkit.NewClock(time.Unix(1_800_000_000, 0))
	dir, opts := t.TempDir(), withClock(testOptions(t), clk.Now)
	opts.Lease = 30 * time.Second
	var err error
	for i, s := range []**Store{&a, &b} {
		opts.Node = fmt.Sprintf("node%d", i+1)
		if *s, err = Open(context.Background(), dir, opts); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*s).Close() })
	}
	return a, b, clk
}

func enqueue(t *testing.T, s *Store, recipients ...string) {
	t.Helper()
	m := &OutboxMessage{Sender: "alice@example.org", SessionKey: []byte("k")}
	if err := s.EnqueueOutbox(context.Background(), m, recipients); err != nil {
		t.Fatal(err)
	}
}

func ids(rs []*OutboxRecipient) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func minute(int) time.Duration { return time.Minute }

// TestClaimsLeasedAcrossNodes: a recipient claimed by one node is left
// alone by another while the claim is renewed, even when its next attempt
// is due; when the claiming node dies (no renewal), another takes it over
// as soon as the lease ends, not at the next attempt.
func TestClaimsLeasedAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, clk := twoNodes(t)
	enqueue(t, a, "bob@example.net", "carol@example.net")
	got, err := a.ClaimDue(ctx, 1, nil, minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("node1 claim: %v %v", ids(got), err)
	}
	mine := got[0].ID
	other, err := b.ClaimDue(ctx, 5, nil, minute)
	if err != nil || len(other) != 1 || other[0].ID == mine {
		t.Fatalf("node2 claim: %v %v (node1 holds %d)", ids(other), err, mine)
	}
	// node1's attempt runs past its next attempt, renewing its claim.
	for range 4 {
		clk.Add(20 * time.Second)
		if err := a.RenewClaims(ctx, []int64{mine}); err != nil {
			t.Fatal(err)
		}
		if got, err := b.ClaimDue(ctx, 5, map[int64]bool{other[0].ID: true}, minute); err != nil || len(got) != 0 {
			t.Fatalf("node2 took a renewed claim after %v: %v %v", clk.Now().Sub(time.Unix(1_800_000_000, 0)), ids(got), err)
		}
	}
	// node1 dies: its lease runs out 30 s after the last renewal and
	// node2 takes the recipient over at once (its next attempt, claimed
	// anew, is a minute later still).
	clk.Add(31 * time.Second)
	got, err = b.ClaimDue(ctx, 5, map[int64]bool{other[0].ID: true}, minute)
	if err != nil || len(got) != 1 || got[0].ID != mine || got[0].Tries != 2 {
		t.Fatalf("node2 takeover: %v %v", ids(got), err)
	}
	// A released claim waits for its next attempt, on any node.
	if err := b.ReleaseClaim(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if got, err := a.ClaimDue(ctx, 5, map[int64]bool{other[0].ID: true}, minute); err != nil || len(got) != 0 {
		t.Fatalf("released claim taken before its next attempt: %v %v", ids(got), err)
	}
}

// TestReleaseOthersClaims: a process that alone serves the store (SQLite
// under serve's lock) takes back at once what a dead predecessor (another
// node name) left claimed, without waiting for the lease; its own claims
// and finished recipients stay as they are.
func TestReleaseOthersClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dead, next, _ := twoNodes(t)
	enqueue(t, dead, "bob@example.net", "carol@example.net", "dave@example.net")
	cut, err := dead.ClaimDue(ctx, 2, nil, minute)
	if err != nil || len(cut) != 2 {
		t.Fatalf("claim: %v %v", ids(cut), err)
	}
	own, err := next.ClaimDue(ctx, 5, nil, minute)
	if err != nil || len(own) != 1 {
		t.Fatalf("own claim: %v %v", ids(own), err)
	}
	n, err := next.ReleaseOthersClaims(ctx)
	if err != nil || n != 2 {
		t.Fatalf("ReleaseOthersClaims = %d, %v; want 2", n, err)
	}
	got, err := next.ClaimDue(ctx, 5, map[int64]bool{own[0].ID: true}, minute)
	if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint(ids(cut)) {
		t.Fatalf("after release: %v %v, want %v due at once", ids(got), err, ids(cut))
	}
	for _, r := range got {
		if r.Tries != 2 {
			t.Errorf("recipient %d: tries %d, want 2 (the cut-off attempt counts)", r.ID, r.Tries)
		}
	}
	if n, err := next.ReleaseOthersClaims(ctx); err != nil || n != 0 {
		t.Fatalf("second release = %d, %v; want 0 (its own claims stay)", n, err)
	}
}

// TestClaimsConcurrent: nodes claiming at the same moment never get the
// same recipient.
func TestClaimsConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, _ := twoNodes(t)
	const n = 60
	var rcpts []string
	for i := range n {
		rcpts = append(rcpts, fmt.Sprintf("r%d@example.net", i))
	}
	enqueue(t, a, rcpts...)
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			for range n {
				got, err := s.ClaimDue(ctx, 3, nil, minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					if prev, dup := seen[r.ID]; dup {
						t.Errorf("recipient %d claimed by %s and %s", r.ID, prev, s.Node())
					}
					seen[r.ID] = s.Node()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d of %d", len(seen), n)
	}
}
