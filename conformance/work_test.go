package conformance_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"strings"
	"testing"
)

// challenge is the "pow" object of a ticket answer (docs/protocol.md §3.2).
type challenge struct {
	bits  int
	data  [32]byte
	count int
	b64   string // data as the server wrote it
}

// challengeOf reads the challenge of an untrusted ticket answer: worktype
// "pow" and {"bits": N, "data": "<base64 32 bytes>", "count": N}.
func challengeOf(t testing.TB, ticket map[string]any) challenge {
	t.Helper()
	if wt, _ := ticket["worktype"].(string); wt != "pow" {
		t.Fatalf("ticket worktype %v, want \"pow\" (docs/protocol.md §3.2); ticket %v", ticket["worktype"], ticket)
	}
	p, ok := ticket["pow"].(map[string]any)
	if !ok {
		t.Fatalf("ticket has no \"pow\" object (docs/protocol.md §3.2): %v", ticket)
	}
	c := challenge{bits: int(num(t, p, "bits")), count: int(num(t, p, "count")), b64: str(t, p, "data")}
	d, err := base64.StdEncoding.DecodeString(c.b64)
	if err != nil || len(d) != 32 {
		t.Fatalf("pow.data %q is not base64 of 32 bytes (docs/protocol.md §3.2): %v", c.b64, err)
	}
	copy(c.data[:], d)
	return c
}

// powHash is h = SHA-256(d || uint64_big_endian(p)) of docs/protocol.md §3.2.
func powHash(data [32]byte, p uint64) [32]byte {
	var in [40]byte
	copy(in[:], data[:])
	binary.BigEndian.PutUint64(in[32:], p)
	return sha256.Sum256(in[:])
}

// zeroBits counts the leading zero bits of h from the most significant bit
// of byte 0 (docs/protocol.md §3.6).
func zeroBits(h [32]byte) int {
	n := 0
	for _, b := range h {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// solves reports whether p is a valid proof for c.
func (c challenge) solves(p uint64) bool { return zeroBits(powHash(c.data, p)) >= c.bits }

// find returns n proofs, searching from start in steps of +1 (up) or -1
// (down), that satisfy keep and are not in skip.
func (c challenge) find(t testing.TB, start uint64, up bool, n int, skip map[uint64]bool, keep func(p uint64, h [32]byte) bool) []uint64 {
	t.Helper()
	var out []uint64
	p := start
	for tries := 0; len(out) < n; tries++ {
		if tries > 1<<26 {
			t.Fatalf("no proof found after %d tries (bits %d)", tries, c.bits)
		}
		if !skip[p] && keep(p, powHash(c.data, p)) {
			out = append(out, p)
		}
		if up {
			p++
		} else {
			p--
		}
	}
	return out
}

// solve returns n distinct valid proofs not in skip.
func (c challenge) solve(t testing.TB, n int, skip map[uint64]bool) []uint64 {
	t.Helper()
	return c.find(t, 0, true, n, skip, func(_ uint64, h [32]byte) bool { return zeroBits(h) >= c.bits })
}

// proofsBody is {"pow": {"proofs": [...]}} with the proofs written as JSON
// integers by hand (never through float64).
func proofsBody(ps ...uint64) []byte {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.FormatUint(p, 10)
	}
	return []byte(`{"pow": {"proofs": [` + strings.Join(s, ", ") + `]}}`)
}

// parseProofs reads {"pow": {"proofs": [...]}} exactly: every proof a JSON
// integer in [0, 2^64), decoded without floating point.
func parseProofs(body []byte) ([]uint64, bool) {
	var w struct {
		Pow struct {
			Proofs []json.Number `json:"proofs"`
		} `json:"pow"`
	}
	if json.Unmarshal(body, &w) != nil || w.Pow.Proofs == nil {
		return nil, false
	}
	out := make([]uint64, len(w.Pow.Proofs))
	for i, n := range w.Pow.Proofs {
		v, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}
