package smtpin

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// dataEndCases are message texts with odd line ends around the end of
// DATA, each sent as is after the 354, with the reply each must get.
// None may leave the client waiting: "\r\r\n.\r\n" once did, silently,
// until the client gave up and the message was neither sent nor refused.
var dataEndCases = []struct {
	name, data string
	sub, mx    string // expected reply: code and enhanced code; "" any
}{
	{"CR CR LF before the dot", "x\r\r\n.\r\n", "554 5.6.0", "554 5.6.0"},
	{"dot CR CR LF before the dot", "x\r\n.\r\r\n.\r\n", "554 5.6.0", "554 5.6.0"},
	{"dot CR then text", "x\r\n.\ry\r\n.\r\n", "554 5.6.0", "554 5.6.0"},
	{"LF dot LF is no end", "x\n.\nMAIL FROM:<a@b.example>\r\n.\r\n", "554 5.6.0", "554 5.6.0"},
	{"CR dot CR LF", "x\r.\r\n.\r\n", "554 5.6.0", "554 5.6.0"},
	{"plain end", "x\r\n.\r\n", "250 2.0.0", "250 2.0.0"},
	// An empty message: whether the MX takes it is mx.go's business, but
	// it gets an answer.
	{"nothing but the end", ".\r\n", "550 5.6.0", ""},
}

// TestDataOddTerminators sends each case in raw bytes to the submission
// and the MX listener and needs its reply, not one the server makes when
// its read times out, then a NOOP answered 250: the session is still in
// step.
func TestDataOddTerminators(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	auth := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00alice-pw"))
	for _, tc := range dataEndCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hdr := "From: alice@example.org\r\nSubject: odd\r\n\r\n"
			if tc.data == ".\r\n" {
				hdr = ""
			}
			got := dataReply(t, e.sub, []string{"EHLO x", "AUTH PLAIN " + auth, "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.net>"}, hdr+tc.data)
			if got != tc.sub {
				t.Errorf("submission: %q, want %s", got, tc.sub)
			}
			if hdr != "" {
				hdr = "From: someone@legacy.example\r\nSubject: odd\r\n\r\n"
			}
			got = dataReply(t, e.mx, []string{"EHLO x", "MAIL FROM:<someone@legacy.example>", "RCPT TO:<alice@example.org>"}, hdr+tc.data)
			if got != tc.mx && tc.mx != "" {
				t.Errorf("MX: %q, want %s", got, tc.mx)
			}
		})
	}
}

// dataReply runs cmds (each must succeed), sends DATA and data, and
// returns the reply's code and enhanced code after a NOOP shows that the
// session still reads commands.
func dataReply(t *testing.T, addr string, cmds []string, data string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Well past the server's 10 s read timeout, so that load cannot fail
	// the test; a server that waited for more data shows in its reply.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := tc.PrintfLine("%s", c); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := tc.ReadResponse(2); err != nil {
			t.Fatalf("%s: %v %s", c, err, msg)
		}
	}
	tc.PrintfLine("DATA")
	if _, _, err := tc.ReadResponse(354); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	code, msg, err := tc.ReadResponse(0)
	if err != nil && code == 0 {
		t.Fatalf("no reply to the end of DATA: %v", err)
	}
	if strings.Contains(msg, "timeout") {
		t.Fatalf("the server missed the end of DATA and timed out: %d %s", code, msg)
	}
	enh, _, _ := strings.Cut(msg, " ")
	got := fmt.Sprintf("%d %s", code, enh)
	tc.PrintfLine("NOOP")
	if _, _, err := tc.ReadResponse(250); err != nil {
		t.Errorf("NOOP after DATA: %v", err)
	}
	return got
}

// FuzzDataEnd sends arbitrary message text, then CRLF . CRLF, to the MX
// listener: whatever the text, the end of DATA gets exactly one reply
// (before the server's read timeout) and the session goes on reading
// commands. Texts that already contain an end of data are skipped: the
// rest of them would be commands.
func FuzzDataEnd(f *testing.F) {
	e := newEnv(f, 1<<20, 10)
	for _, tc := range dataEndCases {
		f.Add(strings.TrimSuffix(tc.data, "\r\n.\r\n"))
	}
	f.Add("x\r\r\r\n..\r\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		data := text + "\r\n.\r\n"
		if i := strings.Index("\r\n"+data, "\r\n.\r\n"); i < len(text)+2 {
			t.Skip("ends early")
		}
		got := dataReply(t, e.mx, []string{"EHLO x", "MAIL FROM:<someone@legacy.example>", "RCPT TO:<alice@example.org>"}, data)
		if got[0] != '2' && got[0] != '4' && got[0] != '5' {
			t.Fatalf("reply %q", got)
		}
	})
}
