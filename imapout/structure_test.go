package imapout

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// crlf turns "\n" into "\r\n".
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

var structureMessages = map[string]string{
	"plain": crlf(`From: Alice <alice@example.org>
To: bob@example.net
Subject: Hello
Date: Tue, 24 Nov 2026 10:00:00 +0000
Message-ID: <id1@example.org>

Hi Bob,
two lines.
`),
	"nested": crlf(`From: "Alice A." <alice@example.org>
To: bob@example.net, Carol <carol@example.net>
Cc: =?utf-8?q?D=C3=A9sir=C3=A9e?= <d@example.net>
Subject: =?utf-8?q?Caf=C3=A9?= report
Date: Tue, 24 Nov 2026 10:00:00 +0100
In-Reply-To: <prev@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is a preamble.
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 plain
--inner
Content-Type: text/html; charset=utf-8

<p>Café html</p>
--inner--
inner epilogue
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64
Content-ID: <part3@example.org>

JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K
eJzLSM3JyVcozy/KSQEAGgQEXQ==
--outer
Content-Type: message/rfc822

From: Dan <dan@example.com>
To: alice@example.org
Subject: Forwarded
Content-Type: multipart/mixed; boundary=fwd

--fwd
Content-Type: text/plain

forwarded text
--fwd--
--outer--
epilogue
`),
	"lf-only":          "From: a@example.org\nSubject: LF\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\nContent-Type: text/plain\n\ntwo\n--b--\n",
	"no-final-newline": crlf("From: a@example.org\nSubject: x\n\nbody without newline at the end"),
	"header-only":      crlf("From: a@example.org\nSubject: no body\n"),
	"empty-parts":      crlf("Content-Type: multipart/mixed; boundary=z\n\n--z\n\n--z\nContent-Type: text/plain\n\n\n--z--\n"),
}

func scan(t *testing.T, msg string) *meta {
	t.Helper()
	res, err := scanMessage(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(msg)) {
		t.Fatalf("size %d, want %d", res.Size, len(msg))
	}
	return newMeta(res)
}

// TestSectionsMatchGoIMAP checks every section of every part against
// go-imap's reference extraction.
func TestSectionsMatchGoIMAP(t *testing.T) {
	t.Parallel()
	for name, msg := range structureMessages {
		t.Run(name, func(t *testing.T) {
			m := scan(t, msg)
			if !m.fullHeader() {
				t.Fatalf("header %q not complete (body at %d)", m.Header, m.Root.BodyStart)
			}
			var paths [][]int
			paths = append(paths, nil)
			m.Root.bodyStructure().Walk(func(path []int, _ imap.BodyStructure) bool {
				paths = append(paths, append([]int{}, path...))
				return true
			})
			for _, path := range paths {
				specs := []imap.PartSpecifier{imap.PartSpecifierNone, imap.PartSpecifierHeader, imap.PartSpecifierText}
				if len(path) > 0 {
					specs = append(specs, imap.PartSpecifierMIME)
				}
				for _, spec := range specs {
					item := &imap.FetchItemBodySection{Part: path, Specifier: spec}
					want := imapserver.ExtractBodySection(strings.NewReader(msg), item)
					sp, ok := m.locate(path, spec)
					if !ok {
						if len(want) != 0 {
							t.Errorf("%v %s: not found, go-imap has %q", path, spec, want)
						}
						continue
					}
					got := msg[sp.start:sp.end]
					if len(path) == 0 && spec == imap.PartSpecifierNone {
						// go-imap rewrites the top header with CRLF and a blank line.
						_, gotBody, _ := strings.Cut(strings.ReplaceAll(got, "\r\n", "\n"), "\n\n")
						_, wantBody, _ := strings.Cut(strings.ReplaceAll(string(want), "\r\n", "\n"), "\n\n")
						if gotBody != wantBody {
							t.Errorf("%v %s: body %q, go-imap %q", path, spec, gotBody, wantBody)
						}
						continue
					}
					if spec == imap.PartSpecifierMIME || spec == imap.PartSpecifierHeader {
						// go-imap rewrites headers; compare fields only.
						if !reflect.DeepEqual(parseFields([]byte(got)), parseFields(want)) {
							t.Errorf("%v %s: got %q, go-imap %q", path, spec, got, want)
						}
						continue
					}
					if got != string(want) {
						t.Errorf("%v %s: got %q, go-imap %q", path, spec, got, want)
					}
				}
			}
		})
	}
}

func TestBodyStructure(t *testing.T) {
	t.Parallel()
	m := scan(t, structureMessages["nested"])
	bs := m.Root.bodyStructure()
	mp, ok := bs.(*imap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "mixed" || len(mp.Children) != 3 {
		t.Fatalf("root %#v", bs)
	}
	alt := mp.Children[0].(*imap.BodyStructureMultiPart)
	if alt.Subtype != "alternative" || len(alt.Children) != 2 {
		t.Fatalf("alternative %#v", alt)
	}
	plain := alt.Children[0].(*imap.BodyStructureSinglePart)
	if plain.Type != "text" || plain.Subtype != "plain" || plain.Encoding != "quoted-printable" ||
		plain.Params["charset"] != "utf-8" || plain.Size != uint32(len("Caf=C3=A9 plain")) || plain.Text.NumLines != 0 {
		t.Errorf("plain %#v %#v", plain, plain.Text)
	}
	pdf := mp.Children[1].(*imap.BodyStructureSinglePart)
	if pdf.Type != "application" || pdf.ID != "<part3@example.org>" || pdf.Extended.Disposition.Value != "attachment" ||
		pdf.Extended.Disposition.Params["filename"] != "report.pdf" {
		t.Errorf("pdf %#v", pdf)
	}
	fwd := mp.Children[2].(*imap.BodyStructureSinglePart)
	if fwd.MessageRFC822 == nil || fwd.MessageRFC822.Envelope.Subject != "Forwarded" ||
		fwd.MessageRFC822.BodyStructure.MediaType() != "multipart/mixed" {
		t.Errorf("forwarded %#v", fwd.MessageRFC822)
	}
	env := m.Envelope
	// Encoded words stay as written (RFC 3501 §7.4.2).
	if env.Subject != "=?utf-8?q?Caf=C3=A9?= report" || env.From[0].Name != "Alice A." || env.From[0].Host != "example.org" ||
		len(env.To) != 2 || env.Cc[0].Name != "=?utf-8?q?D=C3=A9sir=C3=A9e?=" || env.InReplyTo[0] != "prev@example.org" || env.Date.IsZero() {
		t.Errorf("envelope %#v", env)
	}
	// Line counts agree with go-imap's.
	ref := imapserver.ExtractBodyStructure(bytes.NewReader([]byte(structureMessages["plain"])))
	got := scan(t, structureMessages["plain"]).Root.bodyStructure()
	if ref.(*imap.BodyStructureSinglePart).Text.NumLines != got.(*imap.BodyStructureSinglePart).Text.NumLines {
		t.Errorf("lines %d, go-imap %d", got.(*imap.BodyStructureSinglePart).Text.NumLines, ref.(*imap.BodyStructureSinglePart).Text.NumLines)
	}
}

func TestScanLimits(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := 0; i < 200; i++ {
		b.WriteString("--b" + string(rune('0'+i%10)) + "\r\nContent-Type: multipart/mixed; boundary=b" + string(rune('0'+(i+1)%10)) + "\r\n\r\n")
	}
	b.WriteString(strings.Repeat("x", 100<<10) + "\r\n")
	res, err := scanMessage(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(b.Len()) {
		t.Fatalf("size %d", res.Size)
	}
	_ = res.Root.bodyStructure()
}

// TestSizesMatchGoIMAP compares every part's size and line count with
// go-imap's reference BODYSTRUCTURE.
func TestSizesMatchGoIMAP(t *testing.T) {
	t.Parallel()
	for name, msg := range structureMessages {
		ref := imapserver.ExtractBodyStructure(strings.NewReader(msg))
		got := scan(t, msg).Root.bodyStructure()
		type info struct {
			media       string
			size, lines int64
		}
		collect := func(bs imap.BodyStructure) map[string]info {
			out := map[string]info{}
			bs.Walk(func(path []int, p imap.BodyStructure) bool {
				i := info{media: p.MediaType()}
				if sp, ok := p.(*imap.BodyStructureSinglePart); ok {
					i.size = int64(sp.Size)
					if sp.Text != nil {
						i.lines = sp.Text.NumLines
					}
					if sp.MessageRFC822 != nil {
						i.lines = sp.MessageRFC822.NumLines
					}
				}
				out[fmt.Sprint(path)] = i
				return true
			})
			return out
		}
		if a, b := collect(got), collect(ref); !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\n ours %v\n go-imap %v", name, a, b)
		}
	}
}

// FuzzStructure feeds arbitrary messages to the structure scanner: it
// must describe every input with offsets inside the message, and never
// produce a multipart without parts (which go-imap cannot write).
func FuzzStructure(f *testing.F) {
	for _, m := range structureMessages {
		f.Add([]byte(m))
	}
	f.Add([]byte(multipartMessage))
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := scanMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if res.Size != int64(len(msg)) {
			t.Fatalf("size %d of %d", res.Size, len(msg))
		}
		md := newMeta(res)
		var check func(p *part, lo, hi int64)
		check = func(p *part, lo, hi int64) {
			if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
				t.Fatalf("part %+v outside [%d, %d]", p, lo, hi)
			}
			if p.isMultipart() && len(p.Children) == 0 {
				t.Fatal("multipart without parts")
			}
			for _, c := range p.Children {
				check(c, p.BodyStart, p.End)
			}
			if p.Message != nil {
				check(p.Message, p.BodyStart, p.End)
			}
		}
		check(md.Root, 0, res.Size)
		md.Root.bodyStructure().Walk(func(path []int, _ imap.BodyStructure) bool {
			for _, spec := range []imap.PartSpecifier{imap.PartSpecifierNone, imap.PartSpecifierMIME, imap.PartSpecifierHeader, imap.PartSpecifierText} {
				if sp, ok := md.locate(path, spec); ok && (sp.start < 0 || sp.start > sp.end || sp.end > res.Size) {
					t.Fatalf("section %v %s: %v", path, spec, sp)
				}
			}
			return true
		})
	})
}
