package imapout

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// corkConn makes the real network writes later than go-imap's, so it sets
// their deadlines itself: a client that pipelines commands and never reads
// must not block a session (even before LOGIN) or Server.Close forever.
func TestCorkedWriteToAClientThatDoesNotRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { c.Close() })
	// Pipeline commands without reading until a write cannot complete:
	// then the server's answers fill the socket both ways and its writes
	// block, which is the state Close must cope with.
	cmds := []byte(strings.Repeat("a CAPABILITY\r\n", 4096))
	for deadline := time.Now().Add(30 * time.Second); ; {
		c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Write(cmds)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the server kept reading for 30 s from a client that never reads")
		}
	}

	closed := make(chan struct{})
	go func() {
		e.srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Errorf("Server.Close still blocked after 5 s by a client that does not read (not even logged in)")
		c.Close() // let the write fail so the test can end
		<-closed
	}
}
