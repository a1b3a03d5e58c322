package imapout

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// metaVersion is the layout of meta (the first byte of its encoding); a
// cache of another version is rebuilt. Version 1 was JSON; version 2
// had decoded subjects and names and no address groups in envelopes;
// version 3 had no Date field as written, no source routes and no
// References.
const metaVersion = 4

// meta is the per-message cache of what listing a mailbox needs (ENVELOPE,
// BODYSTRUCTURE, RFC822.SIZE, header fields for SEARCH and HEADER.FIELDS),
// built once from the verified message and stored encrypted with AES-256-GCM
// under the owner's data key, bound to the message id.
type meta struct {
	Version  int            `json:"v"`
	Size     int64          `json:"z"`
	Header   []byte         `json:"h"` // the top-level header section, possibly capped
	Root     *part          `json:"r"`
	Envelope *imap.Envelope `json:"e"`
	// Text lists the stored parts that hold text, for SEARCH BODY/TEXT
	// without rebuilding the message; nil when unknown.
	Text []textPart `json:"x"`
	// References are the message ids of the References field, for THREAD
	// (the header kept in Header may be capped).
	References []string `json:"f"`
	// upgraded marks a cache read from an older layout and completed;
	// it is stored again in the current one.
	upgraded bool
	// Filter is the text filter of the Text parts (textfilter.go); nil
	// when there is none. Encoded after Text, and only when set, so that
	// caches from before it decode as they are.
	Filter []byte `json:"g,omitempty"`

	// fields are Header's fields, parsed once: an account's cache shares
	// a meta between sessions and searches.
	fieldsOnce sync.Once
	fields     []field
}

// headerFields returns the fields of Header.
func (m *meta) headerFields() []field {
	m.fieldsOnce.Do(func() { m.fields = parseFields(m.Header) })
	return m.fields
}

// textPart is a stored part with text in it, as its catalog describes it.
type textPart struct {
	Blob    string `json:"b"`           // encrypted part's blob hash
	Size    int64  `json:"z"`           // plaintext size
	SHA256  string `json:"h"`           // plaintext SHA-256
	Decode  string `json:"d,omitempty"` // transfer encoding left to undo
	Charset string `json:"c,omitempty"`
}

// errMetaVersion marks a cache built by another version.
var errMetaVersion = errors.New("metadata cache of another version")

func newMeta(s *scanResult) *meta {
	return &meta{Version: metaVersion, Size: s.Size, Header: s.Header, Root: s.Root, Envelope: s.Envelope, References: s.References}
}

// fullHeader reports whether Header holds the whole top-level header
// section, so header sections can be answered without opening the message.
func (m *meta) fullHeader() bool {
	return int64(len(m.Header)) == m.Root.BodyStart
}

// metaCipher encrypts and decrypts metadata caches for one user.
type metaCipher struct {
	aead cipher.AEAD
}

func newMetaCipher(key [32]byte) (*metaCipher, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("metadata key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("metadata key: %w", err)
	}
	return &metaCipher{aead: aead}, nil
}

func metaAD(messageID int64) []byte {
	ad := []byte("tollbridge meta v1 ........")
	binary.BigEndian.PutUint64(ad[len(ad)-8:], uint64(messageID))
	return ad
}

func (c *metaCipher) seal(m *meta, messageID int64) ([]byte, error) {
	plain := encodeMeta(m)
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	rand.Read(nonce)
	return c.aead.Seal(nonce, nonce, plain, metaAD(messageID)), nil
}

func (c *metaCipher) open(b []byte, messageID int64) (*meta, error) {
	n := c.aead.NonceSize()
	if len(b) < n+c.aead.Overhead() {
		return nil, errors.New("metadata: too short")
	}
	plain, err := c.aead.Open(nil, b[:n], b[n:], metaAD(messageID))
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return decodeMeta(plain)
}

// bodyStructure converts a part to what FETCH BODYSTRUCTURE writes.
func (p *part) bodyStructure() imap.BodyStructure {
	if p.isMultipart() && len(p.Children) > 0 {
		bs := &imap.BodyStructureMultiPart{
			Subtype: p.Subtype,
			Extended: &imap.BodyStructureMultiPartExt{
				Params:      p.Params,
				Disposition: p.disposition(),
				Language:    p.Language,
				Location:    p.Location,
			},
		}
		for _, c := range p.Children {
			bs.Children = append(bs.Children, c.bodyStructure())
		}
		return bs
	}
	typ, sub := p.Type, p.Subtype
	if typ == "multipart" {
		typ, sub = "text", "plain"
	}
	bs := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     sub,
		Params:      p.Params,
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        uint32(min(p.End-p.BodyStart, 1<<32-1)),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: p.disposition(),
			Language:    p.Language,
			Location:    p.Location,
		},
	}
	switch {
	case typ == "message" && (sub == "rfc822" || sub == "global"):
		msg := &imap.BodyStructureMessageRFC822{Envelope: p.Envelope, NumLines: p.Lines}
		if p.Message != nil {
			msg.BodyStructure = p.Message.bodyStructure()
		} else {
			// Nested too deep to describe: an empty text part.
			msg.BodyStructure = &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain",
				Extended: &imap.BodyStructureSinglePartExt{}}
		}
		if msg.Envelope == nil {
			msg.Envelope = &imap.Envelope{}
		}
		bs.MessageRFC822 = msg
	case typ == "text":
		bs.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return bs
}

func (p *part) disposition() *imap.BodyStructureDisposition {
	if p.Disposition == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispParams}
}

// find returns the entity a section part number (RFC 3501 §6.4.5) names.
func (root *part) find(path []int) (*part, bool) {
	sel := root
	for i, k := range path {
		ctx := sel
		if i > 0 {
			switch {
			case sel.isMessage():
				ctx = sel.Message
			case sel.isMultipart():
			default:
				return nil, false
			}
		}
		switch {
		case ctx.isMultipart():
			if k < 1 || k > len(ctx.Children) {
				return nil, false
			}
			sel = ctx.Children[k-1]
		case k == 1:
			sel = ctx
		default:
			return nil, false
		}
	}
	return sel, true
}

// span is a byte range of the message.
type span struct{ start, end int64 }

// locate returns the byte range of a BODY section: for HEADER.FIELDS, the
// header section to filter.
func (m *meta) locate(path []int, spec imap.PartSpecifier) (span, bool) {
	if len(path) == 0 {
		r := m.Root
		switch spec {
		case imap.PartSpecifierNone:
			return span{0, m.Size}, true
		case imap.PartSpecifierHeader:
			return span{r.HeaderStart, r.BodyStart}, true
		case imap.PartSpecifierText:
			return span{r.BodyStart, r.End}, true
		}
		return span{}, false
	}
	p, ok := m.Root.find(path)
	if !ok {
		return span{}, false
	}
	switch spec {
	case imap.PartSpecifierNone:
		return span{p.BodyStart, p.End}, true
	case imap.PartSpecifierMIME:
		return span{p.HeaderStart, p.BodyStart}, true
	}
	if p.isMessage() {
		p = p.Message
	}
	if spec == imap.PartSpecifierHeader {
		return span{p.HeaderStart, p.BodyStart}, true
	}
	return span{p.BodyStart, p.End}, true
}
