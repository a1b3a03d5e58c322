package translate

import (
	"strconv"
	"strings"
)

// parseMediaType splits a Content-Type or Content-Disposition value into
// its lower-cased first token and its parameters. It is lenient, since a
// real message must never fail to split: parameters that do not parse are
// skipped, the first of duplicate parameters wins, and RFC 2231 extended
// and continued parameters (name*=, name*0*=…) are decoded and take
// precedence over the plain form.
func parseMediaType(v string) (string, map[string]string) {
	media, rest, _ := strings.Cut(v, ";")
	media = strings.ToLower(trimWSP(media))
	raw := rawParams(rest)
	params := make(map[string]string, len(raw))
	bases := map[string]bool{}
	for k, val := range raw {
		if i := strings.IndexByte(k, '*'); i >= 0 {
			bases[k[:i]] = true
			continue
		}
		params[k] = val
	}
	for base := range bases {
		if s, ok := extendedParam(raw, base); ok {
			params[base] = s
		}
	}
	return media, params
}

// rawParams reads "; a=b; c="d"" into a map of lower-cased names.
func rawParams(s string) map[string]string {
	raw := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t;")
		if s == "" {
			return raw
		}
		i := strings.IndexAny(s, "=;")
		if i < 0 {
			return raw
		}
		if s[i] == ';' {
			s = s[i+1:]
			continue
		}
		name := strings.ToLower(trimWSP(s[:i]))
		s = strings.TrimLeft(s[i+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			val, s = quotedString(s)
			if j := strings.IndexByte(s, ';'); j >= 0 {
				s = s[j:]
			} else {
				s = ""
			}
		} else {
			j := strings.IndexByte(s, ';')
			if j < 0 {
				j = len(s)
			}
			val, s = trimWSP(s[:j]), s[j:]
		}
		if _, dup := raw[name]; name != "" && !dup {
			raw[name] = val
		}
	}
}

// quotedString reads a quoted-string at the start of s (which starts with
// a quote) and returns its content and what follows the closing quote.
func quotedString(s string) (string, string) {
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			b.WriteByte(s[i+1])
			i += 2
			continue
		}
		i++
		if c == '"' {
			return b.String(), s[i:]
		}
		b.WriteByte(c)
	}
	return b.String(), ""
}

// extendedParam assembles RFC 2231 parameter base from raw: base* or the
// sections base*0, base*0*, base*1… in order.
func extendedParam(raw map[string]string, base string) (string, bool) {
	if v, ok := raw[base+"*"]; ok {
		cs, text := splitCharset(v)
		return convertCharset(cs, percentDecode(text)), true
	}
	var (
		buf []byte
		cs  string
	)
	for n := 0; ; n++ {
		key := base + "*" + strconv.Itoa(n)
		if v, ok := raw[key+"*"]; ok {
			if n == 0 {
				cs, v = splitCharset(v)
			}
			buf = append(buf, percentDecode(v)...)
			continue
		}
		if v, ok := raw[key]; ok {
			buf = append(buf, v...)
			continue
		}
		if n == 0 {
			return "", false
		}
		return convertCharset(cs, buf), true
	}
}

// splitCharset splits "charset'lang'text" into lower-case charset and text.
func splitCharset(v string) (string, string) {
	cs, rest, ok := strings.Cut(v, "'")
	if !ok {
		return "", v
	}
	_, text, ok := strings.Cut(rest, "'")
	if !ok {
		return "", v
	}
	return strings.ToLower(cs), text
}

func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return b
}

// validMediaType reports whether t looks like type/subtype.
func validMediaType(t string) bool {
	typ, sub, ok := strings.Cut(t, "/")
	return ok && isToken(typ) && isToken(sub)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}
