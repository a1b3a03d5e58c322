package imapout

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"tollbridge/seal"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"

	"tollbridge/store"
)

// bodyContains looks for needle, case-insensitively, in the text parts of
// a message, after undoing their transfer encoding and converting their
// charset to UTF-8. Only verified content counts: a part whose size or
// SHA-256 differs from its catalog's, or whose MDC fails, makes the message
// unreadable.
func (s *session) bodyContains(row *store.MessageRow, md *meta, sealed func() (*store.SealedMessage, error), needle string) (bool, error) {
	if md.Text == nil {
		return s.renderedContains(row, md, needle)
	}
	if len(md.Text) == 0 {
		return needle == "", nil
	}
	key := s.acct.keys.get(row.Catalog)
	if key == nil {
		m, err := sealed()
		if err != nil {
			return false, err
		}
		if key, err = s.acct.sessionKey(m); err != nil {
			return false, err
		}
	}
	m := newMatcher(needle)
	for _, tp := range md.Text {
		if err := s.acct.feedPart(key, tp, m, s.copyBuf()); err != nil {
			return false, err
		}
		m.flush()
	}
	return m.found, nil
}

// feedPart writes one decrypted, decoded text part to w and checks it
// against its catalog entry.
func (a *account) feedPart(key *seal.SessionKey, tp textPart, w io.Writer, buf []byte) error {
	f, err := a.srv.st.Blobs().Open(tp.Blob)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnreadable, err)
	}
	defer f.Close()
	pr, err := key.DecryptPart(f)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnreadable, err)
	}
	h := sha256.New()
	counted := &countWriter{w: h}
	plain := io.TeeReader(pr, counted)
	// A decoding error stops the search in this part; the rest is still
	// read and checked below (and a decryption error comes back there).
	io.CopyBuffer(w, decodeBody(plain, tp.Decode, tp.Charset), buf)
	if _, err := io.Copy(io.Discard, plain); err != nil {
		return fmt.Errorf("%w: %w", errUnreadable, err)
	}
	if counted.n != tp.Size || hex.EncodeToString(h.Sum(nil)) != tp.SHA256 {
		return fmt.Errorf("%w: text part does not match its catalog", errUnreadable)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

// Write counts and passes p on.
func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

// renderedContains is bodyContains for a metadata cache without a list
// of text parts (APPENDed mail): it searches the text leaves of the
// rebuilt message.
func (s *session) renderedContains(row *store.MessageRow, md *meta, needle string) (bool, error) {
	msg, err := s.rendered(row, md)
	if err != nil {
		return false, err
	}
	m := newMatcher(needle)
	if err := renderedText(md.Root, msg, m); err != nil {
		return false, err
	}
	return m.found, nil
}

// textSink takes the decoded text of a message, a part at a time.
type textSink interface {
	io.Writer
	flush()     // ends a part
	done() bool // wants no more
}

// renderedText writes the decoded text leaves of a message described by
// root to sink.
func renderedText(root *part, msg interface{ Section(off, n int64) io.Reader }, sink textSink) error {
	var walk func(p *part) error
	walk = func(p *part) error {
		switch {
		case sink.done():
			return nil
		case p.isMultipart():
			for _, c := range p.Children {
				if err := walk(c); err != nil {
					return err
				}
			}
			return nil
		case p.isMessage():
			return walk(p.Message)
		case p.Type != "text":
			return nil
		}
		r := decodeBody(msg.Section(p.BodyStart, p.End-p.BodyStart), p.Encoding, p.Params["charset"])
		_, err := io.Copy(sink, r)
		sink.flush()
		return err
	}
	return walk(root)
}

// decodeBody undoes a body's transfer encoding and converts it to UTF-8.
func decodeBody(r io.Reader, encoding, cs string) io.Reader {
	switch encoding {
	case "base64":
		r = base64.NewDecoder(base64.RawStdEncoding, &base64Filter{r: r})
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	switch strings.ToLower(cs) {
	case "", "utf-8", "utf8", "us-ascii":
		return r
	}
	if cr, err := charset.Reader(cs, r); err == nil {
		return cr
	}
	return r
}

// matcher finds a needle in a stream, case-insensitively, with constant
// memory: it keeps only the end of what it saw that could start a match.
type matcher struct {
	needle []byte
	tail   []byte // lowercased end of the text so far
	carry  []byte // an incomplete UTF-8 sequence at the end of the last write
	found  bool
}

func newMatcher(needle string) *matcher {
	return &matcher{needle: []byte(strings.ToLower(needle)), found: needle == ""}
}

// Write looks at p, following what came before.
func (m *matcher) Write(p []byte) (int, error) {
	n := len(p)
	if m.found {
		return n, nil
	}
	if len(m.carry) > 0 {
		p = append(m.carry, p...)
		m.carry = nil
	}
	// Keep an incomplete rune for the next write, so lowercasing never
	// sees half of one.
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				m.carry = append([]byte{}, p[i:]...)
				p = p[:i]
			}
			break
		}
	}
	buf := append(m.tail, bytes.ToLower(p)...)
	if bytes.Contains(buf, m.needle) {
		m.found = true
		return n, nil
	}
	keep := min(len(buf), len(m.needle))
	m.tail = append(m.tail[:0], buf[len(buf)-keep:]...)
	return n, nil
}

func (m *matcher) done() bool { return m.found }

// flush ends one text: a match never spans two parts.
func (m *matcher) flush() {
	if !m.found && len(m.carry) > 0 && bytes.Contains(append(m.tail, bytes.ToLower(m.carry)...), m.needle) {
		m.found = true
	}
	m.tail, m.carry = m.tail[:0], nil
}
