package translate

import (
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
)

// dateLayout is the catalog's date format (always UTC).
const dateLayout = "2006-01-02T15:04:05Z"

// topFields are the header fields the catalog reports.
func topField(name string) bool {
	switch name {
	case "from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references":
		return true
	}
	return false
}

// fillMeta sets the catalog's header fields from the top-level header
// section (docs/protocol.md §3.6).
func fillMeta(c *Catalog, header []byte) {
	fs := parseHeader(header, topField)
	if v, ok := first(fs, "from"); ok {
		if as := addresses(v); len(as) > 0 {
			c.From = as[0]
		}
	}
	for _, v := range all(fs, "to") {
		c.To = append(c.To, addresses(v)...)
	}
	for _, v := range all(fs, "cc") {
		c.Cc = append(c.Cc, addresses(v)...)
	}
	if v, ok := first(fs, "subject"); ok {
		c.Subject = decodeWords(v)
	}
	if v, ok := first(fs, "date"); ok {
		c.Date = parseDate(v)
	}
	if v, ok := first(fs, "message-id"); ok {
		if ids := msgIDs(v); len(ids) > 0 {
			c.MessageID = ids[0]
		} else {
			c.MessageID = toUTF8(v)
		}
	}
	if v, ok := first(fs, "in-reply-to"); ok {
		if ids := msgIDs(v); len(ids) > 0 {
			c.InReplyTo = strings.Join(ids, " ")
		} else {
			c.InReplyTo = toUTF8(v)
		}
	}
	for _, v := range all(fs, "references") {
		c.References = append(c.References, msgIDs(v)...)
	}
}

// addresses returns the bare addr-specs of an address list, as written
// (no display names, no angle brackets, case kept).
func addresses(v string) []string {
	if trimWSP(v) == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: keepCharset}}
	list, err := p.ParseList(v)
	if err != nil {
		return lenientAddresses(v)
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		// String quotes a local part that needs it; without a name it is
		// "<addr-spec>".
		s := (&mail.Address{Address: a.Address}).String()
		out = append(out, toUTF8(strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")))
	}
	return out
}

// keepCharset lets net/mail accept display names in any charset: they are
// dropped anyway.
func keepCharset(_ string, r io.Reader) (io.Reader, error) { return r, nil }

// lenientAddresses extracts addresses from a list net/mail refuses: the
// part in angle brackets of each comma-separated entry, or the entry itself
// without comments, when it contains an @.
func lenientAddresses(v string) []string {
	var out []string
	for _, entry := range SplitAddressList(v) {
		if i := strings.LastIndexByte(entry, '<'); i >= 0 {
			if j := strings.IndexByte(entry[i:], '>'); j > 0 {
				entry = entry[i+1 : i+j]
			}
		} else {
			entry = stripComments(entry)
			if i := strings.IndexByte(entry, ':'); i >= 0 && i < strings.IndexByte(entry, '@') {
				entry = entry[i+1:] // group name
			}
		}
		entry = strings.Trim(entry, " \t;")
		if strings.Contains(entry, "@") {
			out = append(out, toUTF8(entry))
		}
	}
	return out
}

// SplitAddressList splits an address list field's value (RFC 5322) into
// its entries: at commas outside quotes, angle brackets and comments. It
// never fails: whatever the value, each byte lands in one entry.
func SplitAddressList(v string) []string {
	var (
		out            []string
		start, depth   int
		quoted, angled bool
	)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && (quoted || depth > 0):
			i++
		case c == '"' && depth == 0:
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angled = true
		case c == '>':
			angled = false
		case c == ',' && !angled:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

func stripComments(s string) string {
	var (
		b     strings.Builder
		depth int
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// msgIDs returns the <…> tokens of a Message-ID, In-Reply-To or
// References value, angle brackets included.
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return ids
		}
		ids = append(ids, toUTF8(v[i:i+j+1]))
		v = v[i+j+1:]
	}
}

// obsZoneHours returns the offset of an RFC 5322 §4.3 zone name; other
// names (military zones, unknown abbreviations) mean -0000.
func obsZoneHours(name string) int {
	switch strings.ToUpper(name) {
	case "EDT":
		return -4
	case "EST", "CDT":
		return -5
	case "CST", "MDT":
		return -6
	case "MST", "PDT":
		return -7
	case "PST":
		return -8
	}
	return 0
}

// parseDate returns the date in UTC as YYYY-MM-DDTHH:MM:SSZ, or "" when it
// does not parse. Zone names are resolved by RFC 5322, not by the local
// time zone database, so every machine gives the same answer.
func parseDate(v string) string {
	t, err := mail.ParseDate(v)
	if err != nil {
		return ""
	}
	s := strings.TrimLeft(v, " \t")
	if i := strings.IndexAny(s, "+-"); i < 0 || len(s) < i+5 {
		name, _ := t.Zone()
		off := obsZoneHours(name)
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0,
			time.FixedZone(name, off*3600))
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return ""
	}
	return t.UTC().Format(dateLayout)
}
