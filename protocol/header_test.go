package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestHeaderRoundTrip: Marshal writes the members in §3.3.4 order,
// compact, parts always an array, and ParseHeader reads back the same.
func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	h := goodHeader()
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	order := []string{`{"version":1,"from":"`, `","to":"`, `","key_fingerprint":"`, `","encrypted_key":"`,
		`","catalog":{"size":`, `,"sha256":"`, `"},"parts":[{"id":"p1","kind":"block","size":`, `,"sha256":"`}
	rest := string(b)
	for _, o := range order {
		i := strings.Index(rest, o)
		if i < 0 {
			t.Fatalf("%q not in order in %s", o, b)
		}
		rest = rest[i+len(o):]
	}
	h2, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := h2.Marshal(); !bytes.Equal(b, b2) {
		t.Fatalf("re-marshal differs:\n%s\n%s", b, b2)
	}
	h.Parts = nil
	b, _ = h.Marshal()
	if !bytes.Contains(b, []byte(`"parts":[]`)) {
		t.Fatalf("no parts: %s", b)
	}
	if _, err := ParseHeader(b); err != nil {
		t.Fatalf("a header without parts: %v", err)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	t.Parallel()
	good, err := goodHeader().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHeader(good); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(m map[string]any)) []byte {
		var c map[string]any
		json.Unmarshal(good, &c)
		f(c)
		b, _ := json.Marshal(c)
		return b
	}
	part := func(m map[string]any, i int) map[string]any { return m["parts"].([]any)[i].(map[string]any) }
	otherPacket := base64.StdEncoding.EncodeToString([]byte("\xd2\x05\x01abcd")) // a SEIPD packet
	cases := []struct {
		field string
		b     []byte
	}{
		{"version", mutate(func(m map[string]any) { m["version"] = 2 })},
		{"version", mutate(func(m map[string]any) { delete(m, "version") })},
		{"JSON", mutate(func(m map[string]any) { m["version"] = 1.5 })},
		{"from", mutate(func(m map[string]any) { m["from"] = strings.ToUpper(m["from"].(string)) })},
		{"from", mutate(func(m map[string]any) { m["from"] = "abc" })},
		{"to", mutate(func(m map[string]any) { delete(m, "to") })},
		{"key_fingerprint", mutate(func(m map[string]any) { m["key_fingerprint"] = strings.Repeat("a", 64) })},
		{"encrypted_key", mutate(func(m map[string]any) { m["encrypted_key"] = "!!" })},
		{"encrypted_key", mutate(func(m map[string]any) { m["encrypted_key"] = "" })},
		{"encrypted_key", mutate(func(m map[string]any) { m["encrypted_key"] = otherPacket })},
		{"encrypted_key", mutate(func(m map[string]any) {
			m["encrypted_key"] = base64.RawStdEncoding.EncodeToString(append(pkeskOf(t, m), 0))
		})},
		{"encrypted_key", mutate(func(m map[string]any) {
			e := m["encrypted_key"].(string)
			m["encrypted_key"] = e[:8] + "\n" + e[8:]
		})},
		{"encrypted_key", mutate(func(m map[string]any) {
			m["encrypted_key"] = base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 30))
		})},
		{"catalog.sha256", mutate(func(m map[string]any) { m["catalog"].(map[string]any)["sha256"] = "" })},
		{"catalog.size", mutate(func(m map[string]any) { m["catalog"].(map[string]any)["size"] = -1 })},
		{"parts[1].id", mutate(func(m map[string]any) { part(m, 1)["id"] = "p1" })},
		{"parts[0].id", mutate(func(m map[string]any) { part(m, 0)["id"] = "../x" })},
		{"parts[0].id", mutate(func(m map[string]any) { part(m, 0)["id"] = "" })},
		{"parts[0].id", mutate(func(m map[string]any) { part(m, 0)["id"] = strings.Repeat("a", 65) })},
		{"parts[1].kind", mutate(func(m map[string]any) { part(m, 1)["kind"] = "Block" })},
		{"parts[0].size", mutate(func(m map[string]any) { part(m, 0)["size"] = -5 })},
		{"parts[1].sha256", mutate(func(m map[string]any) { part(m, 1)["sha256"] = strings.Repeat("g", 64) })},
		{"JSON", mutate(func(m map[string]any) { m["extra"] = true })},
		{"JSON", []byte(`[]`)},
		{"JSON", []byte(``)},
		{"data after", append(bytes.Clone(good), []byte(` {}`)...)},
		{"to", bytes.Replace(good, []byte(`"to":`), []byte(`"to":"x","to":`), 1)},
		{"version", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":1,"version":1`), 1)},
		{"parts[0].kind", bytes.Replace(good, []byte(`"kind":"block",`), []byte(`"kind":"block","sha256":"","kind":"block",`), 1)},
		{"catalog.size", bytes.Replace(good, []byte(`"catalog":{`), []byte(`"catalog":{"size":1,`), 1)},
	}
	for i, c := range cases {
		_, err := ParseHeader(c.b)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("case %d (%s): %v, want ErrMalformed", i, c.field, err)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("case %d: error %q does not name %s", i, err, c.field)
		}
	}
	// A 64-character id is fine, and so are all its characters.
	ok := mutate(func(m map[string]any) { part(m, 0)["id"] = strings.Repeat("aZ09_-", 10) + "abcd" })
	if _, err := ParseHeader(ok); err != nil {
		t.Errorf("64-char id: %v", err)
	}
}

func pkeskOf(t testing.TB, m map[string]any) []byte {
	b, err := base64.StdEncoding.DecodeString(m["encrypted_key"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseHeaderNesting: a header nested deeper than a valid one needs is
// refused as such before any decoding (the duplicate-key check once cost
// memory quadratic in depth); brackets inside strings do not count.
func TestParseHeaderNesting(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{
		deepHeader(1 << 10),
		[]byte(`{"version":1,"parts":[[[[[]]]]]}`),
		[]byte(`{"catalog":{"size":{"a":[{}]}}}`),
	} {
		if _, err := ParseHeader(b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "nested deeper") {
			t.Errorf("%.40s…: %v, want a nesting error", b, err)
		}
	}
	for _, b := range [][]byte{
		[]byte(`{"a":[{"b":[]}]}`),
		[]byte(`{"a":"[[[[[{{{{{\"[[[[[\\"}`),
		[]byte(`[[[[`), // not JSON, but not too deep: the decoder says what is wrong
	} {
		if err := CheckHeaderNesting(b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	if err := CheckHeaderNesting([]byte(`{"a":"\\"}[[[[[]]]]]`)); err == nil {
		t.Error(`an escaped backslash does not keep the string open`)
	}
}
