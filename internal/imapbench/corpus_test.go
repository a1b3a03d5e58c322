package imapbench

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// The corpus is deterministic: message i is the same on every run and for
// both servers. The mix is most mail a few KiB of text, some
// multipart/alternative, some with attachments (averaging ~30 KB, like
// the 312 MB for 10,000), and threads of replies.

// Words of the corpus; needle is in 1% of bodies (UID SEARCH TEXT) and
// subjectWord in 5% of subjects (SEARCH SUBJECT).
const (
	needle      = "zebracorn"
	subjectWord = "quarterly"
)

var vocabulary = strings.Fields(`the of and to in is was that for on as with by
at from his an were are which this be or have had not but one all they their
meeting report budget project review draft schedule invoice team lunch plan
release notes update question answer thanks please attached see below regards`)

// message returns the corpus's message i (0-based), CRLF line ends.
func message(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 13))
	var b strings.Builder
	subject := fmt.Sprintf("%s %s %d", vocabulary[r.IntN(len(vocabulary))], vocabulary[r.IntN(len(vocabulary))], i)
	if i%20 == 7 {
		subject = subjectWord + " " + subject
	}
	thread := i / 5 // five messages a thread
	if i%5 != 0 {
		subject = "Re: " + subject
	}
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.com>\r\nTo: Bob <bob@example.net>\r\n", i%97, i%97)
	fmt.Fprintf(&b, "Subject: %s\r\nDate: Tue, %02d Nov 2026 %02d:%02d:00 +0100\r\n", subject, 1+i%28, i%24, i%60)
	fmt.Fprintf(&b, "Message-ID: <m%d@example.com>\r\nMIME-Version: 1.0\r\n", i)
	if i%5 != 0 {
		fmt.Fprintf(&b, "In-Reply-To: <m%d@example.com>\r\nReferences: <m%d@example.com>\r\n", i-1, thread*5)
	}
	text := body(r, 2000+r.IntN(5000), i%100 == 42)
	switch {
	case i%20 == 19:
		b.WriteString(mixed(text, attachment(r, 200<<10+r.IntN(200<<10))))
	case i%20 >= 16:
		b.WriteString(mixed(text, attachment(r, 20<<10+r.IntN(80<<10))))
	case i%5 == 3:
		b.WriteString(alternative(text))
	default:
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n" + text)
	}
	return []byte(b.String())
}

// body is about n bytes of text in lines, with the needle if asked.
func body(r *rand.Rand, n int, withNeedle bool) string {
	var b strings.Builder
	line := 0
	for b.Len() < n {
		w := vocabulary[r.IntN(len(vocabulary))]
		if withNeedle && b.Len() > n/2 {
			w, withNeedle = needle, false
		}
		b.WriteString(w)
		if line += len(w) + 1; line > 70 {
			b.WriteString("\r\n")
			line = 0
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String() + "\r\n"
}

func alternative(text string) string {
	return "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>" + text + "</p></body></html>\r\n--alt--\r\n"
}

func mixed(text, att string) string {
	return "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text +
		"--mix\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + att + "--mix--\r\n"
}

// attachment is n random bytes in base64 lines.
func attachment(r *rand.Rand, n int) string {
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	return b.String() + enc + "\r\n"
}
