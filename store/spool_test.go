package store

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
)

func TestSpoolEncryptsOnDisk(t *testing.T) {
	t.Parallel()
	plain := make([]byte, 300_001)
	rand.New(rand.NewSource(1)).Read(plain[1000:])
	copy(plain, bytes.Repeat([]byte("secret "), 140))
	sp := NewSpool(t.TempDir(), 1000)
	defer sp.Close()
	for rest := plain; len(rest) > 0; {
		n := min(len(rest), 777)
		if _, err := sp.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if sp.f == nil {
		t.Fatal("not spooled to disk")
	}
	onDisk := make([]byte, len(plain))
	if _, err := sp.f.ReadAt(onDisk, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(onDisk, []byte("secret")) {
		t.Error("plaintext on disk")
	}
	for _, r := range [][2]int64{{0, 10}, {15, 33}, {999, 1002}, {4095, 70000}, {299_990, 300_001}} {
		got, err := io.ReadAll(sp.Section(r[0], r[1]-r[0]))
		if err != nil || !bytes.Equal(got, plain[r[0]:r[1]]) {
			t.Errorf("range %v: %v", r, err)
		}
	}
}
