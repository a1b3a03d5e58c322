package translate

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// headerField is one field of a header section: its name as written and
// its value unfolded (RFC 5322 §2.2.3: line breaks removed, the white space
// that follows them kept) with surrounding white space trimmed.
type headerField struct {
	name  string
	value string
}

// parseHeader returns the fields of a header section whose lower-cased name
// is accepted by want, in order. Lines that are not fields (no colon, a name
// with invalid characters) are skipped with their continuation lines: a
// header section is kept as raw bytes anyway, this only reads it.
func parseHeader(h []byte, want func(lowerName string) bool) []headerField {
	var (
		fields []headerField
		cur    *strings.Builder
		name   string
	)
	flush := func() {
		if cur != nil {
			fields = append(fields, headerField{name: name, value: trimWSP(cur.String())})
			cur = nil
		}
	}
	for len(h) > 0 {
		var line []byte
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i], h[i+1:]
		} else {
			line, h = h, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if cur != nil {
				cur.Write(line)
			}
			continue
		}
		flush()
		n, v, ok := splitField(line)
		if ok && want(strings.ToLower(n)) {
			name = n
			cur = &strings.Builder{}
			cur.Write(v)
		}
	}
	flush()
	return fields
}

// splitField splits "Name: value" (allowing white space before the colon,
// as seen in the wild) into name and value.
func splitField(line []byte) (string, []byte, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", nil, false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return "", nil, false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return "", nil, false
		}
	}
	return string(name), line[i+1:], true
}

// isBccLine reports whether a header line starts a Bcc field.
func isBccLine(line []byte) bool {
	n, _, ok := splitField(line)
	return ok && strings.EqualFold(n, "bcc")
}

// first returns the value of the first field named name (lower case).
func first(fields []headerField, name string) (string, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// all returns the values of every field named name (lower case).
func all(fields []headerField, name string) []string {
	var vs []string
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return vs
}

func trimWSP(s string) string { return strings.Trim(s, " \t") }

// toUTF8 returns s unchanged when it is valid UTF-8 and read as Latin-1
// otherwise, so raw 8-bit header bytes always give a valid string.
func toUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return latin1(s)
}

func latin1(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}
