package translate

import (
	"bytes"
	"io"
	"testing"
)

// benchMessage is a real-shaped message with a 10 MiB base64 attachment.
func benchMessage(b *testing.B) []byte {
	g := newGenMessage(10 << 20)
	m := make([]byte, g.size)
	if _, err := g.ReadAt(m, 0); err != nil {
		b.Fatal(err)
	}
	return m
}

// discardSink hashes nothing and keeps nothing: it measures Split alone.
type discardSink struct{}

func (discardSink) CreatePart(id, kind string) (PartWriter, error) { return discardWriter{}, nil }

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) Commit() error               { return nil }
func (discardWriter) Abort() error                { return nil }

func BenchmarkSplit(b *testing.B) {
	m := benchMessage(b)
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(bytes.NewReader(m), int64(len(m)), discardSink{}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSplitIdentity splits the same attachment sent as 8bit, which
// is copied rather than decoded.
func BenchmarkSplitIdentity(b *testing.B) {
	m := bytes.Replace(benchMessage(b), []byte("Transfer-Encoding: base64"), []byte("Transfer-Encoding: 8bit"), 1)
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(bytes.NewReader(m), int64(len(m)), discardSink{}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJoin(b *testing.B) {
	m := benchMessage(b)
	sink := NewMemorySink()
	c, err := Split(bytes.NewReader(m), int64(len(m)), sink, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Join(io.Discard, c, sink); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJoinSmall renders the common message, 4 KiB of text: what an
// IMAP BODY[] fetch of everyday mail costs beside its decryption.
func BenchmarkJoinSmall(b *testing.B) {
	c, sink, size := smallMessage(b)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := Join(io.Discard, c, sink); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJoinerSmall is BenchmarkJoinSmall with a Joiner, as the IMAP
// server renders: its buffers are kept from one message to the next.
func BenchmarkJoinerSmall(b *testing.B) {
	c, sink, size := smallMessage(b)
	var jr Joiner
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := jr.Join(io.Discard, c, sink); err != nil {
			b.Fatal(err)
		}
	}
}

// smallMessage splits a message of 4 KiB of text.
func smallMessage(b *testing.B) (*Catalog, *MemorySink, int64) {
	m := []byte("From: a@example.org\r\nTo: b@example.net\r\nSubject: small\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + string(bytes.Repeat([]byte("Lorem ipsum dolor sit amet.\r\n"), 140)))
	sink := NewMemorySink()
	c, err := Split(bytes.NewReader(m), int64(len(m)), sink, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return c, sink, int64(len(m))
}

func BenchmarkMarshalParse(b *testing.B) {
	m := benchMessage(b)
	c, err := Split(bytes.NewReader(m), int64(len(m)), discardSink{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		j, _ := c.Marshal()
		if _, err := ParseCatalog(j); err != nil {
			b.Fatal(err)
		}
	}
}
