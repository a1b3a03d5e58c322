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
	var (
		pw    PartWriter
		size  int64
		lines int
		last  bool // the line just read must be the last one
		enc   = m.b64.enc[:0]
	)
	write := func(data []byte) error {
		if pw == nil {
			w, err := m.sink.CreatePart(p.ID, p.Kind)
			if err != nil {
				return err
			}
			pw = w
		}
		if _, err := pw.Write(data); err != nil {
			return errors.Join(err, pw.Abort())
		}
		m.hash.Write(data)
		size += int64(len(data))
		return nil
	}
	decode := func(text []byte) (bool, error) {
		n, err := m.b64.strict.Decode(m.b64.dec, text)
		if err != nil {
			return false, nil
		}
		return true, write(m.b64.dec[:n])
	}
	fail := func() (int, bool, error) {
		if pw != nil {
			return 0, false, pw.Abort()
		}
		return 0, false, nil
	}
	for {
		l, rerr := m.br.ReadSlice('\n')
		if rerr == io.EOF {
			if len(l) > 0 {
				return fail()
			}
			break
		}
		if rerr != nil {
			if rerr == bufio.ErrBufferFull {
				return fail()
			}
			if pw != nil {
				return 0, false, errors.Join(rerr, pw.Abort())
			}
			return 0, false, rerr
		}
		n := len(l) - 2
		if n < 1 || l[n] != '\r' || last {
			return fail()
		}
		text := l[:n]
		switch {
		case line == 0:
			line = n
		case n > line:
			return fail()
		case n < line:
			last = true
		}
		if bytes.IndexByte(text, '\r') >= 0 {
			return fail()
		}
		if k := bytes.IndexByte(text, '='); k >= 0 {
			if pad := n - k; pad > 2 || text[n-1] != '=' || text[k+pad-1] != '=' {
				return fail()
			}
			last = true
		}
		lines++
		enc = append(enc, text...)
		if len(enc) >= b64FlushAt {
			k := len(enc) / 4 * 4
			if ok, err := decode(enc[:k]); err != nil || !ok {
				if err != nil {
					return 0, false, err
				}
				return fail()
			}
			enc = enc[:copy(enc, enc[k:])]
		}
	}
	if lines == 0 || len(enc)%4 != 0 {
		return fail()
	}
	if ok, err := decode(enc); err != nil || !ok {
		if err != nil {
			return 0, false, err
		}
		return fail()
	}
	if pw == nil { // only when nothing decoded, which a non-empty text cannot give
		return fail()
	}
	if err := pw.Commit(); err != nil {
		return 0, false, err
	}
	if lines == 1 && line <= 76 {
		line = 76 // one line is what any line length up to 76 would give
	}
	p.Size, p.SHA256 = size, hex.EncodeToString(m.hash.Sum(nil))
	return line, true, nil
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
