package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// headerSizes are the sizes ParseHeader is benchmarked at: a typical header,
// one of a message with many parts, and more than any server accepts.
var headerSizes = []struct {
	name string
	n    int
}{{"1KB", 1 << 10}, {"100KB", 100 << 10}, {"1MB", 1 << 20}}

// validHeader is a well-formed header of about n bytes: as many parts as
// fit.
func validHeader(tb testing.TB, n int) []byte {
	tb.Helper()
	h := goodHeader()
	h.Parts = nil
	base, _ := h.Marshal()
	// Each part adds the same bytes but for its id's digits; ids are
	// padded so all have one length.
	one := fmt.Sprintf(`{"id":"a%06d","kind":"attachment","size":1048576,"sha256":"%s"},`, 0, strings.Repeat("ab", 32))
	for i := 0; len(base)+(i+1)*len(one) <= n || i == 0; i++ {
		h.Parts = append(h.Parts, HeaderPart{ID: fmt.Sprintf("a%06d", i), Kind: KindAttachment, Size: 1 << 20, SHA256: strings.Repeat("ab", 32)})
	}
	b, err := h.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// deepHeader is n bytes of JSON objects nested as deep as n allows
// ({"a":{"a":…}}), the shape that made the duplicate-key check quadratic.
func deepHeader(n int) []byte {
	depth := (n - 2) / 6
	var b bytes.Buffer
	b.WriteString(strings.Repeat(`{"a":`, depth))
	b.WriteString(`""`)
	b.WriteString(strings.Repeat(`}`, depth))
	return b.Bytes()
}

// bracketHeader is n bytes of one object whose string value is all
// brackets: the nesting check must read it all, and must not count them.
func bracketHeader(n int) []byte {
	return []byte(`{"from":"` + strings.Repeat("[{", (n-12)/2) + `"}`)
}

// BenchmarkParseHeader shows the header check's cost against size, for
// valid headers, hostile deeply nested ones and ones whose string holds
// brackets: ns/op and B/op should grow
// no faster than the size. Run with
//
//	go test -run NONE -bench ParseHeader -benchmem ./protocol/
func BenchmarkParseHeader(b *testing.B) {
	for _, sz := range headerSizes {
		valid := validHeader(b, sz.n)
		b.Run("valid/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(valid)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseHeader(valid); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, kind := range []struct {
		name string
		make func(int) []byte
	}{{"deep", deepHeader}, {"brackets", bracketHeader}} {
		for _, sz := range headerSizes {
			hostile := kind.make(sz.n)
			b.Run(kind.name+"/"+sz.name, func(b *testing.B) {
				b.SetBytes(int64(len(hostile)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ParseHeader(hostile); !errors.Is(err, ErrMalformed) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
