package outbox

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// BenchmarkDKIMSign measures signing a 1 MiB message with both keys (the
// extra rendering pass legacy relay makes), against the bytes alone.
func BenchmarkDKIMSign(b *testing.B) {
	keys := testDKIMKeys(b)
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	msg := []byte("From: alice@example.org\r\nTo: bob@legacy.example\r\nSubject: big\r\n\r\n" +
		strings.Repeat(line, (1<<20)/len(line)))
	render := func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(msg))
		return err
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		sigs, err := dkimSign(keys, "example.org", render)
		if err != nil || len(sigs) != 2 {
			b.Fatal(sigs, err)
		}
	}
}

// The signers must hash what the SMTP client's DATA writer sends: bare
// LF as CRLF, CRLF unchanged, however the writes are cut.
func TestCRLFWriter(t *testing.T) {
	t.Parallel()
	for _, chunks := range [][]string{
		{"a\nb\r\nc\n"},
		{"a\r", "\nb\n", "\n"},
		{"\n", "a\r", "x\n"},
		{"", "a\r\n", "\r\n"},
	} {
		var got bytes.Buffer
		w := &crlfWriter{w: &got}
		in := ""
		for _, c := range chunks {
			if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
				t.Fatalf("%q: Write = %d, %v", chunks, n, err)
			}
			in += c
		}
		want := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\n", "\r\n")
		if got.String() != want {
			t.Errorf("%q: %q, want %q", chunks, got.String(), want)
		}
	}
}

// The signing domain comes from the From: address, whatever the display
// name's charset.
func TestFromDomain(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]string{
		"From: alice@Example.ORG\r\n":                                     "example.org",
		"Subject: x\r\nFrom: Alice <alice@example.org>\r\n":               "example.org",
		"From: =?windows-1252?Q?Andr=E9?= <andre@example.org>\r\n":        "example.org",
		"From: =?utf-8?B?w6lsw6g=?= <e@example.org>, bob@example.net\r\n": "example.org",
		"From: \"Alice\r\n (folded)\" <alice@example.org>\r\n":            "example.org",
		"To: bob@example.net\r\n":                                         "",
		"From: undisclosed\r\n":                                           "",
		"From: alice@example.org\r\n\r\n":                                 "example.org",
	} {
		if got := fromDomainOf([]byte(h)); got != want {
			t.Errorf("%q: %q, want %q", h, got, want)
		}
	}
}
