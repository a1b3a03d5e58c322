package store

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

// Spool holds plaintext mail for as long as it takes to seal or serve it:
// bytes written once and read back any number of times, in memory up to
// memLimit bytes, beyond that in an unlinked temporary file encrypted with
// AES-256-CTR under a random key that only this value knows, so no
// plaintext ever reaches the disk and memory stays flat whatever the size.
type Spool struct {
	dir      string
	memLimit int
	mem      []byte
	size     int64

	f       *os.File
	block   cipher.Block
	iv      [aes.BlockSize]byte
	enc     cipher.Stream // positioned at size
	scratch []byte
}

// NewSpool returns an empty spool whose file, if any, goes in dir ("":
// the system's temporary directory).
func NewSpool(dir string, memLimit int) *Spool {
	return &Spool{dir: dir, memLimit: memLimit}
}

// Grow reserves memory for n more bytes when they will be held in
// memory: a caller that knows what it will write (a message rendered
// from its catalog) then allocates once, not at every doubling.
func (s *Spool) Grow(n int) {
	if s.f == nil && n > 0 && len(s.mem)+n <= s.memLimit && cap(s.mem)-len(s.mem) < n {
		s.mem = append(make([]byte, 0, len(s.mem)+n), s.mem...)
	}
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.f == nil && len(s.mem)+len(p) <= s.memLimit {
		s.mem = append(s.mem, p...)
		s.size += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	return s.writeFile(p)
}

// toFile moves the bytes held in memory to an encrypted temporary file.
func (s *Spool) toFile() error {
	var key [32]byte
	rand.Read(key[:])
	rand.Read(s.iv[:])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, "tollbridge-spool-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// Unlinked at once: the file vanishes with the process, whatever happens.
	os.Remove(f.Name())
	s.f, s.block = f, block
	s.enc = cipher.NewCTR(block, s.iv[:])
	mem := s.mem
	s.mem, s.size = nil, 0
	_, err = s.writeFile(mem)
	return err
}

func (s *Spool) writeFile(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), 64<<10)
		if cap(s.scratch) < n {
			s.scratch = make([]byte, 64<<10)
		}
		buf := s.scratch[:n]
		s.enc.XORKeyStream(buf, p[:n])
		if _, err := s.f.WriteAt(buf, s.size); err != nil {
			return written, fmt.Errorf("spool: %w", err)
		}
		s.size += int64(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// ReadAt reads back what was written.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	var err error
	if int64(n) > s.size-off {
		n, err = int(s.size-off), io.EOF
	}
	if s.f == nil {
		copy(p, s.mem[off:off+int64(n)])
		return n, err
	}
	if _, rerr := s.f.ReadAt(p[:n], off); rerr != nil && rerr != io.EOF {
		return 0, fmt.Errorf("spool: %w", rerr)
	}
	s.streamAt(off).XORKeyStream(p[:n], p[:n])
	return n, err
}

// streamAt returns the CTR key stream positioned at byte off.
func (s *Spool) streamAt(off int64) cipher.Stream {
	var ctr [aes.BlockSize]byte
	hi := binary.BigEndian.Uint64(s.iv[:8])
	lo := binary.BigEndian.Uint64(s.iv[8:])
	add := uint64(off / aes.BlockSize)
	sum := lo + add
	if sum < lo {
		hi++
	}
	binary.BigEndian.PutUint64(ctr[:8], hi)
	binary.BigEndian.PutUint64(ctr[8:], sum)
	st := cipher.NewCTR(s.block, ctr[:])
	if skip := int(off % aes.BlockSize); skip > 0 {
		var junk [aes.BlockSize]byte
		st.XORKeyStream(junk[:skip], junk[:skip])
	}
	return st
}

// Section returns a reader of n bytes from off.
func (s *Spool) Section(off, n int64) io.Reader {
	return io.NewSectionReader(s, off, n)
}

// Bytes returns the content when it is held in memory, else nil.
func (s *Spool) Bytes() []byte {
	if s.f != nil {
		return nil
	}
	return s.mem
}

// Close frees the spool.
func (s *Spool) Close() error {
	s.mem = nil
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}
