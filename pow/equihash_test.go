package pow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// smallEquihash is a challenge small enough for tests: a run is 2^11
// strings and well under a millisecond.
func smallEquihash(count int) EquihashChallenge {
	return EquihashChallenge{N: 60, K: 5, Data: Seed(*seq()), Count: count}
}

// solveSmall finds n proofs of c on one worker.
func solveSmall(t testing.TB, c EquihashChallenge, n int) []EquihashProof {
	t.Helper()
	var got []EquihashProof
	err := SolveEquihash(t.Context(), c, SolveOptions{Workers: 1, Needed: n}, func(ps []EquihashProof) error {
		got = append(got, ps...)
		return nil
	})
	if err != nil || len(got) != n {
		t.Fatalf("SolveEquihash = %d proofs, %v; want %d", len(got), err, n)
	}
	return got
}

func TestEquihashSolveThenCheck(t *testing.T) {
	t.Parallel()
	c := smallEquihash(3)
	proofs := solveSmall(t, c, 3)
	ch, _ := json.Marshal(c)
	sub, _ := json.Marshal(map[string]any{"proofs": proofs})
	keys, err := Equihash{}.Check(ch, sub)
	if err != nil || len(keys) != 3 {
		t.Fatalf("Check(solved) = %q, %v; want 3 keys", keys, err)
	}
	for i, p := range proofs {
		if keys[i] != p.Key() {
			t.Errorf("key %d = %q, want %q", i, keys[i], p.Key())
		}
	}
	// The same proofs again in one post count once each.
	sub, _ = json.Marshal(map[string]any{"proofs": append(proofs, proofs...)})
	if keys, err := (Equihash{}).Check(ch, sub); err != nil || len(keys) != 3 {
		t.Errorf("Check(proofs twice) = %q, %v; want 3 keys", keys, err)
	}
}

// TestEquihashWrongProofs breaks a valid proof in each way the rules of
// docs/protocol.md §3.8.1 forbid: each is ErrWrongProof and no proof of
// the post counts.
func TestEquihashWrongProofs(t *testing.T) {
	t.Parallel()
	c := smallEquihash(1)
	good := solveSmall(t, c, 1)[0]
	mutate := map[string]func(p *EquihashProof){
		"nonce + 1":          func(p *EquihashProof) { p.Nonce++ },
		"halves swapped":     func(p *EquihashProof) { p.Indices = append(p.Indices[16:], p.Indices[:16]...) },
		"first pair swapped": func(p *EquihashProof) { p.Indices[0], p.Indices[1] = p.Indices[1], p.Indices[0] },
		"index repeated":     func(p *EquihashProof) { p.Indices[31] = p.Indices[30] },
		"index out of range": func(p *EquihashProof) { p.Indices[31] = 1 << 11 },
		"one index short":    func(p *EquihashProof) { p.Indices = p.Indices[:31] },
		"one index more":     func(p *EquihashProof) { p.Indices = append(p.Indices, 1<<11-1) },
		"sorted":             func(p *EquihashProof) { slices.Sort(p.Indices) },
		"index + 1":          func(p *EquihashProof) { p.Indices[5]++ },
	}
	ch, _ := json.Marshal(c)
	for name, f := range mutate {
		bad := EquihashProof{Nonce: good.Nonce, Indices: slices.Clone(good.Indices)}
		f(&bad)
		sub, _ := json.Marshal(map[string]any{"proofs": []EquihashProof{good, bad}})
		keys, err := Equihash{}.Check(ch, sub)
		if !errors.Is(err, ErrWrongProof) || keys != nil {
			t.Errorf("%s: Check = %q, %v; want ErrWrongProof and nothing", name, keys, err)
		}
	}
}

func TestEquihashMalformed(t *testing.T) {
	t.Parallel()
	ch, _ := json.Marshal(smallEquihash(1))
	many := make([]EquihashProof, MaxEquihashProofsPerPost+1)
	tooMany, _ := json.Marshal(map[string]any{"proofs": many})
	tooLong, _ := json.Marshal(map[string]any{"proofs": []EquihashProof{{Indices: make([]uint32, 1<<MaxEquihashK+1)}}})
	for _, sub := range []string{
		``, `null`, `{}`, `{"proofs":null}`, `{"proofs":[{}]}`, `{"proofs":[{"nonce":1}]}`,
		`{"proofs":[{"indices":[]}]}`, `{"proofs":[{"nonce":-1,"indices":[]}]}`,
		`{"proofs":[{"nonce":1.0,"indices":[]}]}`, `{"proofs":[{"nonce":"1","indices":[]}]}`,
		`{"proofs":[{"nonce":1,"indices":[4294967296]}]}`, `{"proofs":[{"nonce":1,"indices":[1e3]}]}`,
		`{"proofs":[{"nonce":1,"indices":null}]}`, string(tooMany), string(tooLong),
	} {
		if _, err := (Equihash{}).Check(ch, json.RawMessage(sub)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(%.60s) = %v, want ErrMalformed", sub, err)
		}
	}
}

func TestEquihashChallengeBounds(t *testing.T) {
	t.Parallel()
	for _, c := range []EquihashChallenge{
		{N: 60, K: 1, Count: 1}, {N: 64, K: 8, Count: 1}, {N: 61, K: 5, Count: 1},
		{N: 42, K: 5, Count: 1}, {N: 110, K: 4, Count: 1}, {N: 138, K: 5, Count: 1}, {N: 144, K: 5, Count: 1}, {N: 60, K: 5, Count: 0},
	} {
		raw, _ := json.Marshal(c)
		if _, err := ParseEquihashChallenge(raw); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("ParseEquihashChallenge(%s) = %v, want ErrBadChallenge", raw, err)
		}
		if _, _, err := (Equihash{N: c.N, K: c.K, Count: c.Count}).NewChallenge(Difficulty{}); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("NewChallenge(%+v) = %v, want ErrBadChallenge", c, err)
		}
	}
	for _, raw := range []string{`{"k":5,"data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","count":1}`, `{"n":60,"k":5,"count":1}`} {
		if _, err := ParseEquihashChallenge([]byte(raw)); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("ParseEquihashChallenge(%s) = %v, want ErrBadChallenge", raw, err)
		}
	}
	raw, n, err := DefaultEquihash.NewChallenge(Difficulty{})
	if c, perr := ParseEquihashChallenge(raw); err != nil || perr != nil || n != DefaultEquihash.Count || c.N != DefaultEquihash.N {
		t.Errorf("DefaultEquihash.NewChallenge = %s, %d, %v (%v)", raw, n, err, perr)
	}
}

func TestEquihashTooHardAndCancel(t *testing.T) {
	t.Parallel()
	c := EquihashChallenge{N: 126, K: 6, Count: 2}
	err := SolveEquihash(t.Context(), c, SolveOptions{MaxExpectedWork: 1 << 18}, func([]EquihashProof) error { return nil })
	if !errors.Is(err, ErrTooHard) {
		t.Errorf("two proofs of c = 18 (2·2^21 hashes' worth) under MaxExpectedWork 2^18: %v, want ErrTooHard", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c = EquihashChallenge{N: 60, K: 5, Count: 1 << 20} // more proofs than it will find before ctx ends
	err = SolveEquihash(ctx, c, SolveOptions{Workers: 2}, func([]EquihashProof) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SolveEquihash after the deadline: %v", err)
	}
}

func ExampleEquihash() {
	c := EquihashChallenge{N: 60, K: 5, Data: Seed{}, Count: 1}
	_ = SolveEquihash(context.Background(), c, SolveOptions{Workers: 1}, func(ps []EquihashProof) error {
		fmt.Println(len(ps[0].Indices), VerifyEquihash(&c, &ps[0]))
		return nil
	})
	// Output: 32 <nil>
}

// BenchmarkEquihashVerify is the server's cost of one valid proof at the
// default parameters (goal: well under a millisecond).
func BenchmarkEquihashVerify(b *testing.B) {
	c := EquihashChallenge{N: DefaultEquihash.N, K: DefaultEquihash.K, Data: Seed(*seq()), Count: 1}
	p := solveSmall(b, c, 1)[0]
	for b.Loop() {
		if err := VerifyEquihash(&c, &p); err != nil {
			b.Fatal(err)
		}
	}
}
