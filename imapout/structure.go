package imapout

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Limits of the structure scanner: a hostile message cannot make it use
// more memory or stack than this.
const (
	maxDepth       = 32        // nesting of multiparts and message/rfc822
	maxParts       = 2000      // entities per message
	maxHeaderBytes = 256 << 10 // header section kept per entity for parsing
)

// part is one MIME entity of a message as the client sees it, with the
// byte offsets FETCH sections need and what BODYSTRUCTURE reports.
type part struct {
	Type        string            `json:"t"`
	Subtype     string            `json:"s"`
	Params      map[string]string `json:"p,omitempty"`
	ID          string            `json:"i,omitempty"`
	Description string            `json:"d,omitempty"`
	Encoding    string            `json:"e,omitempty"` // lowercase; "" is 7bit
	Disposition string            `json:"di,omitempty"`
	DispParams  map[string]string `json:"dp,omitempty"`
	Language    []string          `json:"l,omitempty"`
	Location    string            `json:"lo,omitempty"`

	HeaderStart int64 `json:"hs"` // offset of the header section
	BodyStart   int64 `json:"bs"` // offset of the body
	End         int64 `json:"en"` // offset after the body
	Lines       int64 `json:"n"`  // line breaks in the body

	Children []*part        `json:"c,omitempty"` // multipart
	Message  *part          `json:"m,omitempty"` // message/rfc822: the enclosed message
	Envelope *imap.Envelope `json:"v,omitempty"` // message/rfc822: its envelope

	bodyLFs int64 // line feeds before the body, while scanning
}

func (p *part) isMultipart() bool { return p.Type == "multipart" }

// isMessage reports whether the body is a whole message (RFC 3501's
// message/rfc822 parts).
func (p *part) isMessage() bool { return p.Message != nil }

// scanResult is what scanning a whole message gives.
type scanResult struct {
	Root     *part
	Header   []byte // the top-level header section (capped)
	Envelope *imap.Envelope
	Size     int64
	// References are the ids of the References field, for THREAD.
	References []string
}

// lineReader reads a message line by line, counting offsets and line
// feeds. Lines longer than its buffer come in fragments.
type lineReader struct {
	br  *bufio.Reader
	off int64 // offset of the next byte
	lfs int64 // line feeds read

	line      []byte
	start     int64 // offset of line
	lfsBefore int64 // line feeds before line
	atStart   bool  // line begins a line (the previous one was complete)
	prevTerm  int   // length of the line break that ended the previous line
	term      int   // length of this line's line break (0: fragment or EOF)
	err       error
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 32<<10), term: 2}
}

func (lr *lineReader) next() bool {
	if lr.err != nil {
		return false
	}
	lr.atStart = lr.term > 0
	lr.prevTerm = lr.term
	lr.start, lr.lfsBefore = lr.off, lr.lfs
	line, err := lr.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		err = nil
	case err == io.EOF && len(line) > 0:
		err = nil
	}
	if err != nil {
		lr.err = err
		return false
	}
	lr.line = line
	lr.off += int64(len(line))
	lr.term = 0
	if n := len(line); n > 0 && line[n-1] == '\n' {
		lr.lfs++
		lr.term = 1
		if n > 1 && line[n-2] == '\r' {
			lr.term = 2
		}
	}
	return true
}

// blank reports whether the current line is empty (ends a header section).
func (lr *lineReader) blank() bool {
	return lr.atStart && (string(lr.line) == "\r\n" || string(lr.line) == "\n")
}

// stop is where an entity ended: at a delimiter line of an enclosing
// multipart (level is its index in the boundary stack), or at the end of
// the message (level -1).
type stop struct {
	level     int
	close     bool
	start     int64 // offset of the delimiter line
	prevTerm  int   // line break before it, which belongs to the delimiter
	lfsBefore int64
}

type scanner struct {
	lr    *lineReader
	parts int
	top   []byte
}

// scanMessage reads a whole message and returns its structure.
func scanMessage(r io.Reader) (*scanResult, error) {
	sc := &scanner{lr: newLineReader(r)}
	root, fs, st := sc.entity(0, nil, false, 0, true)
	if err := sc.lr.err; err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	sc.finish(root, st)
	return &scanResult{Root: root, Header: sc.top, Envelope: envelopeOf(fs), Size: sc.lr.off,
		References: msgIDs(get(fs, "References"))}, nil
}

// delimiter reports whether the current line is a boundary delimiter of one
// of the enclosing multiparts, innermost first.
func (sc *scanner) delimiter(stack []string) (int, bool, bool) {
	lr := sc.lr
	if len(stack) == 0 || !lr.atStart || len(lr.line) < 3 || lr.line[0] != '-' || lr.line[1] != '-' {
		return 0, false, false
	}
	for i := len(stack) - 1; i >= 0; i-- {
		rest, ok := bytes.CutPrefix(lr.line[2:], []byte(stack[i]))
		if !ok {
			continue
		}
		closing := false
		if r, ok := bytes.CutPrefix(rest, []byte("--")); ok {
			rest, closing = r, true
		}
		if len(bytes.TrimRight(rest, " \t\r\n")) == 0 {
			return i, closing, true
		}
	}
	return 0, false, false
}

func (sc *scanner) stopHere(level int, closing bool) stop {
	lr := sc.lr
	return stop{level: level, close: closing, start: lr.start, prevTerm: lr.prevTerm, lfsBefore: lr.lfsBefore}
}

func (sc *scanner) eof() stop {
	return stop{level: -1, start: sc.lr.off, lfsBefore: sc.lr.lfs}
}

// finish sets where p (and the message it encloses) ends, from st.
func (sc *scanner) finish(p *part, st stop) {
	end, lfs := st.start, st.lfsBefore
	if st.level >= 0 && st.prevTerm > 0 && end-int64(st.prevTerm) >= p.BodyStart {
		end -= int64(st.prevTerm)
		lfs--
	}
	for q := p; q != nil; q = q.Message {
		if end < q.BodyStart {
			end = q.BodyStart
		}
		q.End = end
		q.Lines = max(lfs-q.bodyLFs, 0)
	}
	clampChildren(p, p.End)
}

// clampChildren keeps the parts of p inside it. Only malformed messages
// need it: a line break that ends one delimiter line and also starts the
// next one's belongs to both.
func clampChildren(p *part, end int64) {
	for _, c := range append(append([]*part{}, p.Children...), p.Message) {
		if c == nil {
			continue
		}
		c.HeaderStart, c.BodyStart, c.End = min(c.HeaderStart, end), min(c.BodyStart, end), min(c.End, end)
		clampChildren(c, end)
	}
}

// entity scans one entity starting at offset hs: its header section, then
// its body. It returns the entity (End not yet set: see finish), its header
// fields and where it stopped.
func (sc *scanner) entity(hs int64, stack []string, digest bool, depth int, root bool) (*part, []field, stop) {
	sc.parts++
	p := &part{HeaderStart: hs}
	var hdr []byte
	var st stop
	ended, blank := false, false
	for sc.lr.next() {
		if lvl, closing, ok := sc.delimiter(stack); ok {
			st, ended = sc.stopHere(lvl, closing), true
			break
		}
		if sc.lr.blank() {
			blank = true
			break
		}
		if len(hdr)+len(sc.lr.line) <= maxHeaderBytes {
			hdr = append(hdr, sc.lr.line...)
		}
	}
	if ended {
		p.BodyStart, p.bodyLFs = st.start, st.lfsBefore
	} else {
		st = sc.eof()
		p.BodyStart, p.bodyLFs = sc.lr.off, sc.lr.lfs
	}
	if root {
		sc.top = hdr
		if blank {
			sc.top = append(sc.top, sc.lr.line...)
		}
	}
	fs := parseFields(hdr)
	sc.describe(p, fs, digest)
	if ended || sc.lr.err != nil {
		if p.isMultipart() {
			demote(p)
		}
		return p, fs, st
	}
	deep := depth >= maxDepth || sc.parts >= maxParts
	switch {
	case p.isMultipart() && !deep:
		st = sc.multipart(p, stack, depth)
	case p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") && !deep:
		var mfs []field
		p.Message, mfs, st = sc.entity(p.BodyStart, stack, false, depth+1, false)
		p.Envelope = envelopeOf(mfs)
	default:
		if p.isMultipart() {
			demote(p)
		}
		st = sc.leaf(stack)
	}
	return p, fs, st
}

// leaf skips a leaf body up to the next delimiter or the end.
func (sc *scanner) leaf(stack []string) stop {
	for sc.lr.next() {
		if lvl, closing, ok := sc.delimiter(stack); ok {
			return sc.stopHere(lvl, closing)
		}
	}
	return sc.eof()
}

// multipart scans the body of a multipart entity: preamble, children and
// epilogue.
func (sc *scanner) multipart(p *part, stack []string, depth int) stop {
	boundary := p.Params["boundary"]
	stack = append(stack[:len(stack):len(stack)], boundary)
	own := len(stack) - 1
	digest := p.Subtype == "digest"
	var st stop
	found := false
	for sc.lr.next() {
		if lvl, closing, ok := sc.delimiter(stack); ok {
			st, found = sc.stopHere(lvl, closing), true
			break
		}
	}
	if !found {
		st = sc.eof()
	}
	for found && st.level == own && !st.close && sc.parts < maxParts {
		child, _, cst := sc.entity(sc.lr.off, stack, digest, depth+1, false)
		sc.finish(child, cst)
		p.Children = append(p.Children, child)
		st = cst
		if cst.level < 0 {
			found = false
		}
	}
	if found && st.level == own {
		// Epilogue: up to a delimiter of an enclosing multipart.
		outer := false
		for sc.lr.next() {
			if lvl, closing, ok := sc.delimiter(stack); ok && lvl < own {
				st, outer = sc.stopHere(lvl, closing), true
				break
			}
		}
		if !outer {
			st = sc.eof()
		}
	}
	if len(p.Children) == 0 {
		demote(p)
	}
	return st
}

// demote turns a multipart without parts into text/plain, which is what it
// shows as in mail clients; BODYSTRUCTURE cannot express an empty multipart.
func demote(p *part) {
	p.Type, p.Subtype = "text", "plain"
	p.Children = nil
}

// describe fills p's type and the other BODYSTRUCTURE fields from its header.
func (sc *scanner) describe(p *part, fs []field, digest bool) {
	ct := get(fs, "Content-Type")
	media, params, err := mime.ParseMediaType(ct)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		media, params = "", nil
	}
	typ, sub, ok := strings.Cut(strings.ToLower(media), "/")
	if !ok || typ == "" || sub == "" {
		typ, sub = "text", "plain"
		if digest {
			typ, sub = "message", "rfc822"
		}
		if ct == "" && !digest {
			params = map[string]string{"charset": "us-ascii"}
		}
	}
	p.Type, p.Subtype = typ, sub
	if len(params) > 0 {
		p.Params = params
	}
	if p.Type == "multipart" && p.Params["boundary"] == "" {
		demote(p)
	}
	p.ID = get(fs, "Content-Id")
	p.Description = get(fs, "Content-Description")
	p.Encoding = strings.ToLower(get(fs, "Content-Transfer-Encoding"))
	if d := get(fs, "Content-Disposition"); d != "" {
		disp, dparams, err := mime.ParseMediaType(d)
		if err == nil || errors.Is(err, mime.ErrInvalidMediaParameter) {
			p.Disposition = strings.ToLower(disp)
			if len(dparams) > 0 {
				p.DispParams = dparams
			}
		}
	}
	if l := get(fs, "Content-Language"); l != "" {
		for _, tag := range strings.Split(l, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				p.Language = append(p.Language, tag)
			}
		}
	}
	p.Location = get(fs, "Content-Location")
}
