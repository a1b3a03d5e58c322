package seal

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
)

// Part readers sharing PartBuffers read every size right, also after a
// tampered part failed with the buffers mid-way and from several
// goroutines at once, and a closed one reads nothing more.
func TestOpenPartWith(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	var parts [][]byte
	var encs [][]byte
	for _, n := range partSizes {
		plain := pseudo(n, uint64(n)+3)
		parts = append(parts, plain)
		encs = append(encs, sealPart(t, k, plain))
	}
	var pb PartBuffers
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range encs {
				i := (i + g*5) % len(encs)
				if i%4 == 1 && len(encs[i]) > 40 {
					bad := bytes.Clone(encs[i])
					bad[len(bad)/2] ^= 1
					if got, err := readPooled(k, bad, &pb); err == nil {
						t.Errorf("part %d: tampered part read as %d bytes", i, len(got))
					}
				}
				got, err := readPooled(k, encs[i], &pb)
				if err != nil || !bytes.Equal(got, parts[i]) {
					t.Errorf("part of %d bytes: %d bytes back, %v", len(parts[i]), len(got), err)
				}
			}
		}()
	}
	wg.Wait()

	r, err := k.OpenPartWith(io.NopCloser(bytes.NewReader(encs[len(encs)-1])), &pb)
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 10))
	r.Close()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, errPartClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

func readPooled(k *SessionKey, enc []byte, pb *PartBuffers) ([]byte, error) {
	r, err := k.OpenPartWith(io.NopCloser(bytes.NewReader(enc)), pb)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
