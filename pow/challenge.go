package pow

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
)

// Name is the name of the proof-of-work worktype of protocol version 1.
const Name = "pow"

// MaxBits is the largest meaningful difficulty: every bit of the hash.
const MaxBits = 256

// Seed is a challenge's 32 random bytes. In JSON it is a string in standard
// padded base64.
type Seed [32]byte

// MarshalText encodes s in standard padded base64.
func (s Seed) MarshalText() ([]byte, error) {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(s)))
	base64.StdEncoding.Encode(out, s[:])
	return out, nil
}

// UnmarshalText decodes standard padded base64 of exactly 32 bytes.
func (s *Seed) UnmarshalText(text []byte) error {
	var buf [33]byte // one spare byte to notice over-long input
	if base64.StdEncoding.EncodedLen(len(s)) != len(text) || bytes.ContainsAny(text, "\r\n") {
		return fmt.Errorf("data: want %d base64 characters for %d bytes", base64.StdEncoding.EncodedLen(len(s)), len(s))
	}
	n, err := base64.StdEncoding.Strict().Decode(buf[:], text)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if n != len(s) {
		return fmt.Errorf("data: %d bytes, want %d", n, len(s))
	}
	copy(s[:], buf[:n])
	return nil
}

// Challenge is the "pow" object of a ticket answer (docs/protocol.md §3.2), for
// example {"bits":22,"data":"<base64 32 bytes>","count":4}.
type Challenge struct {
	Bits  int  `json:"bits"`
	Data  Seed `json:"data"`
	Count int  `json:"count"`
}

// NewChallenge makes a challenge of difficulty d with fresh data from
// crypto/rand.
func NewChallenge(d Difficulty) (Challenge, error) {
	c := Challenge{Bits: d.Bits, Count: d.Count}
	if err := c.Validate(); err != nil {
		return Challenge{}, err
	}
	// crypto/rand.Read never fails (it crashes the program instead).
	rand.Read(c.Data[:])
	return c, nil
}

// Validate reports whether c is a challenge a solver can work on and a
// server may hand out.
func (c *Challenge) Validate() error {
	if c.Bits < 0 || c.Bits > MaxBits {
		return fmt.Errorf("%w: bits %d not in [0, %d]", ErrBadChallenge, c.Bits, MaxBits)
	}
	if c.Count < 1 {
		return fmt.Errorf("%w: count %d, want at least 1", ErrBadChallenge, c.Count)
	}
	return nil
}

// ExpectedHashes is the mean number of hash evaluations needed to find n
// distinct proofs for c: n * 2^bits.
func (c *Challenge) ExpectedHashes(n int) float64 {
	return math.Ldexp(float64(n), c.Bits)
}

// ParseChallenge decodes and validates a challenge. Every field is
// required; bits and count must be JSON integers.
func ParseChallenge(raw []byte) (Challenge, error) {
	var wire struct {
		Bits  *int  `json:"bits"`
		Data  *Seed `json:"data"`
		Count *int  `json:"count"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return Challenge{}, fmt.Errorf("%w: %w", ErrBadChallenge, err)
	}
	switch {
	case wire.Bits == nil:
		return Challenge{}, fmt.Errorf("%w: missing bits", ErrBadChallenge)
	case wire.Data == nil:
		return Challenge{}, fmt.Errorf("%w: missing data", ErrBadChallenge)
	case wire.Count == nil:
		return Challenge{}, fmt.Errorf("%w: missing count", ErrBadChallenge)
	}
	c := Challenge{Bits: *wire.Bits, Data: *wire.Data, Count: *wire.Count}
	if err := c.Validate(); err != nil {
		return Challenge{}, err
	}
	return c, nil
}
