package seal

import (
	"bufio"
	"errors"
	"io"
	"sync"
)

// PartBuffers keeps the decryption buffers of the part readers that
// OpenPartWith opens, for the next ones: a server that decrypts the parts
// of a message for every BODY[] fetch then allocates none (and gives the
// garbage collector none to scan). Its zero value is ready; it is safe
// for concurrent use.
type PartBuffers struct {
	pool sync.Pool // *partBuffers
}

// partBuffers are one part reader's: its plaintext and keystream buffers,
// and a read buffer in front of the stored part, which the packet headers
// would otherwise read from a few bytes at a time (a system call each
// from a file).
type partBuffers struct {
	plain []byte // readBufSize
	batch []byte // cfbBatch
	in    *bufio.Reader
}

// inBufSize is the read buffer's size: the headers and the start of a
// part; big reads of the ciphertext go past it.
const inBufSize = 4 << 10

func (pb *PartBuffers) get() *partBuffers {
	if b, ok := pb.pool.Get().(*partBuffers); ok {
		return b
	}
	return &partBuffers{plain: make([]byte, readBufSize), batch: make([]byte, cfbBatch), in: bufio.NewReaderSize(nil, inBufSize)}
}

// put gives bufs back, holding no reference to the part they read.
func (pb *PartBuffers) put(bufs *partBuffers) {
	bufs.in.Reset(nil)
	pb.pool.Put(bufs)
}

// errPartClosed is what a pooled part reader returns after Close: its
// buffers may be another reader's by then.
var errPartClosed = errors.New("seal: part reader closed")

// OpenPartWith is OpenPart decrypting into buffers from pb, which Close
// gives back; the reader must not be used after Close. A nil pb is
// OpenPart.
func (k *SessionKey) OpenPartWith(rc io.ReadCloser, pb *PartBuffers) (io.ReadCloser, error) {
	if pb == nil {
		return k.OpenPart(rc)
	}
	bufs := pb.get()
	bufs.in.Reset(rc)
	pr, err := k.decryptPart(bufs.in, bufs)
	if err != nil {
		rc.Close()
		pb.put(bufs)
		return nil, err
	}
	return &pooledPart{pr: pr, rc: rc, bufs: bufs, pool: pb}, nil
}

// pooledPart is OpenPartWith's reader.
type pooledPart struct {
	pr   *partReader
	rc   io.Closer
	bufs *partBuffers // nil once closed
	pool *PartBuffers
}

func (p *pooledPart) Read(b []byte) (int, error) {
	if p.bufs == nil {
		return 0, errPartClosed
	}
	return p.pr.Read(b)
}

func (p *pooledPart) Close() error {
	if p.bufs == nil {
		return nil
	}
	p.pool.put(p.bufs)
	p.bufs, p.pr = nil, nil
	return p.rc.Close()
}
