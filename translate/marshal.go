package translate

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// Marshal returns the catalog as compact UTF-8 JSON with the fields in the
// order of docs/protocol.md §3.4, empty lists as [] and no HTML escaping.
func (c *Catalog) Marshal() ([]byte, error) {
	b := make([]byte, 0, 1024+c.MIME.size(nil))
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(c.Version), 10)
	b = append(b, `,"from":`...)
	b = appendString(b, c.From)
	b = append(b, `,"to":`...)
	b = appendStrings(b, c.To)
	b = append(b, `,"cc":`...)
	b = appendStrings(b, c.Cc)
	b = append(b, `,"subject":`...)
	b = appendString(b, c.Subject)
	b = append(b, `,"date":`...)
	b = appendString(b, c.Date)
	b = append(b, `,"message_id":`...)
	b = appendString(b, c.MessageID)
	b = append(b, `,"in_reply_to":`...)
	b = appendString(b, c.InReplyTo)
	b = append(b, `,"references":`...)
	b = appendStrings(b, c.References)
	b = append(b, `,"parts":[`...)
	for i := range c.Parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.Parts[i].appendJSON(b)
	}
	b = append(b, `],"mime":`...)
	b = c.MIME.appendJSON(b)
	b = append(b, '}')
	return b, nil
}

// MarshalJSON implements json.Marshaler with Marshal.
func (c Catalog) MarshalJSON() ([]byte, error) { return c.Marshal() }

// MarshalJSON implements json.Marshaler.
func (p Part) MarshalJSON() ([]byte, error) { return p.appendJSON(nil), nil }

// MarshalJSON implements json.Marshaler.
func (n Node) MarshalJSON() ([]byte, error) { return n.appendJSON(nil), nil }

// MarshalJSON implements json.Marshaler: {"text": …} or {"bytes": …}.
func (s Seg) MarshalJSON() ([]byte, error) { return s.appendJSON(nil), nil }

// MarshalJSON implements json.Marshaler.
func (it Item) MarshalJSON() ([]byte, error) { return it.appendJSON(nil), nil }

// MarshalJSON implements json.Marshaler.
func (t Transfer) MarshalJSON() ([]byte, error) { return t.appendJSON(nil), nil }

func (p *Part) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	b = append(b, `,"kind":`...)
	b = appendString(b, p.Kind)
	b = append(b, `,"type":`...)
	b = appendString(b, p.Type)
	b = append(b, `,"name":`...)
	b = appendString(b, p.Name)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, p.Size, 10)
	b = append(b, `,"sha256":`...)
	b = appendString(b, p.SHA256)
	return append(b, '}')
}

func (n *Node) appendJSON(b []byte) []byte {
	b = append(b, `{"header":`...)
	b = n.Header.appendJSON(b)
	b = append(b, `,"body":[`...)
	for i := range n.Body {
		if i > 0 {
			b = append(b, ',')
		}
		b = n.Body[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

func (s Seg) appendJSON(b []byte) []byte {
	if utf8.Valid(s.Bytes) {
		b = append(b, `{"text":`...)
		b = appendString(b, string(s.Bytes))
		return append(b, '}')
	}
	b = append(b, `{"bytes":"`...)
	b = base64.StdEncoding.AppendEncode(b, s.Bytes)
	return append(b, `"}`...)
}

func (it *Item) appendJSON(b []byte) []byte {
	switch {
	case it.Seg != nil:
		return it.Seg.appendJSON(b)
	case it.Node != nil:
		b = append(b, `{"node":`...)
		b = it.Node.appendJSON(b)
		return append(b, '}')
	}
	b = append(b, `{"part":`...)
	b = appendString(b, it.Part)
	b = append(b, `,"transfer":`...)
	b = it.Transfer.appendJSON(b)
	return append(b, '}')
}

func (t Transfer) appendJSON(b []byte) []byte {
	b = append(b, `{"encoding":`...)
	b = appendString(b, t.Encoding)
	if t.Encoding != EncodingIdentity {
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, int64(t.Line), 10)
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping turned off: control characters, quote and backslash are
// escaped, U+2028 and U+2029 too, and invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
