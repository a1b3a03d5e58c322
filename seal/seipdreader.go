package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// readBufSize is how much ciphertext a seipdReader decrypts at a time,
// at most; it starts with firstBufSize and doubles while reads fill it,
// so that the many small parts of ordinary mail (a BODY[] opens each) do
// not each allocate and clear the whole buffer.
const (
	readBufSize  = 1 << 16
	firstBufSize = 4 << 10
)

// seipdReader decrypts the contents of one SEIPD v1 packet and checks its
// MDC. It always holds back the last mdcTrailerSize plaintext bytes, which
// are the MDC packet once the ciphertext ends; it returns io.EOF only after
// the MDC matched, and an error wrapping ErrTampered when it did not or the
// ciphertext was cut short. Plaintext before the end is returned unchecked.
type seipdReader struct {
	src    io.Reader // ciphertext after the version octet
	stream *cfbDecrypter
	mdc    hash.Hash
	buf    []byte // plaintext; buf[off:n] not yet returned
	off, n int
	srcEOF bool
	err    error // sticky: io.EOF after a good MDC, or the failure
}

// openSEIPD reads one SEIPD packet header from r and returns a reader of its
// decrypted contents. It accepts only tag 18, version 1. With bufs it
// decrypts into them instead of buffers of its own.
func openSEIPD(r io.Reader, key []byte, bufs *partBuffers) (*seipdReader, error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		if err == io.EOF {
			return nil, malformed("empty input", nil)
		}
		return nil, fmt.Errorf("reading packet: %w", err)
	}
	if tag, ok := packetTag(first[0]); !ok || tag != tagSEIPD {
		return nil, malformed(fmt.Sprintf("expected a SEIPD packet (tag 18), found octet %#02x", first[0]), nil)
	}
	p, err := packet.Read(io.MultiReader(bytes.NewReader(first[:]), r))
	if err != nil {
		return nil, malformed("SEIPD packet", err)
	}
	se, ok := p.(*packet.SymmetricallyEncrypted)
	if !ok || !se.IntegrityProtected || se.Version != 1 {
		return nil, malformed("not a SEIPD version 1 packet", nil)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	sr := &seipdReader{src: se.Contents, mdc: sha1.New()}
	if bufs != nil {
		sr.stream = newCFBDecrypter(block, bufs.batch)
		sr.buf = bufs.plain
	} else {
		sr.stream = newCFBDecrypter(block, make([]byte, cfbBatch))
		sr.buf = make([]byte, firstBufSize)
	}
	// The prefix is hashed but not returned. Its quick-check octets are
	// deliberately not checked (a decryption oracle; RFC 9580 §5.7): a
	// wrong key shows up as an MDC failure instead.
	var prefix [prefixSize]byte
	if _, err := io.ReadFull(sr.src, prefix[:]); err != nil {
		return nil, sr.srcError(err)
	}
	sr.stream.XORKeyStream(prefix[:], prefix[:])
	sr.mdc.Write(prefix[:])
	return sr, nil
}

// packetTag decodes the tag of an OpenPGP packet header octet.
func packetTag(b byte) (tag byte, ok bool) {
	switch {
	case b&0x80 == 0:
		return 0, false
	case b&0x40 != 0: // new format
		return b & 0x3f, true
	default: // old format
		return (b >> 2) & 0x0f, true
	}
}

// srcError maps an error reading ciphertext: an early end is truncation,
// anything else an I/O error passed on.
func (sr *seipdReader) srcError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return tampered("encrypted data truncated", nil)
	}
	return fmt.Errorf("reading encrypted data: %w", err)
}

// fill reads and decrypts ciphertext until more than the MDC trailer is
// buffered or the ciphertext ends.
func (sr *seipdReader) fill() error {
	for !sr.srcEOF && sr.n-sr.off <= mdcTrailerSize {
		if sr.off > 0 {
			sr.n = copy(sr.buf, sr.buf[sr.off:sr.n])
			sr.off = 0
		}
		k, err := sr.src.Read(sr.buf[sr.n:])
		sr.stream.XORKeyStream(sr.buf[sr.n:sr.n+k], sr.buf[sr.n:sr.n+k])
		sr.n += k
		if sr.n == len(sr.buf) && len(sr.buf) < readBufSize {
			sr.buf = append(sr.buf, make([]byte, len(sr.buf))...) // a big part
		}
		switch {
		case err == io.EOF:
			sr.srcEOF = true
		case err != nil:
			return sr.srcError(err)
		}
	}
	return nil
}

// Read returns decrypted contents; see seipdReader.
func (sr *seipdReader) Read(p []byte) (int, error) {
	if sr.err != nil {
		return 0, sr.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := sr.fill(); err != nil {
		sr.err = err
		return 0, err
	}
	avail := sr.n - sr.off - mdcTrailerSize
	if avail <= 0 {
		sr.err = sr.checkMDC()
		return 0, sr.err
	}
	n := copy(p, sr.buf[sr.off:sr.off+avail])
	sr.mdc.Write(p[:n])
	sr.off += n
	return n, nil
}

// checkMDC is called once the ciphertext has ended: the remaining bytes
// must be exactly one MDC packet matching the running hash.
func (sr *seipdReader) checkMDC() error {
	if sr.n-sr.off != mdcTrailerSize {
		return tampered("encrypted data truncated", nil)
	}
	trailer := sr.buf[sr.off:sr.n]
	sr.mdc.Write(trailer[:2])
	sum := sr.mdc.Sum(nil)
	ok := subtle.ConstantTimeCompare(sum, trailer[2:]) &
		subtle.ConstantTimeByteEq(trailer[0], 0xc0|tagMDC) &
		subtle.ConstantTimeByteEq(trailer[1], sha1.Size)
	if ok != 1 {
		return tampered("modification detection code mismatch (altered data or wrong key)", nil)
	}
	return io.EOF
}

// peek returns the next plaintext byte without consuming it; io.EOF means
// the contents ended with a good MDC.
func (sr *seipdReader) peek() (byte, error) {
	if sr.err != nil {
		return 0, sr.err
	}
	if err := sr.fill(); err != nil {
		sr.err = err
		return 0, err
	}
	if sr.n-sr.off <= mdcTrailerSize {
		sr.err = sr.checkMDC()
		return 0, sr.err
	}
	return sr.buf[sr.off], nil
}

// verdict classifies a parse error found inside the encrypted contents: it
// reads the contents to their end so the MDC is checked, and reports
// ErrTampered if the MDC fails (the parse error was then most likely caused
// by altered data or a wrong key), else ErrMalformed with the cause.
func (sr *seipdReader) verdict(what string, cause error) error {
	if errors.Is(cause, ErrTampered) {
		return cause
	}
	if _, err := io.Copy(io.Discard, sr); err != nil {
		return err
	}
	return malformed(what, cause)
}

// expectEnd checks that the contents have no more packets (which also
// checks the MDC) and that nothing follows the SEIPD packet in outer.
func (sr *seipdReader) expectEnd(outer io.Reader) error {
	if _, err := sr.peek(); err != io.EOF {
		if err != nil {
			return err
		}
		return sr.verdict("unexpected packet after the last expected one", nil)
	}
	var b [1]byte
	switch n, err := io.ReadFull(outer, b[:]); {
	case n > 0:
		return malformed("data after the encrypted packet", nil)
	case err != io.EOF:
		return fmt.Errorf("reading past the encrypted packet: %w", err)
	}
	return nil
}
