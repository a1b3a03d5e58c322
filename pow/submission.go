package pow

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Submission is the "pow" object of POST /v1/tickets/{id}, for example
// {"proofs":[1834,99120]}. Proofs are JSON integers in [0, 2^64).
type Submission struct {
	Proofs []uint64 `json:"proofs"`
}

// UnmarshalJSON decodes a submission strictly (see [ParseSubmission]).
func (s *Submission) UnmarshalJSON(raw []byte) error {
	proofs, err := ParseSubmission(raw)
	if err != nil {
		return err
	}
	s.Proofs = proofs
	return nil
}

// ParseSubmission decodes a submission without going through floating
// point: each proof must be written as a plain decimal integer in
// [0, 2^64), so 1e3, 1.0, -1, "7" and 18446744073709551616 are all
// ErrMalformed, as is a missing or null "proofs". Other members are ignored
// so that later versions may add some.
func ParseSubmission(raw []byte) ([]uint64, error) {
	var wire struct {
		Proofs *[]json.RawMessage `json:"proofs"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if wire.Proofs == nil {
		return nil, fmt.Errorf("%w: missing proofs", ErrMalformed)
	}
	proofs := make([]uint64, len(*wire.Proofs))
	for i, lit := range *wire.Proofs {
		p, err := parseProof(lit)
		if err != nil {
			return nil, fmt.Errorf("%w: proof %d: %w", ErrMalformed, i, err)
		}
		proofs[i] = p
	}
	return proofs, nil
}

// parseProof reads one JSON value that must be a non-negative integer
// literal fitting in 64 bits. JSON's grammar already forbids leading zeros
// and a leading '+', so only digits remain to be checked.
func parseProof(lit []byte) (uint64, error) {
	if len(lit) == 0 {
		return 0, fmt.Errorf("empty value")
	}
	for _, c := range lit {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%.32q is not a non-negative integer", lit)
		}
	}
	p, err := strconv.ParseUint(string(lit), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%.32s does not fit in 64 bits", lit)
	}
	return p, nil
}
