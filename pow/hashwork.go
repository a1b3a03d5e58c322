package pow

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// HashWork is the "pow" worktype: SHA-256 partial preimages (docs/protocol.md §3.2).
// The zero value is ready to use.
type HashWork struct{}

var _ Worktype = HashWork{}

// Name returns "pow".
func (HashWork) Name() string { return Name }

// NewChallenge makes a [Challenge] of difficulty d with fresh random data.
func (HashWork) NewChallenge(d Difficulty) (json.RawMessage, int, error) {
	c, err := NewChallenge(d)
	if err != nil {
		return nil, 0, fmt.Errorf("pow: new challenge: %w", err)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, 0, fmt.Errorf("pow: new challenge: %w", err)
	}
	return raw, c.Count, nil
}

// Check verifies a [Submission] against a [Challenge]. The canonical key of
// a proof is its decimal form (strconv.FormatUint(p, 10)).
func (HashWork) Check(challenge, submission json.RawMessage) ([]string, error) {
	c, err := ParseChallenge(challenge)
	if err != nil {
		return nil, fmt.Errorf("pow: check: %w", err)
	}
	proofs, err := ParseSubmission(submission)
	if err != nil {
		return nil, fmt.Errorf("pow: check: %w", err)
	}
	distinct, err := CheckProofs(&c, proofs)
	if err != nil {
		return nil, fmt.Errorf("pow: check: %w", err)
	}
	keys := make([]string, len(distinct))
	for i, p := range distinct {
		keys[i] = strconv.FormatUint(p, 10)
	}
	return keys, nil
}

// Solve runs [Solve] on a JSON challenge and submits each batch of proofs
// as a JSON [Submission].
func (HashWork) Solve(ctx context.Context, challenge json.RawMessage, opts SolveOptions, submit func(json.RawMessage) error) error {
	c, err := ParseChallenge(challenge)
	if err != nil {
		return fmt.Errorf("pow: solve: %w", err)
	}
	return Solve(ctx, c, opts, func(proofs []uint64) error {
		raw, err := json.Marshal(Submission{Proofs: proofs})
		if err != nil {
			return err
		}
		return submit(raw)
	})
}

// CheckProofs verifies proofs against c and returns them without
// duplicates, in order of first appearance. If any proof is wrong it
// returns an error wrapping ErrWrongProof and no proofs.
func CheckProofs(c *Challenge, proofs []uint64) ([]uint64, error) {
	distinct := make([]uint64, 0, len(proofs))
	seen := make(map[uint64]struct{}, len(proofs))
	for _, p := range proofs {
		if _, dup := seen[p]; dup {
			continue
		}
		if !Verify((*[32]byte)(&c.Data), c.Bits, p) {
			return nil, fmt.Errorf("%w: %d", ErrWrongProof, p)
		}
		seen[p] = struct{}{}
		distinct = append(distinct, p)
	}
	return distinct, nil
}
