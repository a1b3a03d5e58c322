package translate

import "unicode/utf8"

// Version is the catalog format version this package reads and writes.
const Version = 1

// Part kinds (docs/protocol.md §3.4).
const (
	KindBlock      = "block"      // a text/* leaf body
	KindAttachment = "attachment" // any other leaf body
)

// Transfer encodings of a part reference.
const (
	EncodingIdentity = "identity" // the part is inserted as is
	EncodingBase64   = "base64"   // the part is base64-encoded in lines of Line characters, each followed by CRLF
)

// Catalog describes one message: a few header fields for display and
// indexing, the list of parts, and the MIME tree that rebuilds the message.
type Catalog struct {
	Version    int      `json:"version"`
	From       string   `json:"from"`
	To         []string `json:"to"`
	Cc         []string `json:"cc"`
	Subject    string   `json:"subject"`
	Date       string   `json:"date"` // UTC, "2006-01-02T15:04:05Z", or ""
	MessageID  string   `json:"message_id"`
	InReplyTo  string   `json:"in_reply_to"`
	References []string `json:"references"`
	Parts      []Part   `json:"parts"`
	MIME       Node     `json:"mime"`
}

// Part describes one block or attachment: the plaintext bytes stored and
// transported separately from the catalog.
type Part struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // KindBlock or KindAttachment
	Type   string `json:"type"` // the whole unfolded Content-Type value
	Name   string `json:"name"` // file name, decoded
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex of the plaintext part
}

// Node is one MIME entity: its exact header section (up to and including
// the empty line that ends it) and its body as a list of items.
type Node struct {
	Header Seg    `json:"header"`
	Body   []Item `json:"body"`
}

// Seg is a run of raw message bytes. It is written as {"text": …} when the
// bytes are valid UTF-8 and as {"bytes": "<base64>"} otherwise.
type Seg struct {
	Bytes []byte
}

// TextSeg returns a Seg holding s.
func TextSeg(s string) Seg { return Seg{Bytes: []byte(s)} }

// IsText reports whether the Seg is written as {"text": …}.
func (s Seg) IsText() bool { return utf8.Valid(s.Bytes) }

// Item is one piece of an entity body: exactly one of Seg (raw bytes such
// as a preamble, boundary line or epilogue), Node (a child entity) or Part
// (the id of a part, inserted with Transfer) is set.
type Item struct {
	Seg      *Seg
	Node     *Node
	Part     string
	Transfer Transfer
}

// SegItem returns an Item holding raw bytes b.
func SegItem(b []byte) Item { return Item{Seg: &Seg{Bytes: b}} }

// NodeItem returns an Item holding child entity n.
func NodeItem(n Node) Item { return Item{Node: &n} }

// PartItem returns an Item that inserts part id with transfer t.
func PartItem(id string, t Transfer) Item { return Item{Part: id, Transfer: t} }

// Transfer says how a part's plaintext becomes message bytes.
type Transfer struct {
	Encoding string // EncodingIdentity or EncodingBase64
	Line     int    // base64 only: characters per line, > 0
}

// Identity returns the identity transfer.
func Identity() Transfer { return Transfer{Encoding: EncodingIdentity} }

// Base64 returns the base64 transfer with lines of n characters.
func Base64(n int) Transfer { return Transfer{Encoding: EncodingBase64, Line: n} }

// encodedSize returns the number of message bytes a part of size n takes
// with transfer t, or -1 if t is unknown.
func (t Transfer) encodedSize(n int64) int64 {
	switch t.Encoding {
	case EncodingIdentity:
		return n
	case EncodingBase64:
		if t.Line <= 0 {
			return -1
		}
		enc := (n + 2) / 3 * 4
		lines := (enc + int64(t.Line) - 1) / int64(t.Line)
		return enc + 2*lines
	}
	return -1
}

// MessageSize returns the exact number of bytes Join writes for c,
// computed from the catalog alone. Part references that the catalog does
// not list count as empty (ParseCatalog rejects such catalogs).
func (c *Catalog) MessageSize() int64 {
	sizes := make(map[string]int64, len(c.Parts))
	for _, p := range c.Parts {
		sizes[p.ID] = p.Size
	}
	return c.MIME.size(sizes)
}

func (n *Node) size(parts map[string]int64) int64 {
	total := int64(len(n.Header.Bytes))
	for i := range n.Body {
		it := &n.Body[i]
		switch {
		case it.Seg != nil:
			total += int64(len(it.Seg.Bytes))
		case it.Node != nil:
			total += it.Node.size(parts)
		default:
			if s := it.Transfer.encodedSize(parts[it.Part]); s > 0 {
				total += s
			}
		}
	}
	return total
}
