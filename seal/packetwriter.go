package seal

import (
	"crypto/cipher"
	"errors"
	"io"
)

// OpenPGP packet tags written or read here (RFC 4880 §4.3).
const (
	tagPKESK      = 1
	tagSignature  = 2
	tagOnePassSig = 4
	tagLiteral    = 11
	tagSEIPD      = 18
	tagMDC        = 19
)

// chunkSize is the partial body length used when streaming a packet: a power
// of two of at least 512 (RFC 4880 §4.2.2.4 wants the first partial length to
// be at least 512 octets). 64 KiB keeps framing overhead at 1 byte per 64 KiB
// and memory per stream small.
const chunkSize = 1 << 16

// chunkLengthByte is the partial body length octet announcing chunkSize.
const chunkLengthByte = 224 + 16

// packetWriter streams the body of one new-format packet using partial body
// lengths: it buffers one chunk, writes it behind its length octet as soon as
// it is full, and on Close writes what is left behind a definite length. A
// packet shorter than one chunk therefore gets a plain definite length.
type packetWriter struct {
	w io.Writer
	// buf holds the pending header bytes (tag octet first time, then length
	// octet) followed by up to chunkSize body bytes.
	buf    []byte
	hdr    int // header bytes at the front of buf
	tagged bool
	err    error
}

func newPacketWriter(w io.Writer, tag byte) *packetWriter {
	pw := &packetWriter{w: w, buf: make([]byte, 0, 6+chunkSize)}
	pw.buf = append(pw.buf, 0xc0|tag, 0) // tag, room for the length octet
	pw.hdr = 2
	return pw
}

// Write buffers p, flushing whole chunks.
func (pw *packetWriter) Write(p []byte) (int, error) {
	return pw.write(p, nil)
}

// writeXOR writes p transformed by s (encrypted straight into the buffer, so
// the ciphertext is never copied).
func (pw *packetWriter) writeXOR(p []byte, s cipher.Stream) (int, error) {
	return pw.write(p, s)
}

func (pw *packetWriter) write(p []byte, s cipher.Stream) (int, error) {
	if pw.err != nil {
		return 0, pw.err
	}
	total := len(p)
	for len(p) > 0 {
		room := pw.hdr + chunkSize - len(pw.buf)
		if room == 0 {
			if err := pw.flushChunk(); err != nil {
				return total - len(p), err
			}
			continue
		}
		n := min(room, len(p))
		start := len(pw.buf)
		pw.buf = pw.buf[:start+n]
		if s != nil {
			s.XORKeyStream(pw.buf[start:], p[:n])
		} else {
			copy(pw.buf[start:], p[:n])
		}
		p = p[n:]
	}
	return total, nil
}

// flushChunk writes the full buffer as one partial-length chunk. It is only
// called when more data follows, so the packet never ends on a partial
// length.
func (pw *packetWriter) flushChunk() error {
	pw.buf[pw.hdr-1] = chunkLengthByte
	if _, err := pw.w.Write(pw.buf); err != nil {
		pw.err = err
		return err
	}
	pw.buf = append(pw.buf[:0], 0)
	pw.hdr = 1
	return nil
}

// Close writes the remaining body behind a definite length. It does not
// close the underlying writer.
func (pw *packetWriter) Close() error {
	if pw.err != nil {
		return pw.err
	}
	body := pw.buf[pw.hdr:]
	var lenBuf [5]byte
	lenOctets := encodeLength(lenBuf[:], len(body))
	// Rebuild the header in front of the body: tag octet (if not yet
	// written) and the definite length, which may take up to 5 octets.
	head := make([]byte, 0, 6)
	if pw.hdr == 2 {
		head = append(head, pw.buf[0])
	}
	head = append(head, lenOctets...)
	if _, err := pw.w.Write(head); err != nil {
		pw.err = err
		return err
	}
	if len(body) > 0 {
		if _, err := pw.w.Write(body); err != nil {
			pw.err = err
			return err
		}
	}
	pw.err = errClosed
	return nil
}

var errClosed = errors.New("write after close")

// encodeLength writes a new-format definite length (RFC 4880 §4.2.2) into
// buf and returns the octets used.
func encodeLength(buf []byte, n int) []byte {
	switch {
	case n < 192:
		buf[0] = byte(n)
		return buf[:1]
	case n < 8384:
		n -= 192
		buf[0] = byte(192 + n>>8)
		buf[1] = byte(n)
		return buf[:2]
	default:
		buf[0] = 255
		buf[1] = byte(n >> 24)
		buf[2] = byte(n >> 16)
		buf[3] = byte(n >> 8)
		buf[4] = byte(n)
		return buf[:5]
	}
}
