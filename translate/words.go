package translate

import (
	"golang.org/x/text/encoding/htmlindex"

	"encoding/base64"
	"strings"
)

// decodeWords decodes the RFC 2047 encoded-words in a header value. Text
// outside encoded-words is read as UTF-8, else Latin-1. Encoded-words in a
// charset this package cannot convert, or that do not decode, are kept as
// written. Adjacent encoded-words in one charset are joined before
// conversion, so a character split across two words survives.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return toUTF8(s)
	}
	var (
		out      strings.Builder
		pending  []byte
		pendCS   string
		prevWord bool
	)
	flush := func() {
		if pending != nil {
			out.WriteString(convertCharset(pendCS, pending))
			pending = nil
		}
	}
	for {
		start := strings.Index(s, "=?")
		if start < 0 {
			break
		}
		cs, enc, text, n, ok := cutWord(s[start:])
		var decoded []byte
		if ok && supportedCharset(cs) {
			decoded, ok = decodeWordText(enc, text)
		} else {
			ok = false
		}
		if !ok {
			skip := start + 2
			if n > 0 {
				skip = start + n
			}
			flush()
			out.WriteString(toUTF8(s[:skip]))
			s = s[skip:]
			prevWord = false
			continue
		}
		between := s[:start]
		if !prevWord || strings.Trim(between, " \t\r\n") != "" {
			flush()
			out.WriteString(toUTF8(between))
		}
		if pending != nil && pendCS != cs {
			flush()
		}
		pending = append(pending, decoded...)
		if pending == nil {
			pending = []byte{}
		}
		pendCS = cs
		s = s[start+n:]
		prevWord = true
	}
	flush()
	out.WriteString(toUTF8(s))
	return out.String()
}

// cutWord parses the encoded-word at the start of s ("=?cs?e?text?=")
// and returns its lower-case charset (language suffix removed), encoding
// letter, text and length. n is 0 when s does not start with one.
func cutWord(s string) (cs string, enc byte, text string, n int, ok bool) {
	rest := s[2:]
	i := strings.IndexByte(rest, '?')
	if i <= 0 || len(rest) < i+3 || rest[i+2] != '?' {
		return "", 0, "", 0, false
	}
	cs, enc, rest = rest[:i], rest[i+1], rest[i+3:]
	j := strings.Index(rest, "?=")
	if j < 0 || strings.ContainsAny(cs, " \t\r\n") || strings.ContainsAny(rest[:j], " \t\r\n") {
		return "", 0, "", 0, false
	}
	text = rest[:j]
	n = 2 + i + 3 + j + 2
	if k := strings.IndexByte(cs, '*'); k >= 0 { // RFC 2231 §5 language
		cs = cs[:k]
	}
	return strings.ToLower(cs), enc, text, n, true
}

func decodeWordText(enc byte, text string) ([]byte, bool) {
	switch enc {
	case 'B', 'b':
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(text, "="))
		}
		return b, err == nil
	case 'Q', 'q':
		b := make([]byte, 0, len(text))
		for i := 0; i < len(text); i++ {
			switch c := text[i]; {
			case c == '_':
				b = append(b, ' ')
			case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
				b = append(b, unhex(text[i+1])<<4|unhex(text[i+2]))
				i += 2
			default:
				b = append(b, c)
			}
		}
		return b, true
	}
	return nil, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// supportedCharset reports whether cs (lower case) names a charset
// convertCharset can decode: the WHATWG Encoding Standard's labels, which
// is what mail clients use too (so iso-8859-1 is read as windows-1252).
func supportedCharset(cs string) bool {
	if cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii" {
		return true
	}
	_, err := htmlindex.Get(cs)
	return err == nil
}

// convertCharset converts b from charset cs (lower case) to UTF-8. Unknown
// charsets and undecodable bytes fall back to toUTF8.
func convertCharset(cs string, b []byte) string {
	enc, err := htmlindex.Get(cs)
	if err != nil {
		return toUTF8(string(b))
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return toUTF8(string(b))
	}
	return string(out)
}
