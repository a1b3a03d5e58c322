package translate

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// recordingSink is a MemorySink that logs every call.
type recordingSink struct {
	*MemorySink
	mu     sync.Mutex
	events []string
}

func (s *recordingSink) log(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *recordingSink) CreatePart(id, kind string) (PartWriter, error) {
	s.log("create " + id)
	w, err := s.MemorySink.CreatePart(id, kind)
	if err != nil {
		return nil, err
	}
	return &recordingWriter{PartWriter: w, sink: s, id: id}, nil
}

type recordingWriter struct {
	PartWriter
	sink *recordingSink
	id   string
}

func (w *recordingWriter) Commit() error { w.sink.log("commit " + w.id); return w.PartWriter.Commit() }
func (w *recordingWriter) Abort() error  { w.sink.log("abort " + w.id); return w.PartWriter.Abort() }

func base64Lines(data []byte, n int) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestLateBase64Mismatch: a base64 body whose 9000th line is short is found
// out after part of it was written; the part is aborted and stored again
// as is, under the same id.
func TestLateBase64Mismatch(t *testing.T) {
	t.Parallel()
	lines := strings.Split(base64Lines(patterned(57*10000), 76), "\r\n")
	lines[8999] = lines[8999][:40]
	body := strings.Join(lines, "\r\n")
	m := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		body + "--b--\r\n")
	sink := &recordingSink{MemorySink: NewMemorySink()}
	c, err := Split(bytes.NewReader(m), int64(len(m)), sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(sink.events, ","), "create a1,abort a1,create a1,commit a1"; got != want {
		t.Errorf("sink saw %s, want %s", got, want)
	}
	var tr Transfer
	walkItems(&c.MIME, func(it *Item) {
		if it.Part == "a1" {
			tr = it.Transfer
		}
	})
	if tr != Identity() {
		t.Errorf("transfer = %+v, want identity", tr)
	}
	if got := joinBytes(t, c, sink); !bytes.Equal(got, m) {
		t.Fatal("round trip failed")
	}
	if data, _ := sink.Part("a1"); int64(len(data)) != c.Parts[0].Size || !strings.HasPrefix(string(data), lines[0]) {
		t.Errorf("a1 is not the raw body")
	}
}

func TestBase64Canonical(t *testing.T) {
	t.Parallel()
	data := patterned(1000)
	enc76 := base64Lines(data, 76)
	tests := []struct {
		name, body string
		line       int // 0: identity
	}{
		{"76", enc76, 76},
		{"64", base64Lines(data, 64), 64},
		{"72", base64Lines(data, 72), 72},
		{"odd line length 75", base64Lines(data, 75), 75},
		{"one short line", base64Lines(data[:10], 76), 76},
		{"one line of 100", base64Lines(data[:75], 100), 100},
		{"last line full", base64Lines(data[:57*3], 76), 76},
		{"no final CRLF", strings.TrimSuffix(enc76, "\r\n"), 0},
		{"LF lines", strings.ReplaceAll(enc76, "\r\n", "\n"), 0},
		{"blank line after", enc76 + "\r\n", 0},
		{"short line in the middle", strings.Replace(enc76, "\r\n", "\r\n\r\n", 1), 0},
		{"unpadded", "QUJDRA\r\n", 0},
		{"padding bits", "QUJDRB==\r\n", 0},
		{"data after padding", "QUI=\r\nQUI=\r\n", 0},
		{"URL alphabet", "-_-_\r\n", 0},
		{"space", "QUJD REVG\r\n", 0},
		{"CR inside", "QUJD\rREVG\r\n", 0},
		{"first line shorter", "QUJD\r\nQUJDREVG\r\n", 0},
		{"triple padding", "QQ===\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Alone, up to the end of the message.
			m := []byte("Content-Transfer-Encoding: base64\r\n\r\n" + tt.body)
			c, _ := roundTrip(t, m, Options{})
			checkTransfer(t, c, tt.line)
			// In a multipart, where the body's last CRLF belongs to the delimiter.
			m = []byte("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				strings.TrimSuffix(tt.body, "\r\n") + "\r\n--b--\r\n")
			c, _ = roundTrip(t, m, Options{})
			switch tt.name {
			case "no final CRLF": // the delimiter's CRLF completes it
				checkTransfer(t, c, 76)
			case "blank line after": // Thunderbird's layout: the blank line is the delimiter's
				checkTransfer(t, c, 76)
			default:
				checkTransfer(t, c, tt.line)
			}
		})
	}
}

func checkTransfer(t *testing.T, c *Catalog, line int) {
	t.Helper()
	want := Identity()
	if line > 0 {
		want = Base64(line)
	}
	walkItems(&c.MIME, func(it *Item) {
		if it.Part != "" && it.Transfer != want {
			t.Errorf("transfer = %+v, want %+v", it.Transfer, want)
		}
	})
}

// TestLimits: a message beyond the scanner's limits still round-trips,
// the parts that do not fit being kept as opaque bodies.
func TestLimits(t *testing.T) {
	t.Parallel()
	small := &limits{budget: 1500, header: 1200, nodes: 6, depth: 2, boundary: 40}
	// The limits are really reached: some containers become opaque parts
	// and some messages a single part.
	demoted, whole := 0, 0
	for _, m := range corpus(t) {
		c, _ := splitBytes(t, m, Options{limits: small})
		for _, p := range c.Parts {
			switch media, _ := parseMediaType(p.Type); {
			case len(c.MIME.Header.Bytes) == 0 && len(c.Parts) == 1:
				whole++
			case strings.HasPrefix(media, "multipart/") || media == "message/rfc822":
				demoted++
			}
		}
	}
	if demoted == 0 || whole == 0 {
		t.Fatalf("limits not reached: %d demoted containers, %d whole messages", demoted, whole)
	}
	if testing.Verbose() {
		t.Logf("%d demoted containers, %d whole messages", demoted, whole)
	}
	for name, m := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, m, Options{limits: small})
			roundTrip(t, m, Options{limits: small, StripBcc: true})
		})
	}
}

func TestWholeMessageFallback(t *testing.T) {
	t.Parallel()
	m := []byte(strings.Repeat("X-Long: header line\r\n", 100) + "\r\nbody\r\n")
	c, sink := roundTrip(t, m, Options{limits: &limits{budget: 1000, header: 1000, nodes: 10, depth: 5, boundary: 70}})
	if len(c.Parts) != 1 || len(c.MIME.Header.Bytes) != 0 {
		t.Fatalf("catalog: %s", outline(c))
	}
	p := c.Parts[0]
	if p.ID != "a1" || p.Kind != KindAttachment || p.Type != "message/rfc822" || p.Size != int64(len(m)) {
		t.Errorf("part = %+v", p)
	}
	if data, _ := sink.Part("a1"); !bytes.Equal(data, m) {
		t.Error("the part is not the whole message")
	}
}

func TestDemotedMultipart(t *testing.T) {
	t.Parallel()
	// Depth 1: the inner multipart becomes one opaque attachment.
	m := []byte("Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n" +
		"Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\na\r\n--i\r\n\r\nb\r\n--i--\r\n" +
		"--o--\r\n")
	c, sink := roundTrip(t, m, Options{limits: &limits{budget: 1 << 20, header: 1 << 20, nodes: 100, depth: 1, boundary: 70}})
	if len(c.Parts) != 1 || c.Parts[0].Type != "multipart/alternative; boundary=i" {
		t.Fatalf("catalog: %s", outline(c))
	}
	data, _ := sink.Part("a1")
	// The CRLF before "--o--" belongs to that delimiter, not to the body.
	if want := "--i\r\n\r\na\r\n--i\r\n\r\nb\r\n--i--"; string(data) != want {
		t.Errorf("a1 = %q, want %q", data, want)
	}
	// Too many entities: same.
	c, _ = roundTrip(t, m, Options{limits: &limits{budget: 1 << 20, header: 1 << 20, nodes: 3, depth: 10, boundary: 70}})
	if len(c.Parts) != 1 {
		t.Fatalf("catalog: %s", outline(c))
	}
}

func TestStripBccForms(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Bcc: a@b\r\n\r\nbody", "\r\nbody"},
		{"To: x\r\nBcc: a@b,\r\n c@d\r\n\tc@e\r\nSubject: s\r\n\r\nBcc: body", "To: x\r\nSubject: s\r\n\r\nBcc: body"},
		{"bCC : a@b\nTo: x\n\n", "To: x\n\n"},
		{"To: x\r\nBcc: a@b", "To: x\r\n"},
		{"To: x\r\nBcc:\r\n", "To: x\r\n"},
		{"X-Bcc: keep\r\nBccx: keep\r\n\r\n", "X-Bcc: keep\r\nBccx: keep\r\n\r\n"},
		{"Bcc: 1\r\nBcc: 2\r\nTo: x\r\nBcc: 3\r\n\r\n", "To: x\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := string(refStripBcc([]byte(tt.in))); got != tt.want {
			t.Fatalf("refStripBcc(%q) = %q, want %q", tt.in, got, tt.want)
		}
		c, sink := roundTrip(t, []byte(tt.in), Options{StripBcc: true})
		if got := string(joinBytes(t, c, sink)); got != tt.want {
			t.Errorf("StripBcc(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type failingSink struct{ after int }

func (s *failingSink) CreatePart(id, kind string) (PartWriter, error) {
	if s.after == 0 {
		return nil, errors.New("disk full")
	}
	s.after--
	return NewMemorySink().CreatePart(id, kind)
}

type failingReader struct{ size int64 }

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	return 0, fmt.Errorf("I/O error at %d", off)
}

func TestSplitErrors(t *testing.T) {
	t.Parallel()
	m := corpus(t)["11-mixed-pdf-image-zip.eml"]
	if _, err := Split(bytes.NewReader(m), int64(len(m)), &failingSink{after: 2}, Options{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing sink: err = %v", err)
	}
	if _, err := Split(failingReader{}, 100, NewMemorySink(), Options{}); err == nil {
		t.Error("failing source: no error")
	}
	if _, err := Split(bytes.NewReader(m), int64(len(m))+10, NewMemorySink(), Options{}); err == nil {
		t.Error("short source: no error")
	}
}
