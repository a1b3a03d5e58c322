package translate

import (
	"fmt"
	"io"
)

// winSize is the size of the structure scanner's read window.
const winSize = 64 << 10

// window reads the source through one reusable buffer, so that scanning a
// body of any size holds winSize bytes at most.
type window struct {
	r    io.ReaderAt
	size int64
	buf  []byte // the bytes at off; len(buf) valid bytes, cap(buf) == winSize
	off  int64
}

func newWindow(r io.ReaderAt, size int64) *window {
	return &window{r: r, size: size, buf: make([]byte, 0, winSize)}
}

// at returns the source bytes from off on: at least min(n, size-off) of
// them (n <= winSize), possibly more. It returns nothing at the end.
func (w *window) at(off int64, n int) ([]byte, error) {
	if off >= w.size || off < 0 {
		return nil, nil
	}
	end := w.off + int64(len(w.buf))
	if off >= w.off && off <= end && (end-off >= int64(n) || end == w.size) {
		return w.buf[off-w.off:], nil
	}
	m := min(int64(cap(w.buf)), w.size-off)
	buf := w.buf[:m]
	k, err := w.r.ReadAt(buf, off)
	if int64(k) < m {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		w.buf = w.buf[:0]
		return nil, fmt.Errorf("read message at %d: %w", off, err)
	}
	w.buf, w.off = buf, off
	return buf, nil
}

// byteAt returns the source byte at off (0 beyond the end).
func (w *window) byteAt(off int64) (byte, error) {
	b, err := w.at(off, 1)
	if len(b) == 0 {
		return 0, err
	}
	return b[0], nil
}
