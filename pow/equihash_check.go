package pow

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// MaxEquihashProofsPerPost bounds one submission, so that a post costs the
// server at most 64·2^k SHA-256 evaluations (about 2 ms at k = 7) however
// it is filled (docs/protocol.md §3.8.1).
const MaxEquihashProofsPerPost = 64

// ParseEquihashSubmission decodes {"proofs":[{"nonce":N,"indices":[…]}…]}
// strictly: nonces are plain decimal integers in [0, 2^64), indices in
// [0, 2^32), as for pow; anything else, a missing member, or more than
// [MaxEquihashProofsPerPost] proofs is ErrMalformed. Other members are
// ignored.
func ParseEquihashSubmission(raw []byte) ([]EquihashProof, error) {
	var wire struct {
		Proofs *[]struct {
			Nonce   json.RawMessage    `json:"nonce"`
			Indices *[]json.RawMessage `json:"indices"`
		} `json:"proofs"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if wire.Proofs == nil {
		return nil, fmt.Errorf("%w: missing proofs", ErrMalformed)
	}
	if len(*wire.Proofs) > MaxEquihashProofsPerPost {
		return nil, fmt.Errorf("%w: %d proofs in one post, at most %d", ErrMalformed, len(*wire.Proofs), MaxEquihashProofsPerPost)
	}
	proofs := make([]EquihashProof, len(*wire.Proofs))
	for i, w := range *wire.Proofs {
		if w.Nonce == nil || w.Indices == nil {
			return nil, fmt.Errorf("%w: proof %d: nonce and indices are required", ErrMalformed, i)
		}
		nonce, err := parseProof(w.Nonce)
		if err != nil {
			return nil, fmt.Errorf("%w: proof %d: nonce: %w", ErrMalformed, i, err)
		}
		proofs[i].Nonce = nonce
		if len(*w.Indices) > 1<<MaxEquihashK {
			return nil, fmt.Errorf("%w: proof %d: %d indices", ErrMalformed, i, len(*w.Indices))
		}
		for _, lit := range *w.Indices {
			x, err := parseProof(lit)
			if err != nil || x > 1<<32-1 {
				return nil, fmt.Errorf("%w: proof %d: index %.32s is not an integer in [0, 2^32)", ErrMalformed, i, lit)
			}
			proofs[i].Indices = append(proofs[i].Indices, uint32(x))
		}
	}
	return proofs, nil
}

// VerifyEquihash reports why p does not solve c, or nil when it does
// (docs/protocol.md §3.8.1): 2^k distinct indices below 2^(c+1), and at
// every level l of the binary tree over them, each block of 2^l strings
// XORs to l·c leading zero bits (all n at level k) with its left half's
// first index below its right half's. The cheap tests come first; the
// rest costs 2^k SHA-256 evaluations.
func VerifyEquihash(c *EquihashChallenge, p *EquihashProof) error {
	size := 1 << c.K
	if len(p.Indices) != size {
		return fmt.Errorf("%d indices, want 2^k = %d", len(p.Indices), size)
	}
	limit := uint32(1) << (c.C() + 1)
	sorted := slices.Clone(p.Indices)
	slices.Sort(sorted)
	for i, x := range sorted {
		if x >= limit {
			return fmt.Errorf("index %d not below 2^(n/(k+1)+1) = %d", x, limit)
		}
		if i > 0 && sorted[i-1] == x {
			return fmt.Errorf("index %d appears twice", x)
		}
	}
	for half := 1; half < size; half *= 2 {
		for j := 0; j < size; j += 2 * half {
			if p.Indices[j] >= p.Indices[j+half] {
				return fmt.Errorf("indices %d and %d out of order (block of %d at %d)", p.Indices[j], p.Indices[j+half], 2*half, j)
			}
		}
	}
	xs := make([][2]uint64, size)
	for i, x := range p.Indices {
		xs[i] = equihashString((*[32]byte)(&c.Data), p.Nonce, x, c.N)
	}
	for l := 1; l <= c.K; l++ {
		zero := l * c.C()
		if l == c.K {
			zero = c.N
		}
		for j := range len(xs) / 2 {
			xs[j] = [2]uint64{xs[2*j][0] ^ xs[2*j+1][0], xs[2*j][1] ^ xs[2*j+1][1]}
			if !leadingZero(xs[j], zero) {
				return fmt.Errorf("level %d, block %d: XOR lacks %d leading zero bits", l, j, zero)
			}
		}
		xs = xs[:len(xs)/2]
	}
	return nil
}

// Check verifies a submission against a challenge. Each proof's canonical
// key is [EquihashProof.Key]; a proof repeated in the post counts once.
func (Equihash) Check(challenge, submission json.RawMessage) ([]string, error) {
	c, err := ParseEquihashChallenge(challenge)
	if err != nil {
		return nil, fmt.Errorf("equihash: check: %w", err)
	}
	proofs, err := ParseEquihashSubmission(submission)
	if err != nil {
		return nil, fmt.Errorf("equihash: check: %w", err)
	}
	keys := make([]string, 0, len(proofs))
	for i := range proofs {
		key := proofs[i].Key()
		if slices.Contains(keys, key) {
			continue
		}
		if err := VerifyEquihash(&c, &proofs[i]); err != nil {
			return nil, fmt.Errorf("equihash: check: %w: proof %d (nonce %d): %w", ErrWrongProof, i, proofs[i].Nonce, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Solve runs [SolveEquihash] on a JSON challenge and submits each batch of
// proofs as a JSON submission.
func (Equihash) Solve(ctx context.Context, challenge json.RawMessage, opts SolveOptions, submit func(json.RawMessage) error) error {
	c, err := ParseEquihashChallenge(challenge)
	if err != nil {
		return fmt.Errorf("equihash: solve: %w", err)
	}
	return SolveEquihash(ctx, c, opts, func(proofs []EquihashProof) error {
		raw, err := json.Marshal(map[string][]EquihashProof{"proofs": proofs})
		if err != nil {
			return err
		}
		return submit(raw)
	})
}
