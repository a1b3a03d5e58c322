package translate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Limits on what ParseCatalog accepts. They are far above anything Split
// produces; they keep a hostile catalog from exhausting the stack or
// overflowing size arithmetic.
const (
	maxNodeDepth = 128
	maxPartSize  = 1 << 50
	maxLine      = 1 << 30
	maxIDLen     = 64
)

// ErrInvalidCatalog is wrapped by every error ParseCatalog returns for a
// catalog that does not have the shape of docs/protocol.md §3.4.
var ErrInvalidCatalog = errors.New("invalid catalog")

// ParseCatalog parses and checks a catalog. It accepts any catalog of the
// exact shape of docs/protocol.md §3.4 (whatever produced it) and rejects unknown
// or missing keys, duplicate keys, wrong types, unknown encodings, a base64
// line length <= 0, duplicate or malformed part ids, references to parts
// the catalog does not list, listed parts no item references, and sizes
// whose total would overflow.
func ParseCatalog(b []byte) (*Catalog, error) {
	var c *Catalog
	err := decodeValue(b, func(d *catalogDecoder) (err error) {
		c, err = d.catalog()
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCatalog, err)
	}
	return c, nil
}

// UnmarshalJSON implements json.Unmarshaler with ParseCatalog.
func (c *Catalog) UnmarshalJSON(b []byte) error {
	p, err := ParseCatalog(b)
	if err != nil {
		return err
	}
	*c = *p
	return nil
}

// UnmarshalJSON implements json.Unmarshaler: {"header": SEG, "body": [ITEM…]}.
func (n *Node) UnmarshalJSON(b []byte) error {
	return decodeValue(b, func(d *catalogDecoder) (err error) {
		*n, err = d.node()
		return err
	})
}

// UnmarshalJSON implements json.Unmarshaler: {"text": …} or {"bytes": …}.
func (s *Seg) UnmarshalJSON(b []byte) error {
	return decodeValue(b, func(d *catalogDecoder) (err error) {
		*s, err = d.seg()
		return err
	})
}

// UnmarshalJSON implements json.Unmarshaler for any of the item shapes.
func (it *Item) UnmarshalJSON(b []byte) error {
	return decodeValue(b, func(d *catalogDecoder) (err error) {
		*it, err = d.item()
		return err
	})
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Transfer) UnmarshalJSON(b []byte) error {
	return decodeValue(b, func(d *catalogDecoder) (err error) {
		*t, err = d.transfer()
		return err
	})
}

// decodeValue runs read over b, which must hold exactly one JSON value.
func decodeValue(b []byte, read func(*catalogDecoder) error) error {
	if !json.Valid(b) {
		return fmt.Errorf("%w: not valid JSON", ErrInvalidCatalog)
	}
	d := &catalogDecoder{dec: json.NewDecoder(bytes.NewReader(b))}
	d.dec.UseNumber()
	if err := read(d); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCatalog, err)
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the value", ErrInvalidCatalog)
	}
	return nil
}

// catalogDecoder reads a catalog token by token, so that duplicate keys,
// nulls and numbers that are not integers are seen and refused.
type catalogDecoder struct {
	dec   *json.Decoder
	depth int
}

func (d *catalogDecoder) catalog() (*Catalog, error) {
	c := &Catalog{}
	err := d.object("catalog", []string{"version", "from", "to", "cc", "subject", "date",
		"message_id", "in_reply_to", "references", "parts", "mime"}, func(key string) error {
		var err error
		switch key {
		case "version":
			var v int64
			v, err = d.integer()
			c.Version = int(v)
			if err == nil && v != Version {
				err = fmt.Errorf("unsupported version %d", v)
			}
		case "from":
			c.From, err = d.str()
		case "to":
			c.To, err = d.strs()
		case "cc":
			c.Cc, err = d.strs()
		case "subject":
			c.Subject, err = d.str()
		case "date":
			c.Date, err = d.str()
		case "message_id":
			c.MessageID, err = d.str()
		case "in_reply_to":
			c.InReplyTo, err = d.str()
		case "references":
			c.References, err = d.strs()
		case "parts":
			c.Parts, err = d.parts()
		case "mime":
			c.MIME, err = d.node()
		}
		return err
	})
	return c, err
}

func (d *catalogDecoder) parts() ([]Part, error) {
	ps := []Part{}
	err := d.array(func() error {
		var p Part
		err := d.object("part", []string{"id", "kind", "type", "name", "size", "sha256"}, func(key string) error {
			var err error
			switch key {
			case "id":
				p.ID, err = d.str()
			case "kind":
				p.Kind, err = d.str()
			case "type":
				p.Type, err = d.str()
			case "name":
				p.Name, err = d.str()
			case "size":
				p.Size, err = d.integer()
			case "sha256":
				p.SHA256, err = d.str()
			}
			return err
		})
		ps = append(ps, p)
		return err
	})
	return ps, err
}

func (d *catalogDecoder) node() (Node, error) {
	n := Node{Body: []Item{}}
	if d.depth++; d.depth > maxNodeDepth {
		return n, fmt.Errorf("entities nested deeper than %d", maxNodeDepth)
	}
	defer func() { d.depth-- }()
	err := d.object("node", []string{"header", "body"}, func(key string) error {
		var err error
		switch key {
		case "header":
			n.Header, err = d.seg()
		case "body":
			err = d.array(func() error {
				it, err := d.item()
				n.Body = append(n.Body, it)
				return err
			})
		}
		return err
	})
	return n, err
}

func (d *catalogDecoder) seg() (Seg, error) {
	it, err := d.item()
	if err == nil && it.Seg == nil {
		err = errors.New("header is not a text or bytes segment")
	}
	if it.Seg == nil {
		return Seg{}, err
	}
	return *it.Seg, err
}

// item reads any of the four item shapes; the caller checks which it got.
func (d *catalogDecoder) item() (Item, error) {
	var (
		it   Item
		seen = map[string]bool{}
	)
	err := d.object("item", nil, func(key string) error {
		seen[key] = true
		var err error
		switch key {
		case "text":
			var s string
			s, err = d.str()
			it.Seg = &Seg{Bytes: []byte(s)}
		case "bytes":
			var s string
			if s, err = d.str(); err == nil {
				var b []byte
				b, err = base64.StdEncoding.Strict().DecodeString(s)
				if err == nil && base64.StdEncoding.EncodeToString(b) != s {
					err = errors.New("bytes segment is not canonical base64")
				}
				it.Seg = &Seg{Bytes: b}
			}
		case "node":
			var n Node
			n, err = d.node()
			it.Node = &n
		case "part":
			it.Part, err = d.str()
		case "transfer":
			it.Transfer, err = d.transfer()
		default:
			err = fmt.Errorf("unknown item key %q", key)
		}
		return err
	})
	if err != nil {
		return it, err
	}
	switch {
	case len(seen) == 1 && (seen["text"] || seen["bytes"] || seen["node"]):
	case len(seen) == 2 && seen["part"] && seen["transfer"]:
	default:
		return it, fmt.Errorf("item has keys %v, want text, bytes, node or part+transfer", keys(seen))
	}
	return it, nil
}

func (d *catalogDecoder) transfer() (Transfer, error) {
	var (
		t       Transfer
		hasLine bool
	)
	err := d.object("transfer", nil, func(key string) error {
		var err error
		switch key {
		case "encoding":
			t.Encoding, err = d.str()
		case "line":
			var n int64
			n, err = d.integer()
			if err == nil && (n <= 0 || n > maxLine) {
				err = fmt.Errorf("base64 line length %d out of range", n)
			}
			t.Line, hasLine = int(n), true
		default:
			err = fmt.Errorf("unknown transfer key %q", key)
		}
		return err
	})
	if err != nil {
		return t, err
	}
	switch {
	case t.Encoding == EncodingIdentity && !hasLine:
	case t.Encoding == EncodingBase64 && hasLine:
	case t.Encoding == EncodingBase64:
		return t, errors.New("base64 transfer without line")
	case t.Encoding == EncodingIdentity:
		return t, errors.New("identity transfer with line")
	default:
		return t, fmt.Errorf("unknown transfer encoding %q", t.Encoding)
	}
	return t, nil
}

// object reads one JSON object, calling value for each key to read its
// value. Duplicate keys are refused; when required is not nil, the keys
// must be exactly those.
func (d *catalogDecoder) object(what string, required []string, value func(key string) error) error {
	if err := d.delim('{', what); err != nil {
		return err
	}
	seen := map[string]bool{}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // json.Valid checked the syntax: object keys are strings
		if seen[key] {
			return fmt.Errorf("%s: duplicate key %q", what, key)
		}
		seen[key] = true
		if required != nil && !contains(required, key) {
			return fmt.Errorf("%s: unknown key %q", what, key)
		}
		if err := value(key); err != nil {
			return fmt.Errorf("%s.%s: %w", what, key, err)
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing brace
		return err
	}
	for _, k := range required {
		if !seen[k] {
			return fmt.Errorf("%s: missing key %q", what, k)
		}
	}
	return nil
}

func (d *catalogDecoder) array(elem func() error) error {
	if err := d.delim('[', "list"); err != nil {
		return err
	}
	for i := 0; d.dec.More(); i++ {
		if err := elem(); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	_, err := d.dec.Token() // the closing bracket
	return err
}

func (d *catalogDecoder) delim(want json.Delim, what string) error {
	tok, err := d.dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != want {
		return fmt.Errorf("%s: got %s, want %q", what, describe(tok), string(want))
	}
	return nil
}

func (d *catalogDecoder) str() (string, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("got %s, want a string", describe(tok))
	}
	return s, nil
}

func (d *catalogDecoder) strs() ([]string, error) {
	ss := []string{}
	err := d.array(func() error {
		s, err := d.str()
		ss = append(ss, s)
		return err
	})
	return ss, err
}

// integer reads a JSON integer in [0, 2^53]; fractions, exponents and
// negative numbers are refused.
func (d *catalogDecoder) integer() (int64, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return 0, err
	}
	num, ok := tok.(json.Number)
	if !ok {
		return 0, fmt.Errorf("got %s, want an integer", describe(tok))
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 || n > 1<<53 {
		return 0, fmt.Errorf("%s is not an integer in [0, 2^53]", num)
	}
	return n, nil
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return strconv.Quote(string(v))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", tok)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// validate checks what the JSON shape alone cannot: part ids, kinds,
// digests, references and the total size.
func (c *Catalog) validate() error {
	if c.Date != "" {
		t, err := time.Parse(dateLayout, c.Date)
		if err != nil || t.Format(dateLayout) != c.Date {
			return fmt.Errorf("date %q is not YYYY-MM-DDTHH:MM:SSZ", c.Date)
		}
	}
	parts := make(map[string]*Part, len(c.Parts))
	for i := range c.Parts {
		p := &c.Parts[i]
		if err := p.validate(); err != nil {
			return err
		}
		if parts[p.ID] != nil {
			return fmt.Errorf("duplicate part id %q", p.ID)
		}
		parts[p.ID] = p
	}
	// A part the tree never references is accepted (docs/protocol.md §3.4: a
	// receiver accepts any catalog of this shape); it is simply not shown.
	used := make(map[string]bool, len(parts))
	var total int64
	return c.MIME.validate(parts, used, &total)
}

func (p *Part) validate() error {
	if !validID(p.ID) {
		return fmt.Errorf("part id %q: want 1 to %d of A-Z a-z 0-9 _ -", p.ID, maxIDLen)
	}
	if p.Kind != KindBlock && p.Kind != KindAttachment {
		return fmt.Errorf("part %s: unknown kind %q", p.ID, p.Kind)
	}
	if p.Size > maxPartSize {
		return fmt.Errorf("part %s: size %d too large", p.ID, p.Size)
	}
	if !validSHA256(p.SHA256) {
		return fmt.Errorf("part %s: sha256 %q is not 64 lowercase hex digits", p.ID, p.SHA256)
	}
	return nil
}

func (n *Node) validate(parts map[string]*Part, used map[string]bool, total *int64) error {
	if err := addSize(total, int64(len(n.Header.Bytes))); err != nil {
		return err
	}
	for i := range n.Body {
		it := &n.Body[i]
		var err error
		switch {
		case it.Seg != nil:
			err = addSize(total, int64(len(it.Seg.Bytes)))
		case it.Node != nil:
			err = it.Node.validate(parts, used, total)
		default:
			p := parts[it.Part]
			if p == nil {
				return fmt.Errorf("reference to unknown part %q", it.Part)
			}
			used[it.Part] = true
			err = addSize(total, it.Transfer.encodedSize(p.Size))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func addSize(total *int64, n int64) error {
	if n < 0 || *total > math.MaxInt64-n {
		return errors.New("message size overflows")
	}
	*total += n
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
