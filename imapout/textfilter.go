package imapout

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"io"
	"strings"
	"unicode/utf8"

	"tollbridge/seal"
)

// The text filter is SEARCH BODY/TEXT's index: a Bloom filter of every
// three-byte sequence (trigram) of a message's lowercased, decoded text
// parts, kept in the message's metadata cache and so sealed with it under
// the owner's data key (docs/architecture.md §4, "SEARCH TEXT"). A needle
// of three bytes or more whose trigrams are not all in the filter is not
// in the message: no part is decrypted. Any other message is searched as
// before, so the filter only ever saves work; it never decides a match.
//
// Layout: one byte of probes k, then the bit array (a multiple of 8
// bytes). nil means no filter (an older cache, or too much text).

const (
	filterProbes   = 4
	filterBits     = 12      // per distinct trigram: ~1% false positives
	filterMaxGrams = 1 << 16 // more distinct trigrams: no filter
)

// trigrams collects the distinct trigrams of the text written to it, one
// part at a time (flush between parts), lowercasing exactly as matcher
// does so that whatever matcher finds, the filter holds.
type trigrams struct {
	set   map[uint32]struct{}
	tail  []byte
	carry []byte
	full  bool // over filterMaxGrams
}

func newTrigrams() *trigrams { return &trigrams{set: map[uint32]struct{}{}} }

// Write adds the trigrams of p, following what came before.
func (t *trigrams) Write(p []byte) (int, error) {
	n := len(p)
	if t.full {
		return n, nil
	}
	if len(t.carry) > 0 {
		p = append(t.carry, p...)
		t.carry = nil
	}
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				t.carry = append([]byte{}, p[i:]...)
				p = p[:i]
			}
			break
		}
	}
	t.add(append(t.tail, bytes.ToLower(p)...))
	return n, nil
}

// add adds the trigrams of buf and keeps its last two bytes.
func (t *trigrams) add(buf []byte) {
	for i := 0; i+3 <= len(buf) && !t.full; i++ {
		t.set[uint32(buf[i])<<16|uint32(buf[i+1])<<8|uint32(buf[i+2])] = struct{}{}
		t.full = len(t.set) > filterMaxGrams
	}
	keep := min(len(buf), 2)
	t.tail = append(t.tail[:0], buf[len(buf)-keep:]...)
}

func (t *trigrams) done() bool { return t.full }

// flush ends one part, as matcher.flush does.
func (t *trigrams) flush() {
	if len(t.carry) > 0 {
		t.add(append(t.tail, bytes.ToLower(t.carry)...))
	}
	t.tail, t.carry = t.tail[:0], nil
}

// filter returns the Bloom filter of the trigrams, nil when too many.
func (t *trigrams) filter() []byte {
	if t.full {
		return nil
	}
	words := max(1, (len(t.set)*filterBits+63)/64)
	f := make([]byte, 1+8*words)
	f[0] = filterProbes
	for g := range t.set {
		for _, bit := range probes(g, uint64(words*64)) {
			f[1+bit/8] |= 1 << (bit % 8)
		}
	}
	return f
}

// probes are the bit positions of trigram g in a filter of m bits.
func probes(g uint32, m uint64) [filterProbes]uint64 {
	h := fnv.New64a()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], g)
	h.Write(b[:])
	sum := h.Sum64()
	h1, h2 := sum&0xffffffff, sum>>32|1
	var out [filterProbes]uint64
	for i := range out {
		out[i] = (h1 + uint64(i)*h2) % m
	}
	return out
}

// validFilter reports whether f has the filter's layout.
func validFilter(f []byte) bool {
	return len(f) >= 9 && f[0] == filterProbes && (len(f)-1)%8 == 0
}

// mayContain reports whether text with filter f may contain needle
// (case-insensitively); true when there is no filter or the needle is
// too short to tell.
func mayContain(f []byte, needle string) bool {
	low := []byte(strings.ToLower(needle))
	if !validFilter(f) || len(low) < 3 {
		return true
	}
	m := uint64(len(f)-1) * 8
	for i := 0; i+3 <= len(low); i++ {
		g := uint32(low[i])<<16 | uint32(low[i+1])<<8 | uint32(low[i+2])
		for _, bit := range probes(g, m) {
			if f[1+bit/8]&(1<<(bit%8)) == 0 {
				return false
			}
		}
	}
	return true
}

// textFilter builds the filter of a message's text parts, decrypting and
// decoding them as SEARCH does; nil when a part cannot be read (the
// message is then searched the slow way, which reports the damage).
func (a *account) textFilter(key *seal.SessionKey, parts []textPart) []byte {
	t := newTrigrams()
	buf := make([]byte, 32<<10)
	for _, tp := range parts {
		if err := a.feedPart(key, tp, t, buf); err != nil {
			return nil
		}
		t.flush()
	}
	return t.filter()
}

// renderedFilter builds the filter of a message as the client sees it
// (APPEND, import: the saved bytes), from its text leaves as
// renderedContains searches them; nil when the text cannot be read.
func renderedFilter(root *part, msg interface{ Section(off, n int64) io.Reader }) []byte {
	t := newTrigrams()
	if err := renderedText(root, msg, t); err != nil {
		return nil
	}
	return t.filter()
}
