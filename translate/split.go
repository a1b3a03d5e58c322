package translate

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Options tune Split.
type Options struct {
	// StripBcc removes every top-level Bcc: field, with its continuation
	// lines, before anything else (docs/protocol.md §3.5). All other bytes stay.
	StripBcc bool

	limits *limits // tests only; nil means defaultLimits()
}

// wholeMessageType is the type of the one part that holds a whole message
// the scanner could not structure (a header section beyond the limits).
const wholeMessageType = "message/rfc822"

// Split reads the size-byte message in src and stores each non-empty leaf
// body in sink as its own part, returning the catalog that rebuilds the
// message with Join. It reads each body twice at most (once to find the
// structure, once to store it; a base64 body that turns out not to be
// canonical late is read a third time to store it as is) and never holds a
// whole body in memory.
//
// Split never fails on malformed input: what it cannot structure it keeps
// as raw bytes. It fails only when src or sink fail; parts committed before
// such a failure are left in the sink.
func Split(src io.ReaderAt, size int64, sink Sink, opts Options) (*Catalog, error) {
	if size < 0 {
		return nil, errors.New("split: negative message size")
	}
	lim := defaultLimits()
	if opts.limits != nil {
		lim = *opts.limits
	}
	if opts.StripBcc {
		var err error
		if src, size, err = stripBcc(src, size); err != nil {
			return nil, fmt.Errorf("split: %w", err)
		}
	}
	c := &Catalog{Version: Version, To: []string{}, Cc: []string{}, References: []string{}, Parts: []Part{}}
	m := newEmitter(src, size, sink, c)
	root, _, err := newParser(newWindow(src, size), lim).parseEntity(0, 0, nil, "text/plain")
	if err == errOverflow {
		root = &entity{kind: leafEntity, end: size, ctype: wholeMessageType, media: wholeMessageType}
	} else if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	} else {
		fillMeta(c, root.header)
	}
	node, end, err := m.node(root, 0)
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	if end != size {
		return nil, fmt.Errorf("split: internal error: catalog covers %d of %d bytes", end, size)
	}
	c.MIME = node
	return c, nil
}

// emitter is Split's second pass: it walks the structure, copies segments
// into the catalog and streams leaf bodies into parts.
type emitter struct {
	src         io.ReaderAt
	size        int64
	sink        Sink
	cat         *Catalog
	blocks      int
	attachments int
	br          *bufio.Reader
	hash        hash.Hash
	copyBuf     []byte
	b64         base64Buffers
}

func newEmitter(src io.ReaderAt, size int64, sink Sink, c *Catalog) *emitter {
	return &emitter{src: src, size: size, sink: sink, cat: c, hash: sha256.New()}
}

// node emits entity e, which starts at pos, and returns where it actually
// ended (two bytes after e.end when a base64 body took the CRLF that
// starts the next delimiter segment).
func (m *emitter) node(e *entity, pos int64) (Node, int64, error) {
	n := Node{Header: Seg{Bytes: e.header}, Body: []Item{}}
	if n.Header.Bytes == nil {
		n.Header.Bytes = []byte{}
	}
	pos += int64(len(e.header))
	switch e.kind {
	case leafEntity:
		if e.end > pos {
			it, end, err := m.leaf(e, pos)
			if err != nil {
				return n, 0, err
			}
			n.Body, pos = append(n.Body, it), end
		}
	case messageEntity:
		child, end, err := m.node(e.child, pos)
		if err != nil {
			return n, 0, err
		}
		n.Body, pos = append(n.Body, NodeItem(child)), end
	case multipartEntity:
		for _, it := range e.items {
			if it.child != nil {
				child, end, err := m.node(it.child, pos)
				if err != nil {
					return n, 0, err
				}
				n.Body, pos = append(n.Body, NodeItem(child)), end
				continue
			}
			if it.segEnd > pos {
				b, err := m.read(pos, it.segEnd)
				if err != nil {
					return n, 0, err
				}
				n.Body, pos = append(n.Body, SegItem(b)), it.segEnd
			}
		}
	}
	return n, pos, nil
}

func (m *emitter) read(start, end int64) ([]byte, error) {
	b := make([]byte, end-start)
	if k, err := m.src.ReadAt(b, start); k < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read message at %d: %w", start, err)
	}
	return b, nil
}

// leaf stores the body of leaf e, [pos, e.end), as the next part.
func (m *emitter) leaf(e *entity, pos int64) (Item, int64, error) {
	p := Part{Kind: KindAttachment, Type: e.ctype, Name: e.name}
	if strings.HasPrefix(e.media, "text/") {
		p.Kind = KindBlock
		m.blocks++
		p.ID = "b" + strconv.Itoa(m.blocks)
	} else {
		m.attachments++
		p.ID = "a" + strconv.Itoa(m.attachments)
	}
	if e.cte == "base64" {
		end, err := m.base64Range(e, pos)
		if err != nil {
			return Item{}, 0, err
		}
		if end > 0 {
			line, ok, err := m.base64Part(&p, pos, end)
			if err != nil {
				return Item{}, 0, fmt.Errorf("part %s: %w", p.ID, err)
			}
			if ok {
				m.cat.Parts = append(m.cat.Parts, p)
				return PartItem(p.ID, Base64(line)), end, nil
			}
		}
	}
	if err := m.copyPart(&p, pos, e.end); err != nil {
		return Item{}, 0, fmt.Errorf("part %s: %w", p.ID, err)
	}
	m.cat.Parts = append(m.cat.Parts, p)
	return PartItem(p.ID, Identity()), e.end, nil
}

// base64Range returns the end of the text to try as canonical base64: the
// body itself when it ends with CRLF, the body and the CRLF of the
// following delimiter line when it does not, or 0 when neither can work.
func (m *emitter) base64Range(e *entity, pos int64) (int64, error) {
	if e.end-pos >= 2 {
		last, err := m.read(e.end-2, e.end)
		if err != nil {
			return 0, err
		}
		if last[0] == '\r' && last[1] == '\n' {
			return e.end, nil
		}
	}
	if e.borrow {
		return e.end + 2, nil
	}
	return 0, nil
}

// copyPart stores [start, end) as is.
func (m *emitter) copyPart(p *Part, start, end int64) error {
	if m.copyBuf == nil {
		m.copyBuf = make([]byte, 64<<10)
	}
	pw, err := m.sink.CreatePart(p.ID, p.Kind)
	if err != nil {
		return err
	}
	m.hash.Reset()
	r := io.NewSectionReader(m.src, start, end-start)
	n, err := io.CopyBuffer(io.MultiWriter(pw, m.hash), onlyReader{r}, m.copyBuf)
	if err == nil && n != end-start {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return errors.Join(err, pw.Abort())
	}
	if err := pw.Commit(); err != nil {
		return err
	}
	p.Size, p.SHA256 = n, hex.EncodeToString(m.hash.Sum(nil))
	return nil
}

// onlyReader hides WriterTo/ReaderFrom so CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }
