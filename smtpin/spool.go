package smtpin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// spool holds one message's DATA while it is checked and sealed. Small
// messages stay in memory; larger ones go to a temporary file encrypted
// with AES-CTR under a key that lives only in memory, so plaintext never
// reaches the disk and memory stays flat whatever the message size.
type spool struct {
	memLimit int
	mem      []byte
	f        *os.File
	block    cipher.Block
	iv       [16]byte
	size     int64
	buf      []byte

	// Bare CR or LF seen (RFC 5321 §2.3.8 allows only CRLF line ends).
	bareEOL bool
	lastCR  bool
}

func newSpool(memLimit int) *spool {
	return &spool{memLimit: memLimit, buf: make([]byte, 32<<10)}
}

// ReadFrom reads the whole DATA.
func (s *spool) ReadFrom(r io.Reader) (int64, error) {
	for {
		n, err := r.Read(s.buf)
		if n > 0 {
			if werr := s.write(s.buf[:n]); werr != nil {
				return s.size, werr
			}
		}
		if errors.Is(err, io.EOF) {
			if s.lastCR {
				s.bareEOL = true
			}
			return s.size, nil
		}
		if err != nil {
			return s.size, err
		}
	}
}

func (s *spool) checkEOL(p []byte) {
	for _, c := range p {
		switch {
		case c == '\n' && !s.lastCR, c != '\n' && s.lastCR:
			s.bareEOL = true
		}
		s.lastCR = c == '\r'
	}
}

func (s *spool) write(p []byte) error {
	s.checkEOL(p)
	if s.f == nil && len(s.mem)+len(p) <= s.memLimit {
		s.mem = append(s.mem, p...)
		s.size += int64(len(p))
		return nil
	}
	if s.f == nil {
		if err := s.toFile(); err != nil {
			return err
		}
	}
	enc := make([]byte, len(p))
	s.xorAt(enc, p, s.size)
	if _, err := s.f.WriteAt(enc, s.size); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.size += int64(len(p))
	return nil
}

// toFile moves what is in memory to an encrypted temporary file.
func (s *spool) toFile() error {
	var key [32]byte
	rand.Read(key[:])
	rand.Read(s.iv[:8]) // the low 8 bytes count blocks
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "tollbridge-spool-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	os.Remove(f.Name()) // unlinked at once: nothing is left behind after a crash
	s.f, s.block = f, block
	mem := s.mem
	s.mem, s.size = nil, 0
	enc := make([]byte, len(mem))
	s.xorAt(enc, mem, 0)
	if _, err := f.WriteAt(enc, 0); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.size = int64(len(mem))
	return nil
}

// xorAt applies the keystream at byte offset off.
func (s *spool) xorAt(dst, src []byte, off int64) {
	iv := s.iv
	binary.BigEndian.PutUint64(iv[8:], uint64(off/16))
	stream := cipher.NewCTR(s.block, iv[:])
	if skip := int(off % 16); skip > 0 {
		var junk [16]byte
		stream.XORKeyStream(junk[:skip], junk[:skip])
	}
	stream.XORKeyStream(dst, src)
}

// Size is the number of bytes spooled.
func (s *spool) Size() int64 { return s.size }

// ReadAt reads plaintext at off.
func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	if int64(len(p)) > s.size-off {
		p = p[:s.size-off]
	}
	if s.f == nil {
		n := copy(p, s.mem[off:])
		return n, eofIf(off+int64(n) >= s.size)
	}
	n, err := s.f.ReadAt(p, off)
	s.xorAt(p[:n], p[:n], off)
	if err == nil && off+int64(n) >= s.size {
		err = io.EOF
	}
	return n, err
}

func eofIf(b bool) error {
	if b {
		return io.EOF
	}
	return nil
}

// Close releases the spool.
func (s *spool) Close() error {
	s.mem = nil
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
