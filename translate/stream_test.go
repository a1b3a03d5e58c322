package translate

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"testing"
)

// genMessage is a multipart message with one base64 attachment of n
// bytes whose content is computed, not stored: ReadAt makes any range on
// the fly, so the message can be far larger than the test's memory.
type genMessage struct {
	prefix, suffix []byte
	n              int64 // decoded size of the attachment
	lines          int64 // base64 lines of 76 characters (the last may be shorter)
	bodyStart      int64
	bodyLen        int64
	size           int64
}

const genLineData = 57 // bytes per full 76-character base64 line

func newGenMessage(n int64) *genMessage {
	g := &genMessage{n: n}
	g.prefix = []byte("From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: big\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"gen-boundary\"\r\n\r\n" +
		"--gen-boundary\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n" +
		"--gen-boundary\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")
	g.suffix = []byte("\r\n--gen-boundary--\r\n")
	g.lines = (n + genLineData - 1) / genLineData
	last := n - (g.lines-1)*genLineData
	g.bodyStart = int64(len(g.prefix))
	g.bodyLen = (g.lines-1)*78 + int64(base64.StdEncoding.EncodedLen(int(last))) + 2
	g.size = g.bodyStart + g.bodyLen + int64(len(g.suffix))
	return g
}

// genByte is the attachment's byte at offset i.
func genByte(i int64) byte {
	x := uint64(i) * 0x9e3779b97f4a7c15
	return byte(x>>56) ^ byte(x>>29)
}

// line writes base64 line k with its CRLF into dst and returns its length.
func (g *genMessage) line(k int64, dst *[78]byte) int {
	var data [genLineData]byte
	start := k * genLineData
	m := int(min(genLineData, g.n-start))
	for j := range m {
		data[j] = genByte(start + int64(j))
	}
	e := base64.StdEncoding.EncodedLen(m)
	base64.StdEncoding.Encode(dst[:e], data[:m])
	dst[e], dst[e+1] = '\r', '\n'
	return e + 2
}

func (g *genMessage) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for len(p) > 0 && off < g.size {
		var n int
		switch {
		case off < g.bodyStart:
			n = copy(p, g.prefix[off:])
		case off < g.bodyStart+g.bodyLen:
			var buf [78]byte
			rel := off - g.bodyStart
			k := rel / 78
			l := g.line(k, &buf)
			n = copy(p, buf[rel%78:l])
		default:
			n = copy(p, g.suffix[off-g.bodyStart-g.bodyLen:])
		}
		p, off, total = p[n:], off+int64(n), total+n
	}
	if len(p) > 0 {
		return total, io.EOF
	}
	return total, nil
}

// attachment returns a reader of the decoded attachment.
func (g *genMessage) attachment() io.Reader {
	return &genReader{n: g.n}
}

type genReader struct{ off, n int64 }

func (r *genReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		p[i] = genByte(r.off + int64(i))
	}
	r.off += int64(len(p))
	return len(p), nil
}

// hashSink keeps only the size and SHA-256 of each part.
type hashSink struct {
	mu   sync.Mutex
	sums map[string]string
}

func (s *hashSink) CreatePart(id, kind string) (PartWriter, error) {
	return &hashWriter{sink: s, id: id, h: sha256.New()}, nil
}

type hashWriter struct {
	sink *hashSink
	id   string
	h    hash.Hash
	n    int64
}

func (w *hashWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return w.h.Write(p) }
func (w *hashWriter) Abort() error                { return nil }
func (w *hashWriter) Commit() error {
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	if w.sink.sums == nil {
		w.sink.sums = map[string]string{}
	}
	w.sink.sums[w.id] = fmt.Sprintf("%d %x", w.n, w.h.Sum(nil))
	return nil
}

// genSource serves the generated attachment and a fixed text part.
type genSource struct {
	g    *genMessage
	text []byte
}

func (s genSource) OpenPart(id string) (io.ReadCloser, error) {
	if id == "b1" {
		return io.NopCloser(bytes.NewReader(s.text)), nil
	}
	return io.NopCloser(s.g.attachment()), nil
}

// compareWriter checks that what is written equals the generated message.
type compareWriter struct {
	g   *genMessage
	off int64
	buf []byte
	err error
}

func (w *compareWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && w.err == nil {
		k := min(len(p), len(w.buf))
		if _, err := w.g.ReadAt(w.buf[:k], w.off); err != nil && err != io.EOF {
			w.err = err
		} else if !bytes.Equal(w.buf[:k], p[:k]) {
			w.err = fmt.Errorf("Join output differs in bytes %d-%d", w.off, w.off+int64(k))
		}
		p, w.off = p[k:], w.off+int64(k)
	}
	return n, nil
}

// TestStreamingLargeAttachment splits and joins a message with a 256 MiB
// attachment and checks that neither holds it in memory: what they
// allocate in total stays far below its size.
func TestStreamingLargeAttachment(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB streaming test")
	}
	// Not parallel: the allocation counters are process-wide.
	g := newGenMessage(256 << 20)
	want := sha256.New()
	io.Copy(want, g.attachment())
	wantSum := fmt.Sprintf("%d %x", g.n, want.Sum(nil))

	sink := &hashSink{}
	alloc := allocated(func() {
		c, err := Split(g, g.size, sink, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Parts) != 2 || c.Parts[1].ID != "a1" || fmt.Sprintf("%d %s", c.Parts[1].Size, c.Parts[1].SHA256) != wantSum {
			t.Fatalf("parts = %+v, want a1 %s", c.Parts, wantSum)
		}
		if sink.sums["a1"] != wantSum {
			t.Fatalf("sink got a1 %s, want %s", sink.sums["a1"], wantSum)
		}
		if n := c.MessageSize(); n != g.size {
			t.Fatalf("MessageSize = %d, want %d", n, g.size)
		}
		cw := &compareWriter{g: g, buf: make([]byte, 64<<10)}
		if err := Join(cw, c, genSource{g: g, text: []byte("see attachment")}); err != nil {
			t.Fatal(err)
		}
		if cw.err != nil || cw.off != g.size {
			t.Fatalf("Join: %v after %d of %d bytes", cw.err, cw.off, g.size)
		}
	})
	t.Logf("message %d MiB, Split+Join allocated %d KiB", g.size>>20, alloc>>10)
	if alloc > 32<<20 {
		t.Errorf("Split+Join allocated %d MiB for a %d MiB message", alloc>>20, g.size>>20)
	}
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestGenMessage(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{1, 56, 57, 58, 1000, 57 * 100} {
		g := newGenMessage(n)
		m := make([]byte, g.size)
		if k, err := g.ReadAt(m, 0); k != len(m) || err != nil {
			t.Fatal(k, err)
		}
		c, sink := roundTrip(t, m, Options{})
		data, _ := sink.Part("a1")
		want, _ := io.ReadAll(g.attachment())
		if !bytes.Equal(data, want) || c.MIME.Body[3].Node.Body[0].Transfer != Base64(76) {
			t.Fatalf("n=%d: attachment not decoded: %s", n, outline(c))
		}
		if hex.EncodeToString(sha256.New().Sum(nil)) == c.Parts[1].SHA256 {
			t.Fatal("empty hash")
		}
	}
}
