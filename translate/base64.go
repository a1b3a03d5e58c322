package translate

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
)

// Buffer sizes of the streaming base64 decoder: lines longer than
// b64ReadSize are never canonical for us (they fall back to identity).
const (
	b64ReadSize = 64 << 10
	b64FlushAt  = 48 << 10
)

// base64Buffers are the emitter's reusable decoding buffers.
type base64Buffers struct {
	enc    []byte // pending base64 characters, line breaks removed
	dec    []byte
	strict *base64.Encoding
}

func (b *base64Buffers) init() {
	if b.enc == nil {
		b.enc = make([]byte, 0, b64FlushAt+b64ReadSize)
		b.dec = make([]byte, base64.StdEncoding.DecodedLen(cap(b.enc)))
		b.strict = base64.StdEncoding.Strict()
	}
}

// errNotCanonical stops base64Part at text Join would not write.
var errNotCanonical = errors.New("base64 text is not canonical")

// base64Part tries to store the base64 text in [start, end) decoded, as
// part p. The text must be exactly what Join writes for the decoded
// bytes: standard alphabet, padded, every line as long as the first
// (line, returned) except a shorter last one, each followed by CRLF.
// When it is not, any part already created is aborted and ok is false;
// err is only for a failing source or sink.
func (m *emitter) base64Part(p *Part, start, end int64) (line int, ok bool, err error) {
	m.b64.init()
	if m.br == nil {
		m.br = bufio.NewReaderSize(nil, b64ReadSize)
	}
	m.br.Reset(io.NewSectionReader(m.src, start, end-start))
	m.hash.Reset()
	d := b64Decoder{m: m, p: p, enc: m.b64.enc[:0]}
	err = d.run()
	switch {
	case errors.Is(err, errNotCanonical):
		return 0, false, d.abort()
	case err != nil:
		return 0, false, errors.Join(err, d.abort())
	}
	if d.lines == 1 && d.line <= 76 {
		d.line = 76 // one line is what any line length up to 76 would give
	}
	p.Size, p.SHA256 = d.size, hex.EncodeToString(m.hash.Sum(nil))
	return d.line, true, nil
}

// b64Decoder is one run of base64Part: the part being written and the
// shape of the lines read so far.
type b64Decoder struct {
	m     *emitter
	p     *Part
	pw    PartWriter // nil until the first decoded bytes
	size  int64
	line  int  // length of the first line
	lines int  // lines read
	last  bool // the line just read must be the last one
	enc   []byte
}

// run reads the text line by line, decoding as it goes, and commits the
// part at the end.
func (d *b64Decoder) run() error {
	for {
		l, err := d.m.br.ReadSlice('\n')
		switch {
		case err == io.EOF && len(l) > 0, err == bufio.ErrBufferFull:
			return errNotCanonical
		case err == io.EOF:
			return d.finish()
		case err != nil:
			return err
		}
		if err := d.addLine(l); err != nil {
			return err
		}
	}
}

// addLine checks one line (with its CRLF) and queues its text, decoding
// whenever enough is queued.
func (d *b64Decoder) addLine(l []byte) error {
	n := len(l) - 2
	if n < 1 || l[n] != '\r' || d.last {
		return errNotCanonical
	}
	text := l[:n]
	switch {
	case d.line == 0:
		d.line = n
	case n > d.line:
		return errNotCanonical
	case n < d.line:
		d.last = true
	}
	if bytes.IndexByte(text, '\r') >= 0 {
		return errNotCanonical
	}
	if k := bytes.IndexByte(text, '='); k >= 0 {
		if pad := n - k; pad > 2 || text[n-1] != '=' || text[k+pad-1] != '=' {
			return errNotCanonical
		}
		d.last = true
	}
	d.lines++
	d.enc = append(d.enc, text...)
	if len(d.enc) < b64FlushAt {
		return nil
	}
	k := len(d.enc) / 4 * 4
	if err := d.decode(d.enc[:k]); err != nil {
		return err
	}
	d.enc = d.enc[:copy(d.enc, d.enc[k:])]
	return nil
}

// finish decodes what is queued and commits the part.
func (d *b64Decoder) finish() error {
	if d.lines == 0 || len(d.enc)%4 != 0 {
		return errNotCanonical
	}
	if err := d.decode(d.enc); err != nil {
		return err
	}
	if d.pw == nil { // only when nothing decoded, which a non-empty text cannot give
		return errNotCanonical
	}
	pw := d.pw
	d.pw = nil // committed or failed: nothing left to abort
	return pw.Commit()
}

// decode decodes whole base64 quanta and writes them to the part.
func (d *b64Decoder) decode(text []byte) error {
	n, err := d.m.b64.strict.Decode(d.m.b64.dec, text)
	if err != nil {
		return errNotCanonical
	}
	return d.write(d.m.b64.dec[:n])
}

// write writes decoded bytes to the part, creating it on first use.
func (d *b64Decoder) write(data []byte) error {
	if d.pw == nil {
		w, err := d.m.sink.CreatePart(d.p.ID, d.p.Kind)
		if err != nil {
			return err
		}
		d.pw = w
	}
	if _, err := d.pw.Write(data); err != nil {
		return err
	}
	d.m.hash.Write(data)
	d.size += int64(len(data))
	return nil
}

// abort aborts the part, if one was created.
func (d *b64Decoder) abort() error {
	if d.pw != nil {
		return d.pw.Abort()
	}
	return nil
}

// base64Writer encodes plaintext into base64 lines of a fixed length,
// each followed by CRLF, as Join writes a base64 part.
type base64Writer struct {
	w    *bufio.Writer
	line int
	col  int    // characters on the current line
	in   []byte // plaintext not yet encoded (< 3 bytes between writes)
	enc  []byte
}

func newBase64Writer(w *bufio.Writer, line int) *base64Writer {
	return &base64Writer{w: w, line: line, in: make([]byte, 0, 3), enc: make([]byte, 4*(32<<10)/3+4)}
}

// reset readies the writer for a new part with lines of line characters.
func (b *base64Writer) reset(line int) {
	b.line, b.col, b.in = line, 0, b.in[:0]
}

func (b *base64Writer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if len(b.in) > 0 || len(p) < 3 {
			k := min(3-len(b.in), len(p))
			b.in, p = append(b.in, p[:k]...), p[k:]
			if len(b.in) == 3 {
				if err := b.emit(b.in); err != nil {
					return 0, err
				}
				b.in = b.in[:0]
			}
			continue
		}
		k := min(len(p), 3*len(b.enc)/4) / 3 * 3
		if err := b.emit(p[:k]); err != nil {
			return 0, err
		}
		p = p[k:]
	}
	return total, nil
}

// Close encodes what remains (with padding) and ends the last line.
func (b *base64Writer) Close() error {
	if len(b.in) > 0 {
		if err := b.emit(b.in); err != nil {
			return err
		}
		b.in = b.in[:0]
	}
	if b.col > 0 {
		b.col = 0
		_, err := b.w.WriteString("\r\n")
		return err
	}
	return nil
}

func (b *base64Writer) emit(p []byte) error {
	n := base64.StdEncoding.EncodedLen(len(p))
	base64.StdEncoding.Encode(b.enc[:n], p)
	text := b.enc[:n]
	for len(text) > 0 {
		k := min(b.line-b.col, len(text))
		if _, err := b.w.Write(text[:k]); err != nil {
			return err
		}
		text, b.col = text[k:], b.col+k
		if b.col == b.line {
			if _, err := b.w.WriteString("\r\n"); err != nil {
				return err
			}
			b.col = 0
		}
	}
	return nil
}
