package translate

import (
	"bytes"
	"errors"
)

// Limits of the structure scanner. A multipart or message entity that
// would exceed them is kept whole as one opaque leaf body instead, so a
// hostile message costs bounded memory and still round-trips.
type limits struct {
	budget   int64 // bytes of catalog segments (headers, preambles, boundary lines, epilogues)
	header   int64 // bytes of one header section
	nodes    int   // entities
	depth    int   // container nesting
	boundary int   // longest boundary parameter accepted
}

func defaultLimits() limits {
	return limits{budget: 4 << 20, header: 256 << 10, nodes: 2000, depth: 32, boundary: 200}
}

// errOverflow says a header section did not fit the limits.
var errOverflow = errors.New("message structure exceeds limits")

// stop is where a body (and every entity that ends with it) stops: at a
// boundary delimiter line of some enclosing multipart, or at the end of
// the input.
type stop struct {
	found bool  // a delimiter line; false: end of input
	level int   // index of its boundary in the stack
	close bool  // a close delimiter (--boundary--)
	start int64 // where the delimiter's segment starts: the line break before the line, when the region has it
	end   int64 // after the line and its line break
	crlf  bool  // the segment starts with the CRLF before the line
}

type entityKind int

const (
	leafEntity entityKind = iota
	multipartEntity
	messageEntity
)

// entity is the structure of one MIME entity found by the scanner, with
// offsets into the source. Segments of a multipart body are recorded by
// their end only: the emitter starts each at the running position, which
// may have moved past the planned start when a base64 body took the CRLF
// that opens the following delimiter segment.
type entity struct {
	header []byte
	kind   entityKind
	end    int64 // end of the entity
	ctype  string
	media  string
	cte    string
	name   string
	items  []mpItem // multipart
	child  *entity  // message
	borrow bool     // leaf: end..end+2 is the CRLF of the following delimiter segment
}

type mpItem struct {
	segEnd int64   // a segment from the running position to segEnd
	child  *entity // or a child entity
}

// parser finds the structure of a message without keeping any body.
type parser struct {
	w      *window
	size   int64
	lim    limits
	budget int64
	nodes  int
	nl     []byte // "\n--": what precedes a boundary in a delimiter line that is not the first
}

func newParser(w *window, lim limits) *parser {
	return &parser{w: w, size: w.size, lim: lim, budget: lim.budget, nodes: lim.nodes, nl: []byte("\n--")}
}

func (p *parser) eof() stop { return stop{start: p.size, end: p.size} }

func (p *parser) spend(n int64) bool {
	if n > p.budget {
		return false
	}
	p.budget -= n
	return true
}

// findStop finds the first delimiter line of any boundary in stack at a
// line start at or after from (itself a line start) in the region that
// starts at region.
func (p *parser) findStop(region, from int64, stack []string) (stop, error) {
	if len(stack) == 0 {
		return p.eof(), nil
	}
	if s, ok, err := p.delimAt(region, from, stack); ok || err != nil {
		return s, err
	}
	pos := from
	for {
		w, err := p.w.at(pos, 512)
		if err != nil {
			return stop{}, err
		}
		if len(w) < len(p.nl) {
			return p.eof(), nil
		}
		i := bytes.Index(w, p.nl)
		if i < 0 {
			if pos+int64(len(w)) >= p.size {
				return p.eof(), nil
			}
			pos += int64(len(w)) - int64(len(p.nl)-1)
			continue
		}
		line := pos + int64(i) + 1
		if s, ok, err := p.delimAt(region, line, stack); ok || err != nil {
			return s, err
		}
		pos = line
	}
}

// delimAt reports whether the line at line is a delimiter line of a
// boundary in stack, innermost first.
func (p *parser) delimAt(region, line int64, stack []string) (stop, bool, error) {
	w, err := p.w.at(line, 2+p.lim.boundary+2)
	if err != nil || len(w) < 2 || w[0] != '-' || w[1] != '-' {
		return stop{}, false, err
	}
	for level := len(stack) - 1; level >= 0; level-- {
		b := stack[level]
		if len(w) < 2+len(b) || string(w[2:2+len(b)]) != b {
			continue
		}
		q := line + 2 + int64(len(b))
		rest := w[2+len(b):]
		isClose := len(rest) >= 2 && rest[0] == '-' && rest[1] == '-'
		if isClose {
			q += 2
		}
		end, ok, err := p.lineRest(q)
		if err != nil {
			return stop{}, false, err
		}
		if !ok {
			continue
		}
		s := stop{found: true, level: level, close: isClose, start: line, end: end}
		if err := p.takeLineBreak(&s, region); err != nil {
			return stop{}, false, err
		}
		return s, true, nil
	}
	return stop{}, false, nil
}

// takeLineBreak moves the start of a delimiter segment back over the line
// break before its line, when that line break is inside the region (RFC
// 2046 §5.1.1: the CRLF before a boundary line belongs to the boundary).
func (p *parser) takeLineBreak(s *stop, region int64) error {
	if s.start <= region {
		return nil
	}
	c, err := p.w.byteAt(s.start - 1)
	if err != nil || c != '\n' {
		return err
	}
	s.start--
	if s.start <= region {
		return nil
	}
	if c, err = p.w.byteAt(s.start - 1); err != nil {
		return err
	}
	if c == '\r' {
		s.start--
		s.crlf = true
	}
	return nil
}

// lineRest checks that from q on a line holds only transport padding
// (spaces and tabs) before its line break or the end of the input, and
// returns where the next line starts.
func (p *parser) lineRest(q int64) (int64, bool, error) {
	for {
		w, err := p.w.at(q, 2)
		if err != nil {
			return 0, false, err
		}
		if len(w) == 0 {
			return p.size, true, nil
		}
		for i, c := range w {
			switch c {
			case ' ', '\t':
				continue
			case '\n':
				return q + int64(i) + 1, true, nil
			case '\r':
				w2, err := p.w.at(q+int64(i), 2)
				if err != nil {
					return 0, false, err
				}
				if len(w2) >= 2 && w2[1] == '\n' {
					return q + int64(i) + 2, true, nil
				}
			}
			return 0, false, nil
		}
		q += int64(len(w))
	}
}

// readHeader reads the header section that starts at start: its lines up
// to and including the first empty line. A delimiter line of the stack or
// the end of the input ends it early: then cut is true, s is that stop and
// the header ends at s.start with an empty body.
func (p *parser) readHeader(start int64, stack []string) (hdr []byte, end int64, s stop, cut bool, err error) {
	pos := start
	for {
		if len(stack) > 0 {
			d, ok, err := p.delimAt(start, pos, stack)
			if err != nil {
				return nil, 0, stop{}, false, err
			}
			if ok {
				return hdr[:d.start-start], d.start, d, true, nil
			}
		}
		w, err := p.w.at(pos, 2)
		if err != nil {
			return nil, 0, stop{}, false, err
		}
		if len(w) == 0 {
			return hdr, pos, p.eof(), true, nil
		}
		if n := emptyLine(w); n > 0 {
			if !p.spend(int64(n)) {
				return nil, 0, stop{}, false, errOverflow
			}
			return append(hdr, w[:n]...), pos + int64(n), stop{}, false, nil
		}
		for {
			i := bytes.IndexByte(w, '\n')
			chunk := w
			if i >= 0 {
				chunk = w[:i+1]
			}
			if !p.spend(int64(len(chunk))) || int64(len(hdr)+len(chunk)) > p.lim.header {
				return nil, 0, stop{}, false, errOverflow
			}
			hdr = append(hdr, chunk...)
			pos += int64(len(chunk))
			if i >= 0 {
				break
			}
			if w, err = p.w.at(pos, 1); err != nil {
				return nil, 0, stop{}, false, err
			}
			if len(w) == 0 {
				return hdr, pos, p.eof(), true, nil
			}
		}
	}
}

// emptyLine returns the length of the empty line at the start of w, or 0.
func emptyLine(w []byte) int {
	switch {
	case len(w) >= 1 && w[0] == '\n':
		return 1
	case len(w) >= 2 && w[0] == '\r' && w[1] == '\n':
		return 2
	}
	return 0
}
