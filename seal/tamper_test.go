package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// flips yields every single-bit change of b (positions from the list, or
// all positions when nil).
func flips(b []byte, positions []int, f func(pos int, bit uint, changed []byte)) {
	if positions == nil {
		for i := range b {
			positions = append(positions, i)
		}
	}
	changed := bytes.Clone(b)
	for _, pos := range positions {
		for bit := range uint(8) {
			changed[pos] ^= 1 << bit
			f(pos, bit, changed)
			changed[pos] ^= 1 << bit
		}
	}
}

// TestTamperPart flips every bit of small parts: reading never ends without
// an error (plaintext may stream before the error; that is the contract).
func TestTamperPart(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	for _, n := range []int{0, 1, 100} {
		enc := sealPart(t, k, pseudo(n, 11))
		flips(enc, nil, func(pos int, bit uint, changed []byte) {
			_, err := openPart(k, changed)
			wantSealError(t, err, fmt.Sprintf("part byte %d bit %d", pos, bit))
		})
	}
}

// TestTamperPartFramed samples flips in a part spanning several partial
// length chunks, hitting every framing octet.
func TestTamperPartFramed(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	enc := sealPart(t, k, pseudo(2*chunkSize+300, 12))
	var positions []int
	for i := 0; i < len(enc); i += 4099 {
		positions = append(positions, i)
	}
	// Outer and inner framing octets: tag and first length, the version,
	// the chunk boundaries, the last bytes (MDC).
	for _, p := range []int{0, 1, 2, 3, 19, 20, 21, 22, 1 + 1 + chunkSize, 2 + 1 + chunkSize, 2 + 2*(chunkSize+1)} {
		positions = append(positions, p)
	}
	for i := len(enc) - 30; i < len(enc); i++ {
		positions = append(positions, i)
	}
	flips(enc, positions, func(pos int, bit uint, changed []byte) {
		_, err := openPart(k, changed)
		wantSealError(t, err, fmt.Sprintf("part byte %d bit %d", pos, bit))
	})
}

func TestTamperCatalog(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	k := newKey(t)
	for _, signer := range []*openpgp.Entity{alice, nil} {
		enc := sealCatalog(t, k, []byte(testCatalog), signer)
		flips(enc, nil, func(pos int, bit uint, changed []byte) {
			c, err := k.OpenCatalog(bytes.NewReader(changed), 1<<20)
			if err == nil {
				t.Fatalf("catalog byte %d bit %d: opened, plaintext equal %v", pos, bit, bytes.Equal(c.Plaintext, []byte(testCatalog)))
			}
			wantSealError(t, err, "catalog")
		})
	}
}

// TestTamperPKESK flips every bit of a PKESK: Unwrap fails, or (for bits
// the algorithm ignores) yields the very same session key, never another
// one. The ignored bits are the 0x40 prefix octet of the ephemeral
// Curve25519 point, low bits of its MPI bit count that do not change its
// octet count, and the point's top bit, which X25519 masks (12 of 768).
func TestTamperPKESK(t *testing.T) {
	t.Parallel()
	bob := newEntity(t, "bob")
	k := newKey(t)
	pkesk, err := k.Wrap(bob)
	if err != nil {
		t.Fatal(err)
	}
	same := 0
	flips(pkesk, nil, func(pos int, bit uint, changed []byte) {
		got, err := Unwrap(changed, bob)
		switch {
		case err == nil && got.key == k.key:
			same++
		case err == nil:
			t.Fatalf("byte %d bit %d: unwrapped a different key", pos, bit)
		case !errors.Is(err, ErrTampered) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrWrongKey):
			t.Fatalf("byte %d bit %d: unexpected error %v", pos, bit, err)
		}
	})
	t.Logf("%d of %d bit flips left the key intact (ignored bits)", same, 8*len(pkesk))
}

func TestTruncation(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	k := newKey(t)
	part := sealPart(t, k, pseudo(chunkSize+1000, 13))
	for n := 0; n < len(part); n += 1 + n/64 {
		_, err := openPart(k, part[:n])
		wantSealError(t, err, fmt.Sprintf("part cut at %d", n))
	}
	for n := len(part) - 64; n < len(part); n++ {
		_, err := openPart(k, part[:n])
		wantSealError(t, err, fmt.Sprintf("part cut at %d", n))
	}
	cat := sealCatalog(t, k, []byte(testCatalog), alice)
	for n := range len(cat) {
		_, err := k.OpenCatalog(bytes.NewReader(cat[:n]), 1<<20)
		wantSealError(t, err, fmt.Sprintf("catalog cut at %d", n))
	}
	bob := newEntity(t, "bob")
	pkesk, _ := k.Wrap(bob)
	for n := range len(pkesk) {
		if _, err := Unwrap(pkesk[:n], bob); err == nil {
			t.Fatalf("PKESK cut at %d unwrapped", n)
		}
	}
}

// TestTamperStreamingEndsInError shows the streaming contract: altered
// ciphertext late in a big part yields plaintext first, then an error
// instead of io.EOF.
func TestTamperStreamingEndsInError(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	plain := pseudo(4*chunkSize, 14)
	enc := sealPart(t, k, plain)
	enc[len(enc)-100] ^= 1
	r, err := k.DecryptPart(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("got %v, want ErrTampered", err)
	}
	if len(got) == 0 {
		t.Fatal("expected unverified plaintext before the error")
	}
	// The error is sticky.
	if _, err2 := r.Read(make([]byte, 10)); !errors.Is(err2, ErrTampered) {
		t.Fatalf("second read: %v", err2)
	}
}
