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

// Grow reserves memory once for what the caller will write, keeps what
// was written, and reserves nothing past the memory limit.
func TestSpoolGrow(t *testing.T) {
	t.Parallel()
	sp := NewSpool(t.TempDir(), 1<<20)
	defer sp.Close()
	sp.Write([]byte("head:"))
	sp.Grow(64 << 10)
	reserved := cap(sp.mem)
	if reserved < 5+64<<10 {
		t.Fatalf("Grow(64 KiB) reserved %d bytes in all", reserved)
	}
	chunk := bytes.Repeat([]byte("x"), 1024)
	for range 63 {
		sp.Write(chunk)
	}
	if cap(sp.mem) != reserved {
		t.Errorf("writing what Grow reserved grew the buffer again: %d, then %d", reserved, cap(sp.mem))
	}
	if got := sp.Bytes(); !bytes.HasPrefix(got, []byte("head:xxx")) || len(got) != 5+63*1024 {
		t.Errorf("content after Grow: %d bytes, %q…", len(got), got[:8])
	}
	big := NewSpool(t.TempDir(), 1000)
	defer big.Close()
	big.Grow(2000)
	if cap(big.mem) != 0 {
		t.Errorf("Grow past the memory limit reserved %d bytes", cap(big.mem))
	}
}
