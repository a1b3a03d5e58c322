package imapout

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// panicWatch records log lines that tell of a recovered panic.
type panicWatch struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicWatch) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("panic")) {
		p.mu.Lock()
		p.panics = append(p.panics, string(b))
		p.mu.Unlock()
	}
	return len(b), nil
}

func (p *panicWatch) check(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.panics) > 0 {
		t.Fatalf("server panicked: %s", p.panics[0])
	}
}

// FuzzSession sends arbitrary bytes as commands to a live server, after
// LOGIN (and SELECT, unless the input starts with byte 1), and checks
// that the server neither panics nor hangs: once the client stops
// writing, the session must end within the deadline, and the server must
// still answer a new session.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"A1 FETCH 1:* (FLAGS BODY.PEEK[] BODYSTRUCTURE ENVELOPE RFC822.SIZE)\r\n",
		"A1 UID FETCH 1:* (BODY.PEEK[1.2.MIME]<0.10> BINARY[1] BINARY.SIZE[2] BODY[HEADER.FIELDS (From)])\r\n",
		"A2 SEARCH OR BODY hello TEXT x NOT (LARGER 10 SINCE 1-Jan-2020) UID 1:*\r\n",
		"A3 STORE 1 +FLAGS (\\Deleted kw)\r\nA4 EXPUNGE\r\n",
		"\x01A5 APPEND INBOX (\\Seen) {22+}\r\nSubject: x\r\n\r\nbody\r\n\r\n",
		"A6 IDLE\r\nDONE\r\nA7 NOOP\r\n",
		"A7 UID MOVE 1:2 Archive\r\nA8 COPY 1 Trash\r\n",
		"\x01A8 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" * RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
		"\x01A9 CREATE a/b/c\r\nB1 RENAME a x/y\r\nB2 DELETE x/y/b/c\r\n",
		"B3 SEARCH RETURN (SAVE MIN) ALL\r\nB4 FETCH $ (UID)\r\n",
		"B5 APPEND INBOX {1000}\r\nshort",
		"B6 FETCH 99 FLAGS\r\nB7 FETCH 1:* (BODY[99.1])\r\n",
	} {
		f.Add([]byte(seed))
	}
	watch := &panicWatch{}
	e := newEnvLogging(f, watch)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 3)
	var mu sync.Mutex // one input at a time keeps state changes readable
	f.Fuzz(func(t *testing.T, input []byte) {
		mu.Lock()
		defer mu.Unlock()
		e.t = t
		refill(e, bob)
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		io.WriteString(c, "L LOGIN bob@example.net secret-bob@example.net\r\n")
		if len(input) > 0 && input[0] == 1 {
			input = input[1:]
		} else {
			io.WriteString(c, "S SELECT INBOX\r\n")
		}
		c.Write(input)
		c.(*net.TCPConn).CloseWrite()
		// The session must end by itself once the input is over.
		if _, err := io.Copy(io.Discard, br); err != nil {
			t.Fatalf("session did not end: %v", err)
		}
		watch.check(t)
		alive(t, e)
	})
}

// refill keeps a few messages in INBOX whatever earlier inputs did.
func refill(e *env, u interface{}) {
	bob, _ := e.st.UserByAddress(context.Background(), "bob@example.net")
	box, err := e.st.MailboxByName(context.Background(), bob.ID, "INBOX")
	if err != nil {
		return
	}
	if c, err := e.st.MailboxCounts(context.Background(), box.ID); err == nil && c.Messages < 3 {
		e.fill(bob, 3)
	}
}

// alive checks that a new session still gets answers.
func alive(t *testing.T, e *env) {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "a NOOP\r\nb LOGOUT\r\n")
	all, _ := io.ReadAll(br)
	if !strings.Contains(string(all), "a OK") {
		t.Fatalf("server does not answer: %q", all)
	}
}
