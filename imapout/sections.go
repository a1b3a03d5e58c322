package imapout

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-imap/v2"

	"tollbridge/store"
)

// Response codes go-imap does not name.
const (
	codeExpungeIssued imap.ResponseCode = "EXPUNGEISSUED"
	codeUseAttr       imap.ResponseCode = "USEATTR"
)

// binarySection prepares a BINARY[part]<partial> item (RFC 3516): the
// part's body with its Content-Transfer-Encoding undone. BINARY[] is the
// whole message as is.
func (s *session) binarySection(row *store.MessageRow, md *meta, path []int, p *imap.SectionPartial) (item, error) {
	msg, err := s.rendered(row, md)
	if err != nil {
		return item{}, err
	}
	if len(path) == 0 {
		off, n := partial(p, msg.Size())
		return item{r: msg.Section(off, n), size: n}, nil
	}
	pt, ok := md.Root.find(path)
	if !ok {
		return item{r: strings.NewReader(""), size: 0}, nil
	}
	raw := msg.Section(pt.BodyStart, pt.End-pt.BodyStart)
	var dec io.Reader
	switch pt.Encoding {
	case "", "7bit", "8bit", "binary":
		off, n := partial(p, pt.End-pt.BodyStart)
		return item{r: msg.Section(pt.BodyStart+off, n), size: n}, nil
	case "base64":
		dec = base64.NewDecoder(base64.RawStdEncoding, &base64Filter{r: raw})
	case "quoted-printable":
		dec = quotedprintable.NewReader(raw)
	default:
		return item{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE,
			Text: "Unknown Content-Transfer-Encoding " + pt.Encoding}
	}
	out := store.NewSpool(s.srv.cfg.SpoolDir, memSpool)
	// A body that stops decoding part way gives what decoded (as mail
	// clients show it).
	io.Copy(out, dec)
	off, n := partial(p, out.Size())
	return item{r: out.Section(off, n), size: n, closer: out}, nil
}

// base64Filter passes on only base64 alphabet characters, so line breaks,
// stray white space and padding do not stop the decoder.
type base64Filter struct {
	r   io.Reader
	buf [4096]byte
}

// Read returns only base64 alphabet characters.
func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(f.buf[:min(len(p), len(f.buf))])
		k := 0
		for _, c := range f.buf[:n] {
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}
