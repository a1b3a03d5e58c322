package translate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// tinyLimits make the fuzzer reach the limit fallbacks with small inputs.
func tinyLimits() *limits { return &limits{budget: 96, header: 64, nodes: 5, depth: 3, boundary: 12} }

func addCorpusSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/corpus/*.eml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b--\r\n"))
	f.Add([]byte("Bcc: x@y\r\n z@w\r\nSubject: s\r\n\r\nbody"))
}

func FuzzSplit(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, m []byte) {
		roundTrip(t, m, Options{})
		roundTrip(t, m, Options{limits: tinyLimits()})
		roundTrip(t, m, Options{StripBcc: true, limits: tinyLimits()})
	})
}

func FuzzParseCatalog(f *testing.F) {
	files, _ := filepath.Glob("testdata/catalogs/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, name := range []string{"05-thunderbird-related-inline-image.eml", "13-nested-forward-twice.eml", "26-rfc2231-filenames.eml"} {
		if m, err := os.ReadFile("testdata/corpus/" + name); err == nil {
			c, err := Split(bytes.NewReader(m), int64(len(m)), NewMemorySink(), Options{})
			if err == nil {
				j, _ := c.Marshal()
				f.Add(j)
			}
		}
	}
	f.Add([]byte(`{"version":1,"from":"","to":[],"cc":[],"subject":"","date":"","message_id":"","in_reply_to":"","references":[],"parts":[],"mime":{"header":{"text":"A: b\r\n\r\n"},"body":[{"bytes":"/w=="}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCatalog(b)
		if err != nil {
			return
		}
		j, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := ParseCatalog(j)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, j)
		}
		j2, _ := c2.Marshal()
		if !bytes.Equal(j, j2) {
			t.Fatalf("re-marshal differs:\n%s\n%s", j, j2)
		}
		if c.MessageSize() != c2.MessageSize() {
			t.Fatalf("MessageSize changed")
		}
	})
}
