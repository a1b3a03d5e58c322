package translate

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"
)

// Join writes the message c describes to w, reading parts from src. It
// checks each part's size and SHA-256 against the catalog and fails on a
// mismatch; since it streams, w has by then received the bytes before the
// failing part (and possibly some of it), which the caller must discard.
func Join(w io.Writer, c *Catalog, src Source) error {
	wsize, bsize := joinBuffers(c)
	return join(w, c, src, newJoinScratch(wsize, bsize))
}

// Joiner is Join for a server that renders a message per BODY[] fetch: it
// keeps its buffers from one call to the next, so that rendering costs
// no allocation of them and the garbage collector no work on them. Its
// zero value is ready; it is safe for concurrent use.
type Joiner struct {
	scratch sync.Pool // *joinScratch of full size
}

// Join is Join with the Joiner's buffers.
func (jr *Joiner) Join(w io.Writer, c *Catalog, src Source) error {
	sc, _ := jr.scratch.Get().(*joinScratch)
	if sc == nil {
		sc = newJoinScratch(64<<10, 48<<10)
	}
	err := join(w, c, src, sc)
	sc.w.Reset(nil) // holds no reference to w
	jr.scratch.Put(sc)
	return err
}

func join(w io.Writer, c *Catalog, src Source, sc *joinScratch) error {
	sc.w.Reset(w)
	j := &joiner{joinScratch: sc, src: src, parts: make(map[string]*Part, len(c.Parts))}
	for i := range c.Parts {
		j.parts[c.Parts[i].ID] = &c.Parts[i]
	}
	if err := j.node(&c.MIME); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	return nil
}

// joinScratch is what Join writes and copies through: the output buffer,
// the copy buffer, the part hash and the base64 encoder (made for the
// first base64 part).
type joinScratch struct {
	w    *bufio.Writer
	buf  []byte
	hash hash.Hash
	b64  *base64Writer
}

func newJoinScratch(wsize, bsize int) *joinScratch {
	w := bufio.NewWriterSize(nil, wsize)
	return &joinScratch{w: w, buf: make([]byte, bsize), hash: sha256.New()}
}

// joinBuffers sizes Join's output buffer (at most 64 KiB) and copy
// buffer (at most 48 KiB) to the message: IMAP renders a message for
// each BODY[] fetch, and most mail is a few KiB, for which two full-size
// buffers were most of the work of allocating and clearing memory.
func joinBuffers(c *Catalog) (out, copyBuf int) {
	var total, largest int64
	for _, p := range c.Parts {
		total += p.Size
		largest = max(largest, p.Size)
	}
	// Base64 grows a part by a third, and headers and boundaries add some.
	out = int(min(total*4/3+4<<10, 64<<10))
	copyBuf = int(min(max(largest+1, 512), 48<<10))
	return out, copyBuf
}

type joiner struct {
	*joinScratch
	src   Source
	parts map[string]*Part
}

func (j *joiner) node(n *Node) error {
	if _, err := j.w.Write(n.Header.Bytes); err != nil {
		return err
	}
	for i := range n.Body {
		it := &n.Body[i]
		var err error
		switch {
		case it.Seg != nil:
			_, err = j.w.Write(it.Seg.Bytes)
		case it.Node != nil:
			err = j.node(it.Node)
		default:
			err = j.part(it)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (j *joiner) part(it *Item) error {
	p := j.parts[it.Part]
	if p == nil {
		return fmt.Errorf("reference to unknown part %q", it.Part)
	}
	var (
		out io.Writer = j.w
		b64 *base64Writer
	)
	switch it.Transfer.Encoding {
	case EncodingIdentity:
	case EncodingBase64:
		if it.Transfer.Line <= 0 {
			return fmt.Errorf("part %s: base64 line length %d", p.ID, it.Transfer.Line)
		}
		if j.b64 == nil {
			j.b64 = newBase64Writer(j.w, it.Transfer.Line)
		}
		b64 = j.b64
		b64.reset(it.Transfer.Line)
		out = b64
	default:
		return fmt.Errorf("part %s: unknown transfer encoding %q", p.ID, it.Transfer.Encoding)
	}
	rc, err := j.src.OpenPart(p.ID)
	if err != nil {
		return fmt.Errorf("part %s: %w", p.ID, err)
	}
	defer rc.Close()
	j.hash.Reset()
	// Read one byte more than the catalog says, to see a part that is too long.
	n, err := io.CopyBuffer(io.MultiWriter(out, j.hash), onlyReader{io.LimitReader(rc, p.Size+1)}, j.buf)
	if err != nil {
		return fmt.Errorf("part %s: %w", p.ID, err)
	}
	if n != p.Size {
		return fmt.Errorf("part %s: %d bytes, catalog says %d", p.ID, n, p.Size)
	}
	if sum := hex.EncodeToString(j.hash.Sum(nil)); sum != p.SHA256 {
		return fmt.Errorf("part %s: sha256 %s, catalog says %s", p.ID, sum, p.SHA256)
	}
	if b64 != nil {
		return b64.Close()
	}
	return nil
}
