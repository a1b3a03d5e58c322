package translate

import (
	"bytes"
	"fmt"
	"io"
	"sort"
)

// maxBccCuts bounds the Bcc fields stripBcc removes from one header.
const maxBccCuts = 10000

// stripBcc returns a view of the message without its top-level Bcc fields
// (each with its continuation lines). The header section ends at the first
// empty line, as for the scanner.
func stripBcc(src io.ReaderAt, size int64) (io.ReaderAt, int64, error) {
	w := newWindow(src, size)
	var (
		cuts  []span
		inBcc bool
		pos   int64
	)
	for {
		b, err := w.at(pos, 256)
		if err != nil {
			return nil, 0, err
		}
		if len(b) == 0 || emptyLine(b) > 0 {
			break
		}
		continuation := b[0] == ' ' || b[0] == '\t'
		if !continuation {
			head := b[:min(len(b), 256)]
			if i := bytes.IndexByte(head, '\n'); i >= 0 {
				head = head[:i]
			}
			inBcc = isBccLine(head)
		}
		end, err := lineEnd(w, pos)
		if err != nil {
			return nil, 0, err
		}
		if inBcc {
			if n := len(cuts); n > 0 && cuts[n-1].end == pos {
				cuts[n-1].end = end
			} else if n < maxBccCuts {
				cuts = append(cuts, span{pos, end})
			} else {
				return nil, 0, fmt.Errorf("more than %d Bcc fields", maxBccCuts)
			}
		}
		pos = end
	}
	if len(cuts) == 0 {
		return src, size, nil
	}
	return newCutReader(src, size, cuts)
}

// lineEnd returns the offset after the line break of the line at pos, or
// the end of the input.
func lineEnd(w *window, pos int64) (int64, error) {
	for {
		b, err := w.at(pos, 1)
		if err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return pos, nil
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
		pos += int64(len(b))
	}
}

type span struct{ start, end int64 }

// cutReader is an io.ReaderAt over src with some spans left out.
type cutReader struct {
	src   io.ReaderAt
	keeps []keep
	size  int64
}

// keep maps a kept span of src to its offset in the view.
type keep struct {
	at, src, n int64
}

func newCutReader(src io.ReaderAt, size int64, cuts []span) (*cutReader, int64, error) {
	r := &cutReader{src: src}
	var pos int64
	add := func(start, end int64) {
		if end > start {
			r.keeps = append(r.keeps, keep{at: r.size, src: start, n: end - start})
			r.size += end - start
		}
	}
	for _, c := range cuts {
		add(pos, c.start)
		pos = c.end
	}
	add(pos, size)
	return r, r.size, nil
}

func (r *cutReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	i := sort.Search(len(r.keeps), func(i int) bool { return r.keeps[i].at+r.keeps[i].n > off })
	total := 0
	for ; len(p) > 0 && i < len(r.keeps); i++ {
		k := r.keeps[i]
		rel := off - k.at
		n := min(int64(len(p)), k.n-rel)
		m, err := r.src.ReadAt(p[:n], k.src+rel)
		total += m
		if int64(m) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return total, err
		}
		p, off = p[n:], off+n
	}
	if len(p) > 0 {
		return total, io.EOF
	}
	return total, nil
}
