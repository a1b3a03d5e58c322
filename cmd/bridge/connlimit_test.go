package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitConns(ln, 2, 10, "421 4.7.0 Too many connections\r\n")
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	a := <-accepted
	<-accepted
	third := dial()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(third).ReadString('\n')
	if !strings.HasPrefix(line, "421 ") {
		t.Fatalf("third connection from one client got %q", line)
	}
	// A closed connection frees its slot.
	a.Close()
	dial()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("slot not given back")
	}
}
