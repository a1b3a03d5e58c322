package pow

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"
)

// solveAll runs Solve and returns every proof it submitted, in order.
func solveAll(t *testing.T, c Challenge, opts SolveOptions) []uint64 {
	t.Helper()
	var got []uint64
	err := Solve(t.Context(), c, opts, func(batch []uint64) error {
		if len(batch) == 0 {
			t.Error("empty batch submitted")
		}
		got = append(got, batch...)
		return nil
	})
	if err != nil {
		t.Errorf("Solve: %v", err) // not Fatal: may run off the test goroutine
	}
	return got
}

func checkDistinctValid(t *testing.T, c Challenge, proofs []uint64, want int) {
	t.Helper()
	if len(proofs) != want {
		t.Errorf("%d proofs submitted, want %d", len(proofs), want)
	}
	seen := map[uint64]bool{}
	for _, p := range proofs {
		if seen[p] {
			t.Errorf("proof %d submitted twice", p)
		}
		seen[p] = true
		if !Verify((*[32]byte)(&c.Data), c.Bits, p) {
			t.Errorf("proof %d does not verify at %d bits", p, c.Bits)
		}
	}
}

func TestSolveFindsDistinctProofs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ bits, count, workers int }{
		{0, 5, 0},
		{1, 3, 1},
		{8, 4, 0},
		{10, 6, 3},
		{12, 4, 0},
	} {
		c, err := NewChallenge(Difficulty{Bits: tt.bits, Count: tt.count})
		if err != nil {
			t.Fatal(err)
		}
		got := solveAll(t, c, SolveOptions{Workers: tt.workers})
		checkDistinctValid(t, c, got, tt.count)
	}
}

func TestSolveNeeded(t *testing.T) {
	t.Parallel()
	c, err := NewChallenge(Difficulty{Bits: 6, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := solveAll(t, c, SolveOptions{Needed: 3})
	checkDistinctValid(t, c, got, 3)
}

func TestSolveProgress(t *testing.T) {
	t.Parallel()
	c, err := NewChallenge(Difficulty{Bits: 10, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	var reports []Progress
	submitted := 0
	opts := SolveOptions{
		ProgressInterval: time.Millisecond,
		Progress: func(p Progress) {
			if p.Found != submitted {
				t.Errorf("progress says %d found after %d submitted", p.Found, submitted)
			}
			reports = append(reports, p)
		},
	}
	err = Solve(t.Context(), c, opts, func(batch []uint64) error {
		submitted += len(batch)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	last := reports[len(reports)-1]
	if last.Found != 4 || last.Count != 4 || last.Hashes == 0 {
		t.Errorf("last progress %+v, want 4 of 4 found and some hashes", last)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Hashes < reports[i-1].Hashes || reports[i].Found < reports[i-1].Found {
			t.Errorf("progress went backwards: %+v then %+v", reports[i-1], reports[i])
		}
	}
}

func TestSolveStopsOnCancel(t *testing.T) {
	t.Parallel()
	c := Challenge{Bits: MaxBits, Data: Seed(*seq()), Count: 1} // never solved
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var final Progress
	opts := SolveOptions{
		ProgressInterval: time.Millisecond,
		Progress: func(p Progress) {
			if p.Hashes > 0 {
				cancel() // the workers are running: stop them
			}
			final = p
		},
	}
	err := Solve(ctx, c, opts, func([]uint64) error {
		t.Error("submit called for an unsolvable challenge")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Solve = %v, want context.Canceled", err)
	}
	if final.Hashes == 0 || final.Found != 0 {
		t.Errorf("final progress %+v", final)
	}
}

func TestSolveStopsAtDeadline(t *testing.T) {
	t.Parallel()
	c := Challenge{Bits: MaxBits, Data: Seed(*seq()), Count: 1}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := Solve(ctx, c, SolveOptions{}, func([]uint64) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Solve = %v, want context.DeadlineExceeded", err)
	}
}

func TestSolveSubmitError(t *testing.T) {
	t.Parallel()
	c, err := NewChallenge(Difficulty{Bits: 4, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("server said 422")
	calls := 0
	err = Solve(t.Context(), c, SolveOptions{}, func([]uint64) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("Solve = %v after %d submits, want the submit error after 1", err, calls)
	}
}

func TestSolveTooHard(t *testing.T) {
	t.Parallel()
	c := Challenge{Bits: 30, Data: Seed(*seq()), Count: 4}
	err := Solve(t.Context(), c, SolveOptions{MaxExpectedWork: 1 << 31}, func([]uint64) error { return nil })
	if !errors.Is(err, ErrTooHard) {
		t.Errorf("Solve = %v, want ErrTooHard", err)
	}
	err = Solve(t.Context(), Challenge{Bits: 4, Count: 2}, SolveOptions{MaxExpectedWork: 32}, func([]uint64) error { return nil })
	if err != nil {
		t.Errorf("Solve within budget: %v", err)
	}
}

func TestSolveBadChallenge(t *testing.T) {
	t.Parallel()
	err := Solve(t.Context(), Challenge{Bits: 300, Count: 1}, SolveOptions{}, func([]uint64) error { return nil })
	if !errors.Is(err, ErrBadChallenge) {
		t.Errorf("Solve = %v, want ErrBadChallenge", err)
	}
	err = HashWork{}.Solve(t.Context(), json.RawMessage(`{"bits":4}`), SolveOptions{}, func(json.RawMessage) error { return nil })
	if !errors.Is(err, ErrBadChallenge) {
		t.Errorf("HashWork.Solve = %v, want ErrBadChallenge", err)
	}
}

// TestHashWorkEndToEnd plays both sides through the JSON of docs/protocol.md §3.2:
// the server's challenge, the client's submissions, the server's check and
// de-duplication across posts.
func TestHashWorkEndToEnd(t *testing.T) {
	t.Parallel()
	reg := NewRegistry(HashWork{})
	w, ok := reg.Choose([]string{"pow"})
	if !ok {
		t.Fatal("pow not chosen")
	}
	challenge, needed, err := w.NewChallenge(Difficulty{Bits: 9, Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]bool{}
	err = w.Solve(t.Context(), challenge, SolveOptions{}, func(sub json.RawMessage) error {
		keys, err := w.Check(challenge, sub)
		if err != nil {
			return err
		}
		for _, k := range keys {
			counted[k] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	if len(counted) != needed {
		t.Errorf("%d proofs counted, want %d", len(counted), needed)
	}
}

func TestSolversFindDifferentProofs(t *testing.T) {
	t.Parallel()
	c, err := NewChallenge(Difficulty{Bits: 4, Count: 8})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for _, p := range solveAll(t, c, SolveOptions{}) {
				mu.Lock()
				seen[p]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Random starting offsets make a shared proof a 2^-50 event.
	for p, n := range seen {
		if n > 1 {
			t.Errorf("both solvers found proof %d", p)
		}
	}
}

func TestScanWrapsAround(t *testing.T) {
	t.Parallel()
	var in [40]byte
	copy(in[:], seq()[:])
	n, p, ok := scan(&in, 0, 1<<64-2, 4)
	if !ok || n != 1 || p != 1<<64-2 {
		t.Errorf("scan at bits 0 = %d, %d, %v", n, p, ok)
	}
	n, _, ok = scan(&in, MaxBits, 1<<64-2, 4)
	if ok || n != 4 {
		t.Errorf("scan across 2^64 = %d hashes, found %v; want 4, false", n, ok)
	}
}
