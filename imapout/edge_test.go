package imapout

import (
	"fmt"
	"strings"
	"testing"
)

func TestAppendOddMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	for i, msg := range []string{
		"",
		"no header at all, just text",
		"Subject: only a header\r\n",
		"Subject: bare LF\n\nline\nline\n",
		"Content-Type: multipart/mixed; boundary=x\r\n\r\nno parts at all\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n",
		"Subject: 8bit \xe9t\xe9\r\n\r\n\xff\xfe binary \x00 body\r\n",
	} {
		r.send("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
		r.expect(`^T\d+ OK`)
		uid := i + 1
		got := r.ok("UID FETCH %d (RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE ENVELOPE BODY.PEEK[1] BINARY.PEEK[1])", uid)
		if len(got) != 1 {
			t.Errorf("message %d: %q", i, got)
			continue
		}
		// NUL is not allowed in a literal: BODY gives 0x80 (TestNoNULInLiterals).
		for _, want := range []string{fmt.Sprintf("RFC822.SIZE %d ", len(msg)), fmt.Sprintf("BODY[] {%d}\r\n%s BODY[1] ", len(msg), strings.ReplaceAll(msg, "\x00", "\x80"))} {
			if !contains(got[0], want) {
				t.Errorf("message %d: %q lacks %q", i, got[0], want)
			}
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
