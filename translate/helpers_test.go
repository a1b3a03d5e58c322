package translate

import (
	"bytes"
	"testing"
)

// splitBytes splits m in memory.
func splitBytes(t testing.TB, m []byte, opts Options) (*Catalog, *MemorySink) {
	t.Helper()
	sink := NewMemorySink()
	c, err := Split(bytes.NewReader(m), int64(len(m)), sink, opts)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	return c, sink
}

// joinBytes joins c from src in memory.
func joinBytes(t testing.TB, c *Catalog, src Source) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Join(&b, c, src); err != nil {
		t.Fatalf("Join: %v", err)
	}
	return b.Bytes()
}

// roundTrip checks Join(Split(m)) == m, MessageSize, and that the catalog
// survives Marshal/ParseCatalog.
func roundTrip(t testing.TB, m []byte, opts Options) (*Catalog, *MemorySink) {
	t.Helper()
	c, sink := splitBytes(t, m, opts)
	want := m
	if opts.StripBcc {
		want = refStripBcc(m)
	}
	got := joinBytes(t, c, sink)
	if !bytes.Equal(got, want) {
		t.Fatalf("Join(Split(m)) differs from m at byte %d (len %d vs %d)", firstDiff(got, want), len(got), len(want))
	}
	if n := c.MessageSize(); n != int64(len(want)) {
		t.Fatalf("MessageSize = %d, want %d", n, len(want))
	}
	j, err := c.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	c2, err := ParseCatalog(j)
	if err != nil {
		t.Fatalf("ParseCatalog(Marshal()): %v\n%s", err, j)
	}
	j2, _ := c2.Marshal()
	if !bytes.Equal(j, j2) {
		t.Fatalf("Marshal not stable:\n%s\n%s", j, j2)
	}
	if got := joinBytes(t, c2, sink); !bytes.Equal(got, want) {
		t.Fatalf("Join of the parsed catalog differs at byte %d", firstDiff(got, want))
	}
	return c, sink
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// refStripBcc is an independent, line-based statement of StripBcc.
func refStripBcc(m []byte) []byte {
	var out []byte
	inBcc, inHeader := false, true
	for len(m) > 0 {
		i := bytes.IndexByte(m, '\n')
		line := m
		if i >= 0 {
			line = m[:i+1]
		}
		m = m[len(line):]
		if inHeader && (string(line) == "\n" || string(line) == "\r\n") {
			inHeader = false
		}
		if !inHeader {
			out = append(out, line...)
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, ok := bytes.Cut(line, []byte(":"))
			inBcc = ok && string(bytes.ToLower(bytes.TrimRight(name, " \t"))) == "bcc"
		}
		if !inBcc {
			out = append(out, line...)
		}
	}
	return out
}
