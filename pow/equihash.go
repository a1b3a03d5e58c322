package pow

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// EquihashName is the name of the memory-hard worktype (docs/protocol.md
// §3.8.1).
const EquihashName = "equihash"

// Bounds on an equihash challenge (docs/protocol.md §3.8.1). MaxEquihashC
// keeps one run's lists (2^(c+1) entries) under about 400 MiB, so a
// hostile server cannot make a sender allocate without bound; MaxEquihashN
// is what one 128-bit string holds.
const (
	MinEquihashK = 2
	MaxEquihashK = 7
	MinEquihashC = 8
	MaxEquihashC = 21
	MaxEquihashN = 128
)

// EquihashChallenge is the "equihash" object of a ticket answer, for example
// {"n":96,"k":5,"data":"<base64 32 bytes>","count":2}.
type EquihashChallenge struct {
	N     int  `json:"n"`
	K     int  `json:"k"`
	Data  Seed `json:"data"`
	Count int  `json:"count"`
}

// C is the collision length n/(k+1) in bits; a run's list has 2^(C+1)
// strings.
func (c *EquihashChallenge) C() int { return c.N / (c.K + 1) }

// Validate reports whether c is a challenge a solver can work on and a
// server may hand out.
func (c *EquihashChallenge) Validate() error {
	switch {
	case c.K < MinEquihashK || c.K > MaxEquihashK:
		return fmt.Errorf("%w: k %d not in [%d, %d]", ErrBadChallenge, c.K, MinEquihashK, MaxEquihashK)
	case c.N < 1 || c.N > MaxEquihashN || c.N%(c.K+1) != 0:
		return fmt.Errorf("%w: n %d not a multiple of k+1 = %d in [1, %d]", ErrBadChallenge, c.N, c.K+1, MaxEquihashN)
	case c.C() < MinEquihashC || c.C() > MaxEquihashC:
		return fmt.Errorf("%w: n/(k+1) = %d not in [%d, %d]", ErrBadChallenge, c.C(), MinEquihashC, MaxEquihashC)
	case c.Count < 1:
		return fmt.Errorf("%w: count %d, want at least 1", ErrBadChallenge, c.Count)
	}
	return nil
}

// ExpectedWork is the mean cost of n proofs in pow's unit, SHA-256
// evaluations, so that one [SolveOptions].MaxExpectedWork bounds every
// worktype alike: a run hashes 2^(c+1) strings, costs about six times that
// hashing with its k sorts (measured), and yields about two proofs
// (docs/protocol.md §3.8.1); n·2^(c+3) rounds that up.
func (c *EquihashChallenge) ExpectedWork(n int) float64 {
	return math.Ldexp(float64(n), c.C()+3)
}

// ParseEquihashChallenge decodes and validates a challenge; every member
// is required.
func ParseEquihashChallenge(raw []byte) (EquihashChallenge, error) {
	var wire struct {
		N     *int  `json:"n"`
		K     *int  `json:"k"`
		Data  *Seed `json:"data"`
		Count *int  `json:"count"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return EquihashChallenge{}, fmt.Errorf("%w: %w", ErrBadChallenge, err)
	}
	if wire.N == nil || wire.K == nil || wire.Count == nil || wire.Data == nil {
		return EquihashChallenge{}, fmt.Errorf("%w: n, k, data and count are required", ErrBadChallenge)
	}
	c := EquihashChallenge{N: *wire.N, K: *wire.K, Data: *wire.Data, Count: *wire.Count}
	if err := c.Validate(); err != nil {
		return EquihashChallenge{}, err
	}
	return c, nil
}

// EquihashProof is one solution: a run's nonce and its 2^k indices in the
// order of the tree that collides them.
type EquihashProof struct {
	Nonce   uint64   `json:"nonce"`
	Indices []uint32 `json:"indices"`
}

// Key is the proof's canonical form, the one [Equihash.Check] returns:
// "NONCE:I1,I2,…" in decimal.
func (p *EquihashProof) Key() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(p.Nonce, 10))
	for i, x := range p.Indices {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	}
	return b.String()
}

// Equihash is the memory-hard "equihash" worktype (docs/protocol.md
// §3.8.1): Biryukov and Khovratovich's generalized-birthday puzzle over
// SHA-256, with algorithm binding. The fields are the server's parameters;
// a sender's zero value solves whatever challenge it is given.
type Equihash struct {
	N, K  int // string length in bits and rounds; N % (K+1) == 0
	Count int // proofs a ticket needs
}

var _ Worktype = Equihash{}

// DefaultEquihash is the parameter set `bridge pow bench` measures and a
// server offers unless configured otherwise: about one second of one core
// per ticket (docs/protocol.md §3.8.1 has the figures).
var DefaultEquihash = Equihash{N: 114, K: 5, Count: 3}

// Name returns "equihash".
func (Equihash) Name() string { return EquihashName }

// NewChallenge makes a challenge of the worktype's own parameters (the
// difficulty d is pow's and is not used) with fresh random data.
func (e Equihash) NewChallenge(Difficulty) (json.RawMessage, int, error) {
	c := EquihashChallenge{N: e.N, K: e.K, Count: e.Count}
	if err := c.Validate(); err != nil {
		return nil, 0, fmt.Errorf("equihash: new challenge: %w", err)
	}
	rand.Read(c.Data[:])
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, 0, fmt.Errorf("equihash: new challenge: %w", err)
	}
	return raw, c.Count, nil
}

// equihashString is X(nonce, i): the first n bits of
// SHA-256(data || uint64_be(nonce) || uint32_be(i)), left-aligned in two
// big-endian words; the other bits are zero.
func equihashString(data *[32]byte, nonce uint64, i uint32, n int) [2]uint64 {
	var in [44]byte
	copy(in[:32], data[:])
	binary.BigEndian.PutUint64(in[32:], nonce)
	binary.BigEndian.PutUint32(in[40:], i)
	h := sha256.Sum256(in[:])
	return truncate([2]uint64{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])}, n)
}

// truncate keeps the first n bits of x.
func truncate(x [2]uint64, n int) [2]uint64 {
	if n < 64 {
		return [2]uint64{x[0] &^ (^uint64(0) >> n), 0}
	}
	return [2]uint64{x[0], x[1] &^ (^uint64(0) >> (n - 64))}
}

// leadingZero reports whether the first b bits of x are zero.
func leadingZero(x [2]uint64, b int) bool {
	return truncate(x, b) == [2]uint64{}
}
