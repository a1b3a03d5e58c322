package seal

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"

	"tollbridge/protocol"
)

// HashingWriter passes writes through to an underlying writer and counts and
// SHA-256-hashes the bytes that were written, giving the size and sha256 a
// protocol.Header needs for the encrypted catalog and parts.
type HashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

// NewHashingWriter returns a HashingWriter writing to w (nil: discard).
func NewHashingWriter(w io.Writer) *HashingWriter {
	if w == nil {
		w = io.Discard
	}
	return &HashingWriter{w: w, h: sha256.New()}
}

// Write writes p to the underlying writer and hashes what it accepted.
func (hw *HashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// Ref returns the size and lowercase hex SHA-256 of everything written so
// far.
func (hw *HashingWriter) Ref() protocol.Ref {
	return protocol.Ref{Size: hw.n, SHA256: hex.EncodeToString(hw.h.Sum(nil))}
}
