package imapout

import (
	"strings"

	"github.com/emersion/go-imap/v2"
)

// addrToken is one lexical token of an RFC 5322 address list: a word (an
// atom, dot-atom or quoted string, kept as its text), a domain literal,
// or one special character. Comments and folding white space are dropped
// as the lexer meets them (RFC 5322 §3.2.2).
type addrToken struct {
	text    string
	special byte // one of < > : ; @ , or 0 for a word
	quoted  bool // a quoted string, text unescaped
}

// lexAddresses splits an address list into tokens. It never fails: an
// unterminated quoted string, comment or literal runs to the end.
func lexAddresses(v string) []addrToken {
	var out []addrToken
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			i = skipComment(v, i)
		case c == '"':
			text, next := quotedString(v, i)
			out = append(out, addrToken{text: text, quoted: true})
			i = next
		case c == '[':
			j := strings.IndexByte(v[i:], ']')
			if j < 0 {
				j = len(v) - i - 1
			}
			out = append(out, addrToken{text: v[i : i+j+1]})
			i += j + 1
		case strings.IndexByte("<>:;@,", c) >= 0:
			out = append(out, addrToken{special: c})
			i++
		default:
			j := i
			for j < len(v) && strings.IndexByte(" \t\r\n()\"[<>:;@,", v[j]) < 0 {
				j++
			}
			if j == i {
				j++ // a stray ')'
			}
			out = append(out, addrToken{text: v[i:j]})
			i = j
		}
	}
	return out
}

// skipComment returns the index after the (nested) comment at v[i].
func skipComment(v string, i int) int {
	depth := 0
	for ; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(v)
}

// quotedString returns the unescaped content of the quoted string at v[i]
// and the index after it.
func quotedString(v string, i int) (string, int) {
	var b strings.Builder
	for i++; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
		case '"':
			return b.String(), i + 1
		case '\r', '\n':
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String(), len(v)
}

// parseAddressList reads an address list for ENVELOPE (RFC 3501 §7.4.2):
// groups give a start marker (the group name as mailbox) and an end
// marker, comments are dropped, and display names are kept as written
// (encoded words are not decoded). Entries without a domain are left out.
// The source route of an obsolete route-addr (RFC 5322 §4.4) is kept as
// the address's Route, which ENVELOPE gives as its addr-adl.
func parseAddressList(v string) []imap.Address {
	p := addrParser{toks: lexAddresses(v)}
	var out []imap.Address
	for !p.done() {
		start := p.pos
		out = append(out, p.entry()...)
		if p.pos == start {
			p.pos++ // a stray ';' or '>'
		}
	}
	return out
}

type addrParser struct {
	toks []addrToken
	pos  int
}

func (p *addrParser) done() bool { return p.pos >= len(p.toks) }

func (p *addrParser) peek() addrToken {
	if p.done() {
		return addrToken{special: ','}
	}
	return p.toks[p.pos]
}

// entry reads one element of the list, a mailbox or a group, and the
// comma after it.
func (p *addrParser) entry() []imap.Address {
	start := p.pos
	for !p.done() {
		switch p.peek().special {
		case ':':
			name := joinWords(p.toks[start:p.pos])
			p.pos++
			return p.group(name)
		case '<', '@', ',', ';':
			p.pos = start
			a, ok := p.mailbox()
			p.skip(',')
			if !ok {
				return nil
			}
			return []imap.Address{a}
		}
		p.pos++
	}
	p.pos = start
	a, ok := p.mailbox()
	if !ok {
		return nil
	}
	return []imap.Address{a}
}

// group reads the members of a group after its colon, through the
// semicolon: start marker, members, end marker. A group without a name
// (invalid) gives its members only, as its markers would read as an end.
func (p *addrParser) group(name string) []imap.Address {
	var out []imap.Address
	if name != "" {
		out = append(out, imap.Address{Mailbox: name})
	}
	for !p.done() && p.peek().special != ';' {
		if p.peek().special == ',' {
			p.pos++
			continue
		}
		if a, ok := p.mailbox(); ok {
			out = append(out, a)
		}
		p.skip(',')
	}
	p.skip(';')
	p.skip(',')
	if name != "" {
		out = append(out, imap.Address{})
	}
	return out
}

// mailbox reads a name-addr or addr-spec, up to (not including) the
// next comma or semicolon outside angle brackets.
func (p *addrParser) mailbox() (imap.Address, bool) {
	start := p.pos
	for !p.done() && p.peek().special != '<' && p.peek().special != ',' && p.peek().special != ';' {
		p.pos++
	}
	if p.peek().special != '<' || p.done() {
		local, domain := splitSpec(p.toks[start:p.pos])
		return imap.Address{Mailbox: local, Host: domain}, domain != ""
	}
	name := joinWords(p.toks[start:p.pos])
	p.pos++ // <
	inner := p.pos
	for !p.done() && p.peek().special != '>' {
		p.pos++
	}
	spec := p.toks[inner:p.pos]
	p.skip('>')
	// Anything after '>' up to the next separator is junk.
	for !p.done() && p.peek().special != ',' && p.peek().special != ';' {
		p.pos++
	}
	var route string
	if len(spec) > 0 && spec[0].special == '@' {
		for i, t := range spec {
			if t.special == ':' {
				route, spec = tokensText(spec[:i]), spec[i+1:]
				break
			}
		}
	}
	local, domain := splitSpec(spec)
	return imap.Address{Name: envelopeText(name), Route: route, Mailbox: local, Host: domain}, domain != ""
}

func (p *addrParser) skip(c byte) {
	if !p.done() && p.peek().special == c {
		p.pos++
	}
}

// splitSpec splits an addr-spec's tokens at the last @.
func splitSpec(toks []addrToken) (string, string) {
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].special == '@' {
			return tokensText(toks[:i]), tokensText(toks[i+1:])
		}
	}
	return tokensText(toks), ""
}

// tokensText writes tokens back without the white space and comments
// between them, quoting quoted strings again.
func tokensText(toks []addrToken) string {
	var b strings.Builder
	for _, t := range toks {
		switch {
		case t.special != 0:
			b.WriteByte(t.special)
		case t.quoted:
			b.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t.text) + `"`)
		default:
			b.WriteString(t.text)
		}
	}
	return b.String()
}

// envelopeText is a header string for ENVELOPE: as written when it is
// ASCII (encoded words stay encoded, RFC 3501 §7.4.2), else decoded to
// UTF-8, which go-imap sends as an encoded word.
func envelopeText(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return decodeText(s)
		}
	}
	return s
}

// joinWords is a display name or group name: its words joined by one
// space, quoted strings without their quotes.
func joinWords(toks []addrToken) string {
	words := make([]string, 0, len(toks))
	for _, t := range toks {
		if t.special != 0 {
			continue
		}
		words = append(words, t.text)
	}
	return strings.Join(words, " ")
}
