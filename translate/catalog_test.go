package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestHandWrittenCatalogs joins catalogs written as another implementation
// would write them: keys in another order, indented, \u escapes, {"bytes"}
// segments, a base64 part with short lines, and a GnuPG-made message that
// has no parts at all.
func TestHandWrittenCatalogs(t *testing.T) {
	t.Parallel()
	parts := map[string]map[string][]byte{
		"other-implementation": {
			"b1": []byte("Hallo Bob,\r\nbis morgen.\r\n"),
			"a1": func() []byte {
				b := make([]byte, 40)
				for i := range b {
					b[i] = byte(i)
				}
				return b
			}(),
		},
		"gnupg-no-parts": {},
	}
	for name, ps := range parts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			j, err := os.ReadFile("testdata/catalogs/" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile("testdata/catalogs/" + name + ".eml")
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseCatalog(j)
			if err != nil {
				t.Fatalf("ParseCatalog: %v", err)
			}
			src := NewMemorySink()
			for id, b := range ps {
				src.Put(id, "", b)
			}
			if got := joinBytes(t, c, src); !bytes.Equal(got, want) {
				t.Fatalf("Join:\n%q\nwant\n%q", got, want)
			}
			if n := c.MessageSize(); n != int64(len(want)) {
				t.Errorf("MessageSize = %d, want %d", n, len(want))
			}
			// Our own Marshal of it parses and joins the same.
			m, _ := c.Marshal()
			c2, err := ParseCatalog(m)
			if err != nil {
				t.Fatalf("ParseCatalog(Marshal): %v", err)
			}
			if got := joinBytes(t, c2, src); !bytes.Equal(got, want) {
				t.Fatal("Join after Marshal differs")
			}
		})
	}
}

func TestHandWrittenCatalogFields(t *testing.T) {
	t.Parallel()
	j, _ := os.ReadFile("testdata/catalogs/other-implementation.json")
	c, err := ParseCatalog(j)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "Grüße" || c.Parts[0].Name != "nüll.bin" || c.Parts[0].ID != "a1" {
		t.Errorf("fields: %+v", c)
	}
	if c.MIME.Header.IsText() {
		t.Error("a Latin-1 header should stay a bytes segment")
	}
	it := c.MIME.Body[3].Node.Body[0]
	if it.Part != "a1" || it.Transfer != Base64(16) {
		t.Errorf("part item = %+v", it)
	}
}

func TestMarshalShape(t *testing.T) {
	t.Parallel()
	c := &Catalog{Version: 1, Subject: "<a&b> \u2028 \"q\" \x01", MIME: Node{
		Header: TextSeg("Subject: x\r\n\r\n"),
		Body: []Item{
			SegItem([]byte{0xff, 'a'}),
			NodeItem(Node{Header: TextSeg("")}),
			PartItem("a1", Base64(76)),
			PartItem("b1", Identity()),
		},
	}, Parts: []Part{
		{ID: "a1", Kind: KindAttachment, Type: "application/pdf", SHA256: strings.Repeat("0", 64)},
		{ID: "b1", Kind: KindBlock, Type: "text/plain", SHA256: strings.Repeat("1", 64)},
	}}
	got, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"from":"","to":[],"cc":[],"subject":"<a&b> \u2028 \"q\" \u0001","date":"",` +
		`"message_id":"","in_reply_to":"","references":[],"parts":[` +
		`{"id":"a1","kind":"attachment","type":"application/pdf","name":"","size":0,"sha256":"` + strings.Repeat("0", 64) + `"},` +
		`{"id":"b1","kind":"block","type":"text/plain","name":"","size":0,"sha256":"` + strings.Repeat("1", 64) + `"}],` +
		`"mime":{"header":{"text":"Subject: x\r\n\r\n"},"body":[{"bytes":"/2E="},{"node":{"header":{"text":""},"body":[]}},` +
		`{"part":"a1","transfer":{"encoding":"base64","line":76}},{"part":"b1","transfer":{"encoding":"identity"}}]}}`
	if string(got) != want {
		t.Fatalf("Marshal:\n%s\nwant\n%s", got, want)
	}
	// encoding/json agrees on the content.
	var v1, v2 any
	if err := json.Unmarshal(got, &v1); err != nil {
		t.Fatal(err)
	}
	std, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(std, &v2); err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(v1), mustJSON(v2); a != b {
		t.Errorf("json.Marshal differs:\n%s\n%s", a, b)
	}
	var back Catalog
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("json.Unmarshal into Catalog: %v", err)
	}
	if again, _ := back.Marshal(); !bytes.Equal(again, got) {
		t.Errorf("round trip through encoding/json differs")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParseCatalogRejects(t *testing.T) {
	t.Parallel()
	const sha = `"00000000000000000000000000000000000000000000000000000000000000ab"`
	ok := func(parts, body string) string {
		return `{"version":1,"from":"","to":[],"cc":[],"subject":"","date":"","message_id":"","in_reply_to":"","references":[],` +
			`"parts":[` + parts + `],"mime":{"header":{"text":""},"body":[` + body + `]}}`
	}
	part := `{"id":"a1","kind":"attachment","type":"","name":"","size":3,"sha256":` + sha + `}`
	ref := `{"part":"a1","transfer":{"encoding":"identity"}}`
	if _, err := ParseCatalog([]byte(ok(part, ref))); err != nil {
		t.Fatalf("valid catalog refused: %v", err)
	}
	// A listed part the tree never uses is of the shape, and accepted.
	if _, err := ParseCatalog([]byte(ok(part, ``))); err != nil {
		t.Fatalf("catalog with an unreferenced part refused: %v", err)
	}
	cases := map[string]string{
		"not json":            `{"version":1`,
		"trailing data":       ok(part, ref) + `{}`,
		"array":               `[]`,
		"version 2":           strings.Replace(ok(part, ref), `"version":1`, `"version":2`, 1),
		"version float":       strings.Replace(ok(part, ref), `"version":1`, `"version":1.0`, 1),
		"missing key":         strings.Replace(ok(part, ref), `"cc":[],`, ``, 1),
		"unknown key":         strings.Replace(ok(part, ref), `"cc":[],`, `"cc":[],"bcc":[],`, 1),
		"duplicate key":       strings.Replace(ok(part, ref), `"cc":[],`, `"cc":[],"cc":[],`, 1),
		"null list":           strings.Replace(ok(part, ref), `"cc":[]`, `"cc":null`, 1),
		"null string":         strings.Replace(ok(part, ref), `"subject":""`, `"subject":null`, 1),
		"number in list":      strings.Replace(ok(part, ref), `"cc":[]`, `"cc":[1]`, 1),
		"bad date":            strings.Replace(ok(part, ref), `"date":""`, `"date":"2026-11-24 10:00:00"`, 1),
		"dangling ref":        ok(part, ref+`,{"part":"a2","transfer":{"encoding":"identity"}}`),
		"duplicate id":        ok(part+","+part, ref),
		"bad id":              ok(strings.Replace(part, `"a1"`, `"../x"`, 1), `{"part":"../x","transfer":{"encoding":"identity"}}`),
		"unknown kind":        ok(strings.Replace(part, `"attachment"`, `"inline"`, 1), ref),
		"upper-case sha":      ok(strings.Replace(part, `ab"`, `AB"`, 1), ref),
		"short sha":           ok(strings.Replace(part, sha, `"00"`, 1), ref),
		"negative size":       ok(strings.Replace(part, `"size":3`, `"size":-3`, 1), ref),
		"huge size":           ok(strings.Replace(part, `"size":3`, `"size":9007199254740993`, 1), ref),
		"unknown encoding":    ok(part, `{"part":"a1","transfer":{"encoding":"quoted-printable"}}`),
		"line zero":           ok(part, `{"part":"a1","transfer":{"encoding":"base64","line":0}}`),
		"line negative":       ok(part, `{"part":"a1","transfer":{"encoding":"base64","line":-76}}`),
		"base64 without line": ok(part, `{"part":"a1","transfer":{"encoding":"base64"}}`),
		"identity with line":  ok(part, `{"part":"a1","transfer":{"encoding":"identity","line":76}}`),
		"part no transfer":    ok(part, `{"part":"a1"}`),
		"text and bytes":      ok(part, ref+`,{"text":"a","bytes":"YQ=="}`),
		"empty item":          ok(part, ref+`,{}`),
		"bad base64 seg":      ok(part, ref+`,{"bytes":"YQ"}`),
		"non-canonical bytes": ok(part, ref+`,{"bytes":"YR=="}`),
		"header is a node":    strings.Replace(ok(part, ref), `"header":{"text":""}`, `"header":{"node":{"header":{"text":""},"body":[]}}`, 1),
		"node without body":   ok(part, ref+`,{"node":{"header":{"text":""}}}`),
		"deep nesting":        ok(part, ref+`,`+strings.Repeat(`{"node":{"header":{"text":""},"body":[`, 200)+strings.Repeat(`]}}`, 200)),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCatalog([]byte(doc))
			if err == nil {
				t.Fatalf("accepted %s", doc)
			}
			if !errors.Is(err, ErrInvalidCatalog) {
				t.Errorf("error %v does not wrap ErrInvalidCatalog", err)
			}
		})
	}
}

func TestParseCatalogOverflow(t *testing.T) {
	t.Parallel()
	// Many references to one maximal part: the total does not fit int64.
	var b strings.Builder
	b.WriteString(`{"version":1,"from":"","to":[],"cc":[],"subject":"","date":"","message_id":"","in_reply_to":"","references":[],` +
		`"parts":[{"id":"a1","kind":"attachment","type":"","name":"","size":1125899906842624,"sha256":"` + strings.Repeat("a", 64) + `"}],` +
		`"mime":{"header":{"text":""},"body":[`)
	for i := range 10000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"part":"a1","transfer":{"encoding":"base64","line":1}}`)
	}
	b.WriteString(`]}}`)
	if _, err := ParseCatalog([]byte(b.String())); err == nil {
		t.Fatal("accepted a catalog whose size overflows")
	}
}

func TestJoinChecksParts(t *testing.T) {
	t.Parallel()
	m := []byte("Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJDRA==\r\n")
	c, sink := roundTrip(t, m, Options{})
	if c.MIME.Body[0].Transfer != Base64(76) {
		t.Fatalf("transfer = %+v", c.MIME.Body[0].Transfer)
	}
	for name, data := range map[string]string{"short": "ABC", "long": "ABCDE", "different": "ABCE"} {
		src := NewMemorySink()
		src.Put("a1", KindAttachment, []byte(data))
		if err := Join(&bytes.Buffer{}, c, src); err == nil {
			t.Errorf("%s part: Join did not fail", name)
		}
	}
	_ = sink
	if err := Join(&bytes.Buffer{}, c, NewMemorySink()); err == nil {
		t.Error("missing part: Join did not fail")
	}
	bad := *c
	bad.Parts = nil
	if err := Join(&bytes.Buffer{}, &bad, sink); err == nil {
		t.Error("unknown part: Join did not fail")
	}
}
