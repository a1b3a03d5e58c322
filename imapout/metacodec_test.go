package imapout

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestMetaCodecRoundTrip encodes and decodes the metadata of every corpus
// message (nested messages, odd parameters, groups) and gets the same value.
func TestMetaCodecRoundTrip(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("../translate/testdata/corpus/*.eml")
	if len(files) == 0 {
		t.Fatal("no corpus")
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		s, err := scanMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m := newMeta(s)
		m.Text = []textPart{{Blob: "ab", Size: 3, SHA256: "cd", Decode: "base64", Charset: "utf-8"}}
		m.References = append(m.References, "ref@example.org")
		m.Envelope.DateText = "1 Dec 2026 10:00:00 -0000"
		m.Envelope.Bcc = append(m.Envelope.Bcc, imap.Address{Route: "@a,@b", Mailbox: "u", Host: "d"})
		got, err := decodeMeta(encodeMeta(m))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !got.Envelope.Date.Equal(m.Envelope.Date) {
			t.Fatalf("%s: date %v, want %v", f, got.Envelope.Date, m.Envelope.Date)
		}
		// Times compare by instant (above); the rest exactly.
		got.Envelope.Date = m.Envelope.Date
		normalize(got.Root)
		normalize(m.Root)
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: round trip differs:\n%+v\n%+v", f, got, m)
		}
	}
	if _, err := decodeMeta([]byte(`{"v":1}`)); err != errMetaVersion {
		t.Fatalf("old JSON cache: %v", err)
	}
	for _, bad := range [][]byte{{metaVersion}, {metaVersion, 0xff, 0xff, 0xff}, append(encodeMeta(&meta{Version: metaVersion, Root: &part{}}), 1)} {
		if _, err := decodeMeta(bad); err == nil {
			t.Fatalf("corrupt %x decoded", bad)
		}
	}
}

// normalize clears what the cache does not keep: scanning state, and a
// time's location name (its instant and offset are kept).
func normalize(p *part) {
	if p == nil {
		return
	}
	p.bodyLFs = 0
	if p.Envelope != nil {
		p.Envelope.Date = p.Envelope.Date.UTC()
	}
	for _, c := range p.Children {
		normalize(c)
	}
	normalize(p.Message)
}

func FuzzMetaDecode(f *testing.F) {
	f.Add(encodeMeta(&meta{Version: metaVersion, Root: &part{Type: "text", Subtype: "plain"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if again, err := decodeMeta(encodeMeta(m)); err != nil || !reflect.DeepEqual(len(again.Header), len(m.Header)) {
			t.Fatalf("re-encoding a decoded cache fails: %v", err)
		}
	})
}

// TestMetaUpgradeFromV3: a version 3 cache (no Date field as written, no
// source routes, no References) is read and completed from the header
// section it kept, marked to be stored again, instead of being rebuilt
// from the message.
func TestMetaUpgradeFromV3(t *testing.T) {
	t.Parallel()
	raw := crlf("Date: 1 Dec 2026 10:00:00 -0000\nTo: <@route:user@domain>\nReferences: <a@x> <b@x>\nSubject: s\n\nbody\n")
	s, err := scanMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	old := newMeta(s)
	old.Version = 3
	b := encodeMeta(old)
	if b[0] != 3 {
		t.Fatalf("version byte %d", b[0])
	}
	m, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if !m.upgraded || m.Version != metaVersion || m.Envelope.DateText != "1 Dec 2026 10:00:00 -0000" ||
		fmt.Sprint(m.References) != "[a@x b@x]" || len(m.Envelope.To) != 1 || m.Envelope.To[0].Route != "@route" {
		t.Fatalf("upgraded: %+v %+v", m, m.Envelope)
	}
	again, err := decodeMeta(encodeMeta(m))
	if err != nil || again.upgraded || again.Envelope.DateText != m.Envelope.DateText || fmt.Sprint(again.References) != "[a@x b@x]" {
		t.Fatalf("stored again: %+v %v", again, err)
	}
}
