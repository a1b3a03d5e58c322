package protocol

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseHeader feeds arbitrary bytes to the strict header parser, as a
// server does at completion and a recipient's bridge when it opens mail.
// Nothing may panic; a refusal wraps ErrMalformed; an accepted header
// marshals to bytes that parse again to the same header. The corpus in
// testdata/fuzz/FuzzParseHeader holds the header seeds that seal's
// FuzzOpen used before the parser moved here (a real header sealed to
// seal's fuzz key among them).
func FuzzParseHeader(f *testing.F) {
	good, _ := goodHeader().Marshal()
	for _, s := range [][]byte{good, deepHeader(200), bracketHeader(200), []byte(`{"version":1,"parts":[]}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b, err := h.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		h2, err := ParseHeader(b)
		if err != nil {
			t.Fatalf("re-parse of an accepted header: %v", err)
		}
		if b2, _ := h2.Marshal(); !bytes.Equal(b, b2) {
			t.Fatalf("re-marshal differs:\n%s\n%s", b, b2)
		}
	})
}
