package pow

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// Verify reports whether proof solves a challenge with the given data and
// bits: SHA-256(data || uint64_big_endian(proof)) starts with bits zero bits,
// counted from the most significant bit of byte 0. It hashes 40 bytes once
// and does not allocate. bits ≤ 0 accepts every proof; bits > 256 none.
func Verify(data *[32]byte, bits int, proof uint64) bool {
	var in [40]byte
	copy(in[:32], data[:])
	binary.BigEndian.PutUint64(in[32:], proof)
	h := sha256.Sum256(in[:])
	return hasZeroPrefix(&h, bits)
}

// hasZeroPrefix reports whether the first n bits of h are zero.
func hasZeroPrefix(h *[32]byte, n int) bool {
	if n > 8*len(h) {
		return false
	}
	for i := 0; n > 0; i += 8 {
		w := binary.BigEndian.Uint64(h[i:])
		if n < 64 {
			return bits.LeadingZeros64(w) >= n
		}
		if w != 0 {
			return false
		}
		n -= 64
	}
	return true
}

// prefixMask has the top min(n, 64) bits set: a hash whose first 8 bytes,
// read big-endian, have no bit of the mask set passes the first 64 bits of
// the test, which settles it for n ≤ 64.
func prefixMask(n int) uint64 {
	switch {
	case n <= 0:
		return 0
	case n >= 64:
		return ^uint64(0)
	default:
		return ^uint64(0) << (64 - n)
	}
}
