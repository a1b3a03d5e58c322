package imapout

import (
	"strings"
)

// baseSubject is a subject reduced for SORT SUBJECT and THREAD (RFC 5256
// §2.1), and whether the subject marked the message as a reply or
// forward (a subj-refwd leader or a "(fwd)" trailer, RFC 5256 §4 6.B).
type baseSubject struct {
	text  string
	key   string // text in the i;ascii-casemap collation, for comparing
	reply bool
}

// extractBaseSubject follows the steps of RFC 5256 §2.1 on a subject as
// written in the header.
func extractBaseSubject(subject string) baseSubject {
	// (1) Encoded words decoded to UTF-8, tabs to spaces, runs of spaces
	// to one.
	s := collapseSpaces(decodeText(subject))
	var b baseSubject
	for {
		s = b.trimTrailers(s) // (2)
		for {                 // (5): repeat (3) and (4) until neither changes the text
			t := b.trimLeaders(s)                   // (3)
			if u, ok := cutBlob(t); ok && u != "" { // (4)
				t = u
			}
			if t == s {
				break
			}
			s = t
		}
		// (6) "[fwd:" ... "]" is removed, and it starts again at (2).
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			continue
		}
		b.text, b.key = s, asciiUpper(s)
		return b
	}
}

// trimTrailers removes every subj-trailer ("(fwd)" / WSP) at the end.
func (b *baseSubject) trimTrailers(s string) string {
	for {
		switch {
		case strings.HasSuffix(s, " "):
			s = s[:len(s)-1]
		case len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "(fwd)"):
			s = s[:len(s)-5]
			b.reply = true
		default:
			return s
		}
	}
}

// trimLeaders removes every subj-leader at the start:
// (*subj-blob subj-refwd) / WSP.
func (b *baseSubject) trimLeaders(s string) string {
	for {
		if strings.HasPrefix(s, " ") {
			s = s[1:]
			continue
		}
		t := s
		for {
			u, ok := cutBlob(t)
			if !ok {
				break
			}
			t = u
		}
		u, ok := cutRefwd(t)
		if !ok {
			return s
		}
		s = u
		b.reply = true
	}
}

// cutBlob removes a leading subj-blob: "[" *BLOBCHAR "]" *WSP, where a
// BLOBCHAR is any character but "[" and "]".
func cutBlob(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return s, false
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return s, false
	}
	return strings.TrimLeft(s[end+2:], " "), true
}

// cutRefwd removes a leading subj-refwd:
// ("re" / ("fw" ["d"])) *WSP [subj-blob] ":".
func cutRefwd(s string) (string, bool) {
	var rest string
	switch {
	case len(s) >= 2 && strings.EqualFold(s[:2], "re"):
		rest = s[2:]
	case len(s) >= 3 && strings.EqualFold(s[:3], "fwd"):
		rest = s[3:]
	case len(s) >= 2 && strings.EqualFold(s[:2], "fw"):
		rest = s[2:]
	default:
		return s, false
	}
	rest = strings.TrimLeft(rest, " ")
	if u, ok := cutBlob(rest); ok {
		rest = u
	}
	if !strings.HasPrefix(rest, ":") {
		return s, false
	}
	return rest[1:], true
}

// collapseSpaces turns tabs and line breaks into spaces and runs of
// spaces into one (RFC 5256 §2.1 step 1).
func collapseSpaces(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\t' || c == '\r' || c == '\n' || c == ' ' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}
