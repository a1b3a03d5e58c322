package pow

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"testing"
)

// seq is the data 0x00, 0x01, …, 0x1f used by the hand-computed vectors.
func seq() *[32]byte {
	var d [32]byte
	for i := range d {
		d[i] = byte(i)
	}
	return &d
}

// naiveZeroBits counts the leading zero bits of h one byte at a time with
// math/bits: an implementation independent of hasZeroPrefix.
func naiveZeroBits(h []byte) int {
	n := 0
	for _, b := range h {
		n += bits.LeadingZeros8(b)
		if b != 0 {
			break
		}
	}
	return n
}

func TestVerifyVectors(t *testing.T) {
	t.Parallel()
	// Computed with Python's hashlib:
	// sha256(data + struct.pack('>Q', p)), leading zeros of the digest.
	tests := []struct {
		data  *[32]byte
		proof uint64
		zeros int // exact number of leading zero bits of the hash
	}{
		{seq(), 537, 8},    // 00c4797b…
		{seq(), 1755, 12},  // 000ebf07…
		{seq(), 13402, 16}, // 0000ea7b…
		{new([32]byte), 0, 2},
		{new([32]byte), 1, 4},
		{new([32]byte), 1<<64 - 1, 1},
	}
	for _, tt := range tests {
		for b := 0; b <= tt.zeros+2; b++ {
			want := b <= tt.zeros
			if got := Verify(tt.data, b, tt.proof); got != want {
				t.Errorf("Verify(data, %d, %d) = %v, want %v (hash has %d zero bits)", b, tt.proof, got, want, tt.zeros)
			}
		}
	}
}

func TestVerifyDigestPrefix(t *testing.T) {
	t.Parallel()
	// The vectors' digests, to pin that the hash input is data || BE(p).
	var in [40]byte
	copy(in[:], seq()[:])
	binary.BigEndian.PutUint64(in[32:], 13402)
	h := sha256.Sum256(in[:])
	if h[0] != 0 || h[1] != 0 || h[2] != 0xea || h[3] != 0x7b {
		t.Fatalf("digest starts %x, want 0000ea7b", h[:4])
	}
}

func TestVerifyBitsZeroAcceptsAll(t *testing.T) {
	t.Parallel()
	for _, p := range []uint64{0, 1, 2, 1 << 63, 1<<64 - 1} {
		if !Verify(seq(), 0, p) {
			t.Errorf("Verify(bits 0, %d) = false", p)
		}
	}
}

func TestVerifyMatchesNaive(t *testing.T) {
	t.Parallel()
	d := seq()
	for p := range uint64(5000) {
		var in [40]byte
		copy(in[:], d[:])
		binary.BigEndian.PutUint64(in[32:], p)
		h := sha256.Sum256(in[:])
		z := naiveZeroBits(h[:])
		for _, b := range []int{z - 1, z, z + 1, 8, 9, 16} {
			if b < 0 {
				continue
			}
			if got, want := Verify(d, b, p), b <= z; got != want {
				t.Fatalf("Verify(bits %d, %d) = %v, want %v", b, p, got, want)
			}
		}
	}
}

func TestHasZeroPrefixWide(t *testing.T) {
	t.Parallel()
	// Digests no proof will ever reach, to cover bits > 64.
	for zeroBytes := 0; zeroBytes <= 32; zeroBytes++ {
		for _, next := range []byte{0x80, 0x40, 0x01} {
			var h [32]byte
			if zeroBytes < 32 {
				h[zeroBytes] = next
			}
			z := naiveZeroBits(h[:])
			for b := max(0, z-9); b <= min(z+9, MaxBits+1); b++ {
				if got, want := hasZeroPrefix(&h, b), b <= z; got != want {
					t.Fatalf("hasZeroPrefix(%x, %d) = %v, want %v", h, b, got, want)
				}
			}
		}
	}
}

func TestPrefixMask(t *testing.T) {
	t.Parallel()
	tests := map[int]uint64{-1: 0, 0: 0, 1: 1 << 63, 8: 0xff << 56, 63: ^uint64(1), 64: ^uint64(0), 200: ^uint64(0)}
	for n, want := range tests {
		if got := prefixMask(n); got != want {
			t.Errorf("prefixMask(%d) = %#x, want %#x", n, got, want)
		}
	}
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	// Not parallel: AllocsPerRun refuses to run in parallel tests.
	d := seq()
	if n := testing.AllocsPerRun(100, func() { Verify(d, 16, 13402) }); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
}
