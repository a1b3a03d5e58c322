package imapout

import (
	"encoding/binary"
	"errors"
	"sort"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The metadata cache is read for every message of every listing, so it is
// a compact binary encoding rather than JSON (which cost more than half of
// a warm FETCH 1:* (ENVELOPE BODYSTRUCTURE)). Integers are varints,
// strings and byte slices are length-prefixed, and slices and maps carry
// their length plus one so that nil and empty stay apart.

var errMetaCorrupt = errors.New("metadata: corrupt encoding")

type metaWriter struct {
	b []byte
	v int // the layout version written: m.Version (older ones for tests)
}

func (w *metaWriter) int(v int64)  { w.b = binary.AppendVarint(w.b, v) }
func (w *metaWriter) uint(v int)   { w.b = binary.AppendUvarint(w.b, uint64(v)) }
func (w *metaWriter) str(s string) { w.uint(len(s)); w.b = append(w.b, s...) }
func (w *metaWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// count writes a length that keeps nil apart from empty.
func (w *metaWriter) count(n int, isNil bool) {
	if isNil {
		w.uint(0)
		return
	}
	w.uint(n + 1)
}

func (w *metaWriter) bytes(b []byte) { w.count(len(b), b == nil); w.b = append(w.b, b...) }

func (w *metaWriter) strs(ss []string) {
	w.count(len(ss), ss == nil)
	for _, s := range ss {
		w.str(s)
	}
}

func (w *metaWriter) params(m map[string]string) {
	w.count(len(m), m == nil)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.str(k)
		w.str(m[k])
	}
}

func (w *metaWriter) addresses(as []imap.Address) {
	w.count(len(as), as == nil)
	for _, a := range as {
		w.str(a.Name)
		w.str(a.Mailbox)
		w.str(a.Host)
		if w.v >= 4 {
			w.str(a.Route)
		}
	}
}

func (w *metaWriter) envelope(e *imap.Envelope) {
	w.bool(e != nil)
	if e == nil {
		return
	}
	w.bool(!e.Date.IsZero())
	if !e.Date.IsZero() {
		_, off := e.Date.Zone()
		w.int(e.Date.Unix())
		w.int(int64(e.Date.Nanosecond()))
		w.int(int64(off))
	}
	w.str(e.Subject)
	for _, as := range [][]imap.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		w.addresses(as)
	}
	w.strs(e.InReplyTo)
	w.str(e.MessageID)
	if w.v >= 4 {
		w.str(e.DateText)
	}
}

func (w *metaWriter) part(p *part) {
	w.bool(p != nil)
	if p == nil {
		return
	}
	for _, s := range []string{p.Type, p.Subtype, p.ID, p.Description, p.Encoding, p.Disposition, p.Location} {
		w.str(s)
	}
	w.params(p.Params)
	w.params(p.DispParams)
	w.strs(p.Language)
	for _, v := range []int64{p.HeaderStart, p.BodyStart, p.End, p.Lines} {
		w.int(v)
	}
	w.count(len(p.Children), p.Children == nil)
	for _, c := range p.Children {
		w.part(c)
	}
	w.part(p.Message)
	w.envelope(p.Envelope)
}

// encodeMeta writes m, version byte first.
func encodeMeta(m *meta) []byte {
	w := &metaWriter{b: make([]byte, 0, 512), v: m.Version}
	w.b = append(w.b, byte(m.Version))
	w.int(m.Size)
	w.bytes(m.Header)
	w.part(m.Root)
	w.envelope(m.Envelope)
	w.count(len(m.Text), m.Text == nil)
	for _, t := range m.Text {
		for _, s := range []string{t.Blob, t.SHA256, t.Decode, t.Charset} {
			w.str(s)
		}
		w.int(t.Size)
	}
	if w.v >= 4 {
		w.strs(m.References)
	}
	if m.Filter != nil {
		w.bytes(m.Filter)
	}
	return w.b
}

type metaReader struct {
	b   []byte
	err error
	v   byte // the layout version being read
}

func (r *metaReader) fail() { r.err = errMetaCorrupt; r.b = nil }

func (r *metaReader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) uint() int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *metaReader) raw(n int) []byte {
	if n > len(r.b) {
		r.fail()
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *metaReader) str() string { return string(r.raw(r.uint())) }

// count reads a length written by metaWriter.count: -1 for nil.
func (r *metaReader) count() int { return r.uint() - 1 }

func (r *metaReader) bytes() []byte {
	n := r.count()
	if n < 0 {
		return nil
	}
	return append([]byte{}, r.raw(n)...)
}

func (r *metaReader) strs() []string {
	n := r.count()
	if n < 0 || r.err != nil {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.str()
	}
	return ss
}

func (r *metaReader) params() map[string]string {
	n := r.count()
	if n < 0 || r.err != nil {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		k := r.str()
		m[k] = r.str()
	}
	return m
}

func (r *metaReader) addresses() []imap.Address {
	n := r.count()
	if n < 0 || r.err != nil {
		return nil
	}
	as := make([]imap.Address, n)
	for i := range as {
		as[i] = imap.Address{Name: r.str(), Mailbox: r.str(), Host: r.str()}
		if r.v >= 4 {
			as[i].Route = r.str()
		}
	}
	return as
}

// flag reads one byte written by metaWriter.bool.
func (r *metaReader) flag() bool {
	b := r.raw(1)
	return len(b) == 1 && b[0] == 1
}

func (r *metaReader) envelope() *imap.Envelope {
	if !r.flag() {
		return nil
	}
	e := &imap.Envelope{}
	if r.flag() {
		sec, nsec, off := r.int(), r.int(), r.int()
		e.Date = time.Unix(sec, nsec).In(time.FixedZone("", int(off)))
	}
	e.Subject = r.str()
	for _, as := range []*[]imap.Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		*as = r.addresses()
	}
	e.InReplyTo = r.strs()
	e.MessageID = r.str()
	if r.v >= 4 {
		e.DateText = r.str()
	}
	return e
}

func (r *metaReader) part(depth int) *part {
	if depth > 128 {
		r.fail()
	}
	if r.err != nil || !r.flag() {
		return nil
	}
	p := &part{}
	for _, s := range []*string{&p.Type, &p.Subtype, &p.ID, &p.Description, &p.Encoding, &p.Disposition, &p.Location} {
		*s = r.str()
	}
	p.Params = r.params()
	p.DispParams = r.params()
	p.Language = r.strs()
	for _, v := range []*int64{&p.HeaderStart, &p.BodyStart, &p.End, &p.Lines} {
		*v = r.int()
	}
	if n := r.count(); n >= 0 && r.err == nil {
		p.Children = make([]*part, n)
		for i := range p.Children {
			p.Children[i] = r.part(depth + 1)
		}
	}
	p.Message = r.part(depth + 1)
	p.Envelope = r.envelope()
	return p
}

// decodeMeta reads what encodeMeta wrote; a version 3 cache is read and
// upgraded from its header (see upgrade), another version is
// errMetaVersion (the cache is rebuilt).
func decodeMeta(b []byte) (*meta, error) {
	if len(b) == 0 || b[0] != metaVersion && b[0] != 3 {
		return nil, errMetaVersion
	}
	r := &metaReader{b: b[1:], v: b[0]}
	m := &meta{Version: metaVersion}
	m.Size = r.int()
	m.Header = r.bytes()
	m.Root = r.part(0)
	m.Envelope = r.envelope()
	if n := r.count(); n >= 0 && r.err == nil {
		m.Text = make([]textPart, n)
		for i := range m.Text {
			t := &m.Text[i]
			t.Blob, t.SHA256, t.Decode, t.Charset = r.str(), r.str(), r.str(), r.str()
			t.Size = r.int()
		}
	}
	if r.v >= 4 {
		m.References = r.strs()
	}
	if len(r.b) > 0 && r.err == nil {
		if m.Filter = r.bytes(); !validFilter(m.Filter) {
			return nil, errMetaCorrupt
		}
	}
	if r.err != nil || len(r.b) != 0 || m.Root == nil {
		return nil, errMetaCorrupt
	}
	if r.v == 3 {
		m.upgrade()
	}
	return m, nil
}

// upgrade fills in what version 3 did not keep, from the header section
// it kept: the top-level ENVELOPE again (the Date field as written,
// source routes) and References. Nested messages' envelopes keep their
// version 3 form. The caller stores the upgraded cache.
func (m *meta) upgrade() {
	fs := parseFields(m.Header)
	if m.fullHeader() || m.Envelope == nil {
		m.Envelope = envelopeOf(fs)
	} else if d := get(fs, "Date"); d != "" {
		m.Envelope.DateText = d
	}
	m.References = msgIDs(get(fs, "References"))
	m.Version = metaVersion
	m.upgraded = true
}
