package imapout

import (
	"bytes"
	"io"
	"strings"
)

// RFC 8601 §5: a receiver that puts its own Authentication-Results field
// on a message must first remove any field claiming its authserv-id, else
// a sender can forge "tollbridge=pass" under this bridge's name. docs/protocol.md
// §3.7: "A message shown to a client loses every top-level
// Authentication-Results: field whose authserv-id is this bridge's
// server.hostname … before the bridge's own trace fields are put in front;
// nothing else changes."

// maxResultsField bounds how much of one Authentication-Results field is
// held to find its authserv-id; a field whose authserv-id is not found in
// that much (a giant comment first) is dropped as unreadable.
const maxResultsField = 64 << 10

// maxFieldName bounds how much of a line is held to read a field name;
// no field we look for has a longer one.
const maxFieldName = 256

type resultsMode int

const (
	modeName resultsMode = iota // reading the field name of a line
	modePass                    // passing the current field through
	modeHold                    // holding an Authentication-Results field
	modeDrop                    // dropping the current field
	modeBody                    // past the header section: passing all
)

// resultsFilter is an io.Writer that passes a rebuilt message on to w
// byte for byte, except that it drops from the top-level header section
// every Authentication-Results field whose authserv-id is host (compared
// case-insensitively), and any continuation lines the message starts
// with, which would otherwise continue the bridge's own field in front of
// it. It reads fields as the IMAP side does (parseFields, scanMessage):
// lines end at LF, a field runs on over lines that start with SP or HT,
// and the header section ends at the first empty line. Close must be
// called after the last Write.
type resultsFilter struct {
	w       io.Writer
	host    string
	mode    resultsMode
	afterLF bool   // the last byte ended a line: the next one says whether the field goes on
	buf     []byte // the field name being read, or the field being held
	err     error
}

// newResultsFilter returns a filter writing to w for a bridge named host.
// Until the first field starts, the filter is dropping: a line starting
// with white space at the very beginning is a continuation.
func newResultsFilter(w io.Writer, host string) *resultsFilter {
	return &resultsFilter{w: w, host: host, mode: modeDrop, afterLF: true}
}

// Write implements io.Writer.
func (f *resultsFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && f.err == nil {
		if f.mode == modeBody {
			f.write(p)
			break
		}
		if f.afterLF {
			f.afterLF = false
			if p[0] != ' ' && p[0] != '\t' {
				f.endField()
				f.mode, f.buf = modeName, f.buf[:0]
			}
		}
		p = f.step(p)
	}
	if f.err != nil {
		return 0, f.err
	}
	return n, nil
}

// step consumes the start of p in the current mode and returns the rest.
func (f *resultsFilter) step(p []byte) []byte {
	switch f.mode {
	case modePass, modeDrop:
		line, rest, lf := cutLine(p)
		if f.mode == modePass {
			f.write(line)
		}
		f.afterLF = lf
		return rest
	case modeHold:
		line, rest, lf := cutLine(p)
		f.buf = append(f.buf, line...)
		f.afterLF = lf
		if len(f.buf) > maxResultsField {
			f.decide(false)
		}
		return rest
	}
	// modeName: one byte at a time until the name is known.
	c := p[0]
	f.buf = append(f.buf, c)
	switch {
	case c == '\n' && (len(f.buf) == 1 || string(f.buf) == "\r\n"):
		f.write(f.buf) // the empty line ending the header section
		f.mode = modeBody
	case c == '\n':
		f.write(f.buf) // a line that is no field: kept, as clients skip it
		f.mode, f.afterLF = modePass, true
	case c == ':':
		if isResultsName(f.buf[:len(f.buf)-1]) {
			f.mode = modeHold
			return p[1:]
		}
		f.write(f.buf)
		f.mode = modePass
	case len(f.buf) <= maxFieldName:
	case len(f.buf) == maxFieldName+1 && !isResultsName(f.buf),
		len(f.buf) > maxFieldName+1 && c != ' ' && c != '\t':
		// Too long for a name we look for. Only "Authentication-Results"
		// followed by white space goes on (checked once, then byte by
		// byte): a name is read up to the colon, less the white space
		// before it.
		f.write(f.buf)
		f.mode = modePass
	case len(f.buf) > maxResultsField:
		f.mode, f.buf = modeDrop, f.buf[:0]
	}
	return p[1:]
}

// isResultsName reports whether name, less trailing white space, is
// Authentication-Results.
func isResultsName(name []byte) bool {
	return strings.EqualFold(string(bytes.TrimRight(name, " \t")), "Authentication-Results")
}

// cutLine splits p after its first LF, if any.
func cutLine(p []byte) (line, rest []byte, lf bool) {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		return p[:i+1], p[i+1:], true
	}
	return p, nil, false
}

// endField settles the field that just ended.
func (f *resultsFilter) endField() {
	if f.mode == modeHold {
		f.decide(true)
	}
}

// decide drops the held field if it is ours, else writes it; whatever
// follows of the field goes the same way. complete says whether buf holds
// the whole field.
func (f *resultsFilter) decide(complete bool) {
	_, value, _ := bytes.Cut(f.buf, []byte(":"))
	id, ok := authservID(value)
	if ok && !strings.EqualFold(id, f.host) || !ok && complete {
		f.write(f.buf)
		f.mode = modePass
	} else {
		f.mode = modeDrop
	}
	f.buf = f.buf[:0]
}

// Close settles a field still held at the end of the message.
func (f *resultsFilter) Close() error {
	if f.err == nil && f.mode == modeHold {
		f.decide(true)
	}
	return f.err
}

func (f *resultsFilter) write(b []byte) {
	if f.err == nil && len(b) > 0 {
		_, f.err = f.w.Write(b)
	}
}

// authservID reads the authserv-id that starts an Authentication-Results
// value (RFC 8601 §2.2: [CFWS] authserv-id, a token or quoted-string,
// possibly followed by a version). ok is false when v ends before the
// authserv-id does.
func authservID(v []byte) (id string, ok bool) {
	i, ok := skipCFWS(v)
	if !ok {
		return "", false
	}
	v = v[i:]
	if v[0] == '"' {
		var b strings.Builder
		for j := 1; j < len(v); j++ {
			switch c := v[j]; {
			case c == '\\' && j+1 < len(v):
				j++
				b.WriteByte(v[j])
			case c == '"':
				return b.String(), true
			case c != '\r' && c != '\n':
				b.WriteByte(c)
			}
		}
		return "", false
	}
	end := bytes.IndexFunc(v, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?=`, r)
	})
	if end < 0 {
		return string(v), true
	}
	return string(v[:end]), true
}

// skipCFWS returns the length of the white space, line breaks and
// (nested) comments v starts with; ok is false when that is all of v.
func skipCFWS(v []byte) (int, bool) {
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return i, true
		}
	}
	return 0, false
}
