package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// MaxHeaderDepth is how deeply a header's JSON may nest. A valid header
// needs 3 levels (object > parts > part); one more is margin. Deeper input
// is refused before it is decoded, so hostile nesting costs one linear scan.
const MaxHeaderDepth = 4

// CheckHeaderNesting refuses JSON nested deeper than MaxHeaderDepth
// (arrays and objects both count). It is one pass over the bytes with no
// allocation, and does not otherwise check that b is JSON: callers run it
// before any decoder, which reports what else is wrong. ParseHeader runs
// it first. The error wraps ErrMalformed.
func CheckHeaderNesting(b []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > MaxHeaderDepth {
				return headerMalformed("JSON nested deeper than %d levels", MaxHeaderDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// jsonFrame is one open object or array in checkDuplicateKeys.
type jsonFrame struct {
	keys      map[string]bool // nil for an array
	key       string          // object: the last key read
	wantValue bool            // object: the next token is key's value
	index     int             // array: elements begun so far
}

// checkDuplicateKeys rejects JSON with a key twice in one object: encoding/json
// would keep the last, another implementation might keep the first. Its
// cost is linear in len(b): a field's path is built only to report it.
func checkDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []jsonFrame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return headerMalformed("JSON: %v", err)
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if key, ok := tok.(string); ok && top != nil && top.keys != nil && !top.wantValue {
			if top.keys[key] {
				return fieldError(fieldPath(stack, key), "appears twice")
			}
			top.keys[key], top.key, top.wantValue = true, key, true
			continue
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			continue
		}
		// tok is a value, or opens one.
		if top != nil {
			if top.keys != nil {
				top.wantValue = false
			} else {
				top.index++
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, jsonFrame{keys: make(map[string]bool)})
		case json.Delim('['):
			stack = append(stack, jsonFrame{})
		}
	}
}

// fieldPath names key in the innermost object of stack the way errors
// name fields: "catalog.size", "parts[0].kind".
func fieldPath(stack []jsonFrame, key string) string {
	var b strings.Builder
	for _, f := range stack[:len(stack)-1] {
		if f.keys == nil {
			fmt.Fprintf(&b, "[%d]", f.index-1)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
	return b.String()
}
