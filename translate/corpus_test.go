package translate

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus.golden")

// corpus returns the test messages by file name.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/corpus/*.eml")
	if err != nil || len(files) < 40 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	msgs := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "X-Corpus: ") {
			t.Fatalf("%s: does not start with an X-Corpus: line", f)
		}
		msgs[filepath.Base(f)] = b
	}
	return msgs
}

func sortedNames(ms map[string][]byte) []string {
	names := make([]string, 0, len(ms))
	for n := range ms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestCorpusRoundTrip(t *testing.T) {
	t.Parallel()
	for name, m := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, m, Options{})
			roundTrip(t, m, Options{StripBcc: true})
		})
	}
}

// TestCorpusGolden compares every catalog's fields and tree outline with
// testdata/corpus.golden (go test -run Golden -update rewrites it).
func TestCorpusGolden(t *testing.T) {
	t.Parallel()
	ms := corpus(t)
	var b strings.Builder
	for _, name := range sortedNames(ms) {
		c, _ := splitBytes(t, ms[name], Options{})
		fmt.Fprintf(&b, "==== %s\nfrom=%q to=%q cc=%q\nsubject=%q date=%q\nmessage_id=%q in_reply_to=%q references=%q\n%s",
			name, c.From, c.To, c.Cc, c.Subject, c.Date, c.MessageID, c.InReplyTo, c.References, outline(c))
	}
	const golden = "testdata/corpus.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("outline differs from %s at line %d:\n got %s\nwant %s", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("outline differs from %s in length", golden)
	}
}

func TestCorpusFields(t *testing.T) {
	t.Parallel()
	ms := corpus(t)
	tests := []struct {
		file string
		want Catalog // header fields only
	}{
		{"01-plain-mutt.eml", Catalog{
			From: "erik@example.com", To: []string{"alice@example.org"}, Cc: []string{},
			Subject: "Re: build server downtime", Date: "2025-11-20T17:41:02Z",
			MessageID:  "<aR8xYz12AbCdEfGh@host.example.com>",
			InReplyTo:  "<c0ffee12-3456-789a-bcde-f0123456789a@example.org>",
			References: []string{"<c0ffee12-3456-789a-bcde-f0123456789a@example.org>"},
		}},
		{"04-thunderbird-mixed-pdf.eml", Catalog{
			From: "alice@example.org", To: []string{"bob@example.net"},
			Cc:      []string{"carol@example.com", "dave@example.com"},
			Subject: "Q4 report (draft)", Date: "2025-11-25T15:02:33Z",
			MessageID:  "<5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d@example.org>",
			References: []string{},
		}},
		{"08-outlook-alternative.eml", Catalog{
			From: "carol@contoso.example", To: []string{"alice@example.org"}, Cc: []string{},
			Subject: "RE: Q4 budget", Date: "2025-11-18T14:22:09Z",
			MessageID:  "<DM6PR11MB4123ABCDEF0123456789@DM6PR11MB4123.namprd11.prod.outlook.com>",
			InReplyTo:  "<5e6f7a8b@example.org>",
			References: []string{"<1a2b3c4d@example.org>", "<5e6f7a8b@example.org>"},
		}},
		{"20-quoted-printable-soft-breaks.eml", Catalog{
			From: "grete@example.de", To: []string{"alice@example.org"}, Cc: []string{},
			Subject: "Grüße aus München", Date: "2025-11-29T11:00:00Z",
			MessageID: "<qp.20251129@example.de>", References: []string{},
		}},
		{"23-8bit-latin1.eml", Catalog{
			From: "francois@example.fr", To: []string{"alice@example.org"}, Cc: []string{},
			Subject: "Résumé de la réunion", Date: "2025-11-29T08:00:00Z",
			MessageID: "<latin1.1@example.fr>", References: []string{},
		}},
		{"25-rfc2047-encoded-words.eml", Catalog{
			From: "juergen@example.de", To: []string{"andre@example.fr", "elody@example.fr"}, Cc: []string{},
			Subject: "🎉 Geburtstag – Einladung für Jörg und ein Rest", Date: "2025-11-30T09:00:00Z",
			MessageID: "<rfc2047.1@example.de>", References: []string{},
		}},
		{"34-duplicate-and-folded-headers.eml", Catalog{
			From:    "bob@example.net",
			To:      []string{"alice@example.org", "carol@example.com", "dave@example.com", "erik@example.com"},
			Cc:      []string{},
			Subject: "first subject", Date: "2025-12-01T12:00:00Z",
			MessageID: "<folded.message.id.1@example.net>", References: []string{},
		}},
		{"49-html-only-no-mime-version.eml", Catalog{
			From: "promo@shop.example", To: []string{"alice@example.org"}, Cc: []string{},
			Subject: "20% off this weekend", Date: "2025-12-03T12:00:00Z",
			MessageID: "<promo.1@shop.example>", References: []string{},
		}},
	}
	for _, tt := range tests {
		c, _ := splitBytes(t, ms[tt.file], Options{})
		got := Catalog{From: c.From, To: c.To, Cc: c.Cc, Subject: c.Subject, Date: c.Date,
			MessageID: c.MessageID, InReplyTo: c.InReplyTo, References: c.References}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
}

func TestCorpusParts(t *testing.T) {
	t.Parallel()
	ms := corpus(t)
	type want struct{ id, kind, typ, name, transfer string }
	tests := map[string][]want{
		"04-thunderbird-mixed-pdf.eml": {
			{"b1", KindBlock, "text/plain; charset=UTF-8; format=flowed", "", "identity"},
			{"a1", KindAttachment, `application/pdf; name="Q4-report-draft.pdf"`, "Q4-report-draft.pdf", "base64/72"},
		},
		"06-apple-mail-alternative-qp.eml": {
			{"b1", KindBlock, "text/plain;\tcharset=utf-8", "", "identity"},
			{"b2", KindBlock, "text/html;\tcharset=utf-8", "", "identity"},
		},
		"17-smime-signed-openssl-64col.eml": {
			{"b1", KindBlock, "text/plain", "", "identity"},
			{"a1", KindAttachment, `application/x-pkcs7-signature; name="smime.p7s"`, "smime.p7s", "base64/64"},
		},
		"26-rfc2231-filenames.eml": {
			{"b1", KindBlock, "text/plain; charset=us-ascii", "", "identity"},
			{"a1", KindAttachment, "application/pdf", "€ invoice Nº 7.pdf", "base64/76"},
			{"b2", KindBlock, `text/plain; charset=utf-8; name*0*=UTF-8''Bericht%20%C3%BCber%20; name*1*=die%20Pr%C3%BCfung; name*2=".txt"`, "Bericht über die Prüfung.txt", "identity"},
			{"b3", KindBlock, "text/plain; charset=iso-8859-1", "résumé.txt", "identity"},
			{"a2", KindAttachment, `image/png; name="=?utf-8?B?5Zu+54mHLnBuZw==?="`, "图片.png", "base64/76"},
		},
		"37-malformed-missing-boundary.eml": {
			{"a1", KindAttachment, "multipart/mixed", "", "identity"},
		},
		"35-bare-lf.eml": {
			{"b1", KindBlock, "text/plain; charset=us-ascii", "", "identity"},
			{"a1", KindAttachment, `application/pdf; name="lf.pdf"`, "lf.pdf", "identity"},
		},
		"42-empty-parts.eml": {
			{"b1", KindBlock, "text/plain", "", "identity"},
		},
	}
	for file, wants := range tests {
		c, _ := splitBytes(t, ms[file], Options{})
		transfers := map[string]string{}
		walkItems(&c.MIME, func(it *Item) {
			if it.Part != "" {
				s := it.Transfer.Encoding
				if s == EncodingBase64 {
					s += fmt.Sprint("/", it.Transfer.Line)
				}
				transfers[it.Part] = s
			}
		})
		if len(c.Parts) != len(wants) {
			t.Errorf("%s: %d parts, want %d", file, len(c.Parts), len(wants))
			continue
		}
		for i, w := range wants {
			p := c.Parts[i]
			got := want{p.ID, p.Kind, p.Type, p.Name, transfers[p.ID]}
			if got != w {
				t.Errorf("%s part %d:\n got %+v\nwant %+v", file, i, got, w)
			}
		}
	}
}

func walkItems(n *Node, f func(*Item)) {
	for i := range n.Body {
		f(&n.Body[i])
		if n.Body[i].Node != nil {
			walkItems(n.Body[i].Node, f)
		}
	}
}

// TestCorpusDecodedBase64 checks that base64 bodies were really decoded:
// each part's plaintext starts as its type says.
func TestCorpusDecodedBase64(t *testing.T) {
	t.Parallel()
	magic := map[string]string{
		"application/pdf":               "%PDF-",
		"image/png":                     "\x89PNG\r\n\x1a\n",
		"image/jpeg":                    "\xff\xd8\xff",
		"image/gif":                     "GIF89a",
		"application/zip":               "PK\x03\x04",
		"application/pkcs7-signature":   "\x30\x82",
		"application/x-pkcs7-signature": "\x30\x82",
		"application/pkcs7-mime":        "\x30\x82",
		"application/ics":               "BEGIN:VCALENDAR\r\n",
	}
	seen := map[string]int{}
	for name, m := range corpus(t) {
		c, sink := splitBytes(t, m, Options{})
		kinds := map[string]Transfer{}
		walkItems(&c.MIME, func(it *Item) {
			if it.Part != "" {
				kinds[it.Part] = it.Transfer
			}
		})
		for _, p := range c.Parts {
			if kinds[p.ID].Encoding != EncodingBase64 {
				continue
			}
			data, _ := sink.Part(p.ID)
			media, _ := parseMediaType(p.Type)
			if want, ok := magic[media]; ok {
				seen[media]++
				if !bytes.HasPrefix(data, []byte(want)) {
					t.Errorf("%s %s (%s): plaintext starts %q", name, p.ID, media, data[:min(len(data), 16)])
				}
			} else if strings.HasPrefix(media, "text/") && strings.Contains(strings.ToLower(p.Type), "utf-8") && !utf8.Valid(data) {
				t.Errorf("%s %s: UTF-8 text part is not valid UTF-8", name, p.ID)
			}
		}
	}
	for media := range magic {
		if seen[media] == 0 {
			t.Errorf("no decoded %s part in the corpus", media)
		}
	}
}

// TestCorpusSignedBytes checks that the first child of each multipart/signed
// rebuilds exactly the bytes the signature covers (RFC 1847: from after the
// first delimiter line to before the CRLF of the next).
func TestCorpusSignedBytes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ file, boundary string }{
		{"14-pgp-mime-signed.eml", "------------kQ3rT5vX7zB9dF1hJ3lN5pR7"},
		{"16-smime-signed-thunderbird.eml", "------------ms070809000102030405060708"},
		{"17-smime-signed-openssl-64col.eml", "----2F3B8E0C1D4A5B6C7D8E9F0A1B2C3D4E"},
	} {
		m := corpus(t)[tt.file]
		delim := "\r\n--" + tt.boundary + "\r\n"
		start := bytes.Index(m, []byte(delim)) + len(delim)
		end := start + bytes.Index(m[start:], []byte("\r\n--"+tt.boundary))
		signed := m[start:end]

		c, sink := splitBytes(t, m, Options{})
		var first *Node
		for _, it := range c.MIME.Body {
			if it.Node != nil {
				first = it.Node
				break
			}
		}
		sub := &Catalog{Parts: c.Parts, MIME: *first}
		var b bytes.Buffer
		if err := Join(&b, sub, sink); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), signed) {
			t.Errorf("%s: signed entity rebuilds as\n%q\nwant\n%q", tt.file, b.Bytes(), signed)
		}
	}
}

func TestCorpusStripBcc(t *testing.T) {
	t.Parallel()
	m := corpus(t)["36-bcc-header.eml"]
	c, sink := splitBytes(t, m, Options{StripBcc: true})
	got := joinBytes(t, c, sink)
	want := strings.NewReplacer(
		"Bcc: Secret One <secret1@example.com>,\r\n  secret2@example.com\r\n", "",
		"BCC: secret3@example.com\r\n", "",
	).Replace(string(m))
	if string(got) != want || strings.Contains(string(got), "secret") {
		t.Fatalf("StripBcc gave\n%s", got)
	}
	if !strings.Contains(string(got), "\r\n\r\nBcc: this line is body text") {
		t.Error("Bcc line in the body was removed")
	}
	// Without the option nothing is removed.
	c, sink = splitBytes(t, m, Options{})
	if got := joinBytes(t, c, sink); !bytes.Equal(got, m) {
		t.Error("Bcc removed without StripBcc")
	}
}
