package seal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memChildEnv makes the test binary act as the streaming child: the value
// is the number of bytes to stream.
const memChildEnv = "SEAL_MEMORY_CHILD_BYTES"

// peakRSSLimit is what sealing and opening a part may use, whatever its size.
const peakRSSLimit = 64 << 20

// TestStreamingMemory seals a large generated part into a file and opens it
// again in a child process (the test binary re-executed), which reports its
// own peak RSS (VmHWM); the parent asserts it stays under 64 MiB. The size
// is 1 GiB (about 6 s here); -short makes it 64 MiB.
func TestStreamingMemory(t *testing.T) {
	if os.Getenv(memChildEnv) != "" {
		t.Skip("running as the child")
	}
	t.Parallel()
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamingMemoryChild$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", memChildEnv, size))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var hwm int64 = -1
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "VmHWM-bytes: "); ok {
			hwm, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if hwm < 0 {
		t.Fatalf("child did not report VmHWM:\n%s", out)
	}
	t.Logf("sealed and opened %d MiB in %v; child peak RSS %.1f MiB", size>>20, time.Since(start).Round(time.Millisecond), float64(hwm)/(1<<20))
	if hwm >= peakRSSLimit {
		t.Fatalf("peak RSS %d bytes, limit %d", hwm, peakRSSLimit)
	}
}

// TestStreamingMemoryChild is the child of TestStreamingMemory.
func TestStreamingMemoryChild(t *testing.T) {
	v := os.Getenv(memChildEnv)
	if v == "" {
		t.Skip("only run by TestStreamingMemory")
	}
	size, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	f, err := os.CreateTemp(t.TempDir(), "part")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// Seal: generated plaintext -> EncryptPart -> file, hashing the
	// plaintext on the way in.
	in := sha256.New()
	gen := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), in)
	pw, err := k.EncryptPart(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(pw, gen); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}

	// Open: file -> DecryptPart -> hash.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	r, err := k.DecryptPart(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	out := sha256.New()
	n, err := io.Copy(out, r)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Fatalf("round trip of %d bytes gave %d bytes or another hash", size, n)
	}

	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("VmHWM-bytes: %d\n", kb<<10)
			return
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
}
