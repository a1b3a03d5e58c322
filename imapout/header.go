package imapout

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/charset"

	"tollbridge/translate"
)

// field is one header field: its name as written and its value unfolded
// (continuation line breaks removed), not decoded.
type field struct {
	Name  string
	Value string
}

// parseFields splits a header section into fields. It is lenient: lines
// without a colon are skipped, as mail clients do.
func parseFields(hdr []byte) []field {
	var out []field
	for len(hdr) > 0 {
		end := len(hdr)
		// A field runs to the first line break not followed by white space.
		for i := 0; i < len(hdr); i++ {
			if hdr[i] != '\n' {
				continue
			}
			if i+1 < len(hdr) && (hdr[i+1] == ' ' || hdr[i+1] == '\t') {
				continue
			}
			end = i + 1
			break
		}
		line := hdr[:end]
		hdr = hdr[end:]
		name, value, ok := bytes.Cut(line, []byte(":"))
		name = bytes.TrimRight(name, " \t")
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t\r\n") {
			continue
		}
		out = append(out, field{Name: string(name), Value: unfold(value)})
	}
	return out
}

// unfold removes line breaks of a folded value and trims it.
func unfold(v []byte) string {
	v = bytes.TrimSpace(v)
	if !bytes.ContainsAny(v, "\r\n") {
		return string(v)
	}
	var b strings.Builder
	for _, c := range v {
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// get returns the first value of the named field.
func get(fs []field, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// has reports whether the named field is present.
func has(fs []field, name string) bool {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// wordDecoder decodes RFC 2047 words in any charset go-message knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeText decodes RFC 2047 encoded words; undecodable text stays as
// is, and raw 8-bit text that is not UTF-8 is read as Latin-1.
func decodeText(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		s = d
	}
	if utf8.ValidString(s) {
		return s
	}
	r := make([]rune, 0, len(s))
	for i := 0; i < len(s); i++ {
		r = append(r, rune(s[i]))
	}
	return string(r)
}

// envelopeOf builds the IMAP ENVELOPE of a header section. Strings are
// the header's own (RFC 3501 §7.4.2): go-imap leaves ASCII as it is.
func envelopeOf(fs []field) *imap.Envelope {
	env := &imap.Envelope{
		Subject:   envelopeText(get(fs, "Subject")),
		From:      parseAddressList(get(fs, "From")),
		Sender:    parseAddressList(get(fs, "Sender")),
		ReplyTo:   parseAddressList(get(fs, "Reply-To")),
		To:        parseAddressList(get(fs, "To")),
		Cc:        parseAddressList(get(fs, "Cc")),
		Bcc:       parseAddressList(get(fs, "Bcc")),
		InReplyTo: msgIDs(get(fs, "In-Reply-To")),
	}
	if ids := msgIDs(get(fs, "Message-Id")); len(ids) > 0 {
		env.MessageID = ids[0]
	}
	if d := get(fs, "Date"); d != "" {
		env.DateText = d
		if t, err := mail.ParseDate(d); err == nil {
			env.Date = t
		}
	}
	return env
}

// sentDay is the day of the Date: field for SENTBEFORE/SENTON/SENTSINCE,
// as written, disregarding time and zone (RFC 9051 §6.4.4); without a
// Date: field, the day the message arrived.
func sentDay(env *imap.Envelope, internal time.Time) time.Time {
	if env != nil && !env.Date.IsZero() {
		return dayOf(env.Date)
	}
	return dayOf(internal.In(time.Local))
}

// msgIDs returns the ids of a Message-ID, In-Reply-To or References value
// without angle brackets.
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" {
			ids = append(ids, id)
		}
		v = v[i+j+1:]
	}
	if len(ids) == 0 {
		if v = strings.TrimSpace(v); v != "" && !strings.ContainsAny(v, " \t") {
			ids = append(ids, v)
		}
	}
	return ids
}

// addressList parses an address list for ENVELOPE, falling back to a
// lenient reading when net/mail refuses it.
func addressList(v string) []imap.Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: wordDecoder}
	var out []imap.Address
	if list, err := p.ParseList(v); err == nil {
		for _, a := range list {
			out = append(out, splitAddress(a.Name, a.Address))
		}
		return out
	}
	for _, entry := range translate.SplitAddressList(v) {
		entry = strings.TrimSpace(entry)
		name, addr := "", entry
		if i := strings.LastIndexByte(entry, '<'); i >= 0 {
			if j := strings.IndexByte(entry[i:], '>'); j > 0 {
				name = strings.Trim(strings.TrimSpace(entry[:i]), `"`)
				addr = entry[i+1 : i+j]
			}
		}
		addr = strings.TrimSpace(addr)
		if !strings.Contains(addr, "@") {
			continue
		}
		out = append(out, splitAddress(decodeText(name), addr))
	}
	return out
}

func splitAddress(name, addr string) imap.Address {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return imap.Address{Name: name, Mailbox: addr}
	}
	return imap.Address{Name: name, Mailbox: addr[:at], Host: addr[at+1:]}
}

// bareAddresses returns the addr-specs of an address list, lowercased.
func bareAddresses(v string) []string {
	var out []string
	for _, a := range addressList(v) {
		if a.Host != "" {
			out = append(out, strings.ToLower(a.Mailbox+"@"+a.Host))
		}
	}
	return out
}

// filterHeader keeps (or, with not, drops) the named fields of a header
// section, byte for byte, and ends it with the empty line (RFC 3501
// HEADER.FIELDS and HEADER.FIELDS.NOT).
func filterHeader(hdr []byte, names []string, not bool) []byte {
	want := func(name string) bool {
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(n), name) {
				return true
			}
		}
		return false
	}
	var out []byte
	for len(hdr) > 0 {
		end := len(hdr)
		for i := 0; i < len(hdr); i++ {
			if hdr[i] == '\n' && (i+1 >= len(hdr) || hdr[i+1] != ' ' && hdr[i+1] != '\t') {
				end = i + 1
				break
			}
		}
		line := hdr[:end]
		hdr = hdr[end:]
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // the empty line, or junk
		}
		if want(string(bytes.TrimRight(name, " \t"))) != not {
			out = append(out, line...)
		}
	}
	return append(out, '\r', '\n')
}
