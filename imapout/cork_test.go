package imapout

import (
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
	go func() {
		cmds := strings.Repeat("a CAPABILITY\r\n", 4096)
		for {
			if _, err := c.Write([]byte(cmds)); err != nil {
				return
			}
		}
	}()
	time.Sleep(2 * time.Second) // the server's writes now block: nobody reads

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
