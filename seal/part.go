package seal

import (
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// literalHeader is the start of our literal data packets' body: format 'b',
// empty file name, date 0.
var literalHeader = [6]byte{'b', 0, 0, 0, 0, 0}

// partWriter is the plaintext side of EncryptPart.
type partWriter struct {
	lit    *packetWriter
	seipd  *seipdWriter
	closed bool
}

// EncryptPart returns a writer whose plaintext is streamed into w as one
// SEIPD v1 packet holding one literal data packet (format 'b', empty name,
// date 0), both framed with partial body lengths. Memory use is constant
// (two 64 KiB buffers) whatever the size. Close finishes the packet; it does
// not close w. Nothing written is valid until Close returned nil.
func (k *SessionKey) EncryptPart(w io.Writer) (io.WriteCloser, error) {
	sw, err := newSEIPDWriter(w, k.key[:])
	if err != nil {
		return nil, fmt.Errorf("seal: encrypt part: %w", err)
	}
	lit := newPacketWriter(sw, tagLiteral)
	if _, err := lit.Write(literalHeader[:]); err != nil {
		return nil, fmt.Errorf("seal: encrypt part: %w", err)
	}
	return &partWriter{lit: lit, seipd: sw}, nil
}

// Write encrypts p.
func (pw *partWriter) Write(p []byte) (int, error) {
	if pw.closed {
		return 0, errClosed
	}
	n, err := pw.lit.Write(p)
	if err != nil {
		return n, fmt.Errorf("seal: encrypt part: %w", err)
	}
	return n, nil
}

// Close ends the literal packet, writes the MDC and ends the SEIPD packet.
func (pw *partWriter) Close() error {
	if pw.closed {
		return nil
	}
	pw.closed = true
	if err := pw.lit.Close(); err != nil {
		return fmt.Errorf("seal: encrypt part: %w", err)
	}
	if err := pw.seipd.Close(); err != nil {
		return fmt.Errorf("seal: encrypt part: %w", err)
	}
	return nil
}

// partReader is the plaintext side of DecryptPart.
type partReader struct {
	body  io.Reader // the literal packet's body
	seipd *seipdReader
	outer io.Reader
	err   error
}

// DecryptPart reads one part (exactly one SEIPD v1 packet holding exactly
// one literal data packet, and nothing after it) from r and returns a reader
// of its plaintext.
//
// The plaintext is streamed: it is returned before the MDC, which comes at
// the end, has been checked. Only when Read returns io.EOF has the whole part
// been verified; an altered, truncated or wrongly keyed part, an extra or
// missing packet, a compression packet or any other malformation makes Read
// (or DecryptPart itself) return an error wrapping ErrTampered or
// ErrMalformed, at the latest instead of io.EOF. Callers must therefore
// treat what they have read as unverified until EOF, and compare its size
// and SHA-256 with the catalog before using it.
func (k *SessionKey) DecryptPart(r io.Reader) (_ io.Reader, err error) {
	return k.decryptPart(r, nil)
}

func (k *SessionKey) decryptPart(r io.Reader, bufs *partBuffers) (_ *partReader, err error) {
	defer recoverMalformed(&err, "part")
	sr, err := openSEIPD(r, k.key[:], bufs)
	if err != nil {
		return nil, fmt.Errorf("seal: part: %w", err)
	}
	lit, err := readLiteral(sr)
	if err != nil {
		return nil, fmt.Errorf("seal: part: %w", err)
	}
	return &partReader{body: lit.Body, seipd: sr, outer: r}, nil
}

// Read returns plaintext; see DecryptPart.
func (pr *partReader) Read(p []byte) (n int, err error) {
	if pr.err != nil {
		return 0, pr.err
	}
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("seal: part: %w", malformed(fmt.Sprintf("parser panic: %v", r), nil))
		}
		if err != nil {
			pr.err = err
		}
	}()
	n, err = pr.body.Read(p)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if endErr := pr.seipd.expectEnd(pr.outer); endErr != nil {
			return n, fmt.Errorf("seal: part: %w", endErr)
		}
		return n, io.EOF
	case errors.Is(err, ErrTampered):
		return n, fmt.Errorf("seal: part: %w", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The literal packet claims more data than the encrypted contents
		// hold: either the contents were cut (then the MDC fails) or the
		// packet lengths are wrong.
		return n, fmt.Errorf("seal: part: %w", pr.seipd.verdict("literal packet truncated", err))
	default:
		return n, fmt.Errorf("seal: part: %w", err)
	}
}

// readLiteral reads the header of the next packet from sr, which must be a
// literal data packet, and returns it with its body unread.
func readLiteral(sr *seipdReader) (*packet.LiteralData, error) {
	p, err := readInner(sr, tagLiteral)
	if err != nil {
		return nil, err
	}
	lit := p.(*packet.LiteralData)
	switch lit.Format {
	case 'b', 'u', 't':
		// Format does not change the bytes we return; we write 'b'.
	default:
		return nil, sr.verdict(fmt.Sprintf("literal data format %q", lit.Format), nil)
	}
	return lit, nil
}

// readInner reads the next packet inside sr, which must have tag want.
func readInner(sr *seipdReader, want byte) (packet.Packet, error) {
	b, err := sr.peek()
	if err == io.EOF {
		return nil, malformed(fmt.Sprintf("missing packet (tag %d)", want), nil)
	}
	if err != nil {
		return nil, err
	}
	tag, ok := packetTag(b)
	if !ok || tag != want {
		what := fmt.Sprintf("expected packet tag %d, found octet %#02x", want, b)
		if ok && tag == 8 {
			what = "compression packet not allowed"
		}
		return nil, sr.verdict(what, nil)
	}
	p, err := packet.Read(sr)
	if err != nil {
		return nil, sr.verdict(fmt.Sprintf("packet tag %d", want), err)
	}
	return p, nil
}

// OpenPart is DecryptPart for a stored part: closing the returned reader
// closes rc, and on error rc is closed already.
func (k *SessionKey) OpenPart(rc io.ReadCloser) (io.ReadCloser, error) {
	r, err := k.DecryptPart(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, rc}, nil
}
