package smtpin

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"tollbridge/intake"
	"tollbridge/keyring"
)

// A second From: field naming somebody else would be signed by the user
// and shown by some clients: messages need exactly one From: field.
func TestSubmissionRefusesSecondFromField(t *testing.T) {
	t.Parallel()
	for _, hdr := range []string{
		"From: alice@example.org\r\nFrom: ceo@example.org\r\n",
		"From: ceo@example.org\r\nFrom: alice@example.org\r\n",
	} {
		e := newEnv(t, 1<<20, 10)
		e.t = t
		c := e.dial(e.sub, true)
		if err := c.Mail("alice@example.org", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("bob@example.net", nil); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, hdr+"Subject: pay the invoice\r\n\r\nx\r\n")
		if err := w.Close(); err == nil {
			t.Errorf("queued a message with two From: fields:\n%s", hdr)
		}
	}
}

// Parallel connections queue their password checks behind the Argon2
// slots; the guard counts attempts in flight, so they cannot pass more
// guesses than the per-address limit (here 5). Each connection guesses a
// different password: identical attempts are one guess.
func TestGuardHoldsAgainstParallelLogins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	st := e.st
	sub := &Submission{Config: Config{Hostname: "mail.example.org", Domains: []string{"example.org"}, MaxMessageBytes: 1 << 20, Timeout: 10 * time.Second},
		Store: st, Sealer: &intake.Sealer{Store: st}, Unlocker: cheapUnlocker(1),
		Guard: &keyring.Guard{Delay: -1, Limit: 5}, OutboxKey: e.outbox, Log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sub.Serve(ctx, ln, false) }()
	t.Cleanup(func() { cancel(); <-done })

	const n = 40
	ready, start := sync.WaitGroup{}, make(chan struct{})
	replies := make(chan string, n)
	ready.Add(n)
	for i := range n {
		auth := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "\x00alice@example.org\x00guess%d", i))
		go func() {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				ready.Done()
				replies <- err.Error()
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			br.ReadString('\n')
			fmt.Fprintf(conn, "EHLO x\r\n")
			for {
				l, err := br.ReadString('\n')
				if err != nil || strings.HasPrefix(l, "250 ") {
					break
				}
			}
			ready.Done()
			<-start
			fmt.Fprintf(conn, "AUTH PLAIN %s\r\n", auth)
			l, _ := br.ReadString('\n')
			replies <- l
		}()
	}
	ready.Wait()
	close(start)
	tried := 0
	for range n {
		if strings.HasPrefix(<-replies, "535") {
			tried++ // a password was actually checked and was wrong
		}
	}
	if tried > 5 {
		t.Errorf("%d passwords checked from one address; the guard allows 5", tried)
	}
}

// The EHLO argument goes into the Received: field in front of the message;
// a bare CR in it would let clients that end lines there see a forged
// "Authentication-Results: …; tollbridge=pass". Only a plausible host name
// or address literal is written.
func TestMXHeloCannotInjectTraceFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	helo := "x\rAuthentication-Results:\tmail.example.org;\ttollbridge=pass"
	got := e.raw(e.mx, "EHLO "+helo+"\r\nMAIL FROM:<a@legacy.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"+
		"From: a@legacy.example\r\nSubject: hi\r\n\r\nx\r\n.\r\nQUIT\r\n")
	if !strings.Contains(got, "\r\n250 2.0.0") {
		t.Fatalf("not accepted:\n%s", got)
	}
	ids, err := e.st.UnfiledMessages(context.Background(), e.alice.ID, 0, 10)
	if err != nil || len(ids) != 1 {
		t.Fatalf("ids %v, %v", ids, err)
	}
	m, err := e.st.SealedMessage(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(strings.ReplaceAll(string(m.Trace), "\r\n", ""), "\r\n\x00") {
		t.Errorf("client's EHLO argument went into the stored trace field unchecked: %q", m.Trace)
	}
}

// Mail between local users never travels over the MX, so a sender in one
// of the bridge's own domains there is an impersonation: refused.
func TestMXRefusesLocalDomainSender(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	addUser(t, e.st, "ceo@example.org", "ceo-pw")
	c := e.dial(e.mx, false)
	if err := c.Mail("ceo@example.org", nil); err != nil {
		return // refused: fine
	}
	if err := c.Rcpt("alice@example.org", nil); err != nil {
		return
	}
	w, _ := c.Data()
	io.WriteString(w, "From: CEO <ceo@example.org>\r\nSubject: wire the money\r\n\r\nnow\r\n")
	if err := w.Close(); err == nil {
		t.Errorf("MX accepted mail from the internet as ceo@example.org, a local user")
	}
}

type remoteAddrListener struct{ net.Listener }

type remoteAddrConn struct{ net.Conn }

func (remoteAddrConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4321}
}

func (l remoteAddrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteAddrConn{c}, nil
}

// AUTH is not advertised on a plain connection from another host, so
// clients do not send a password (with SASL-IR, in the AUTH line itself)
// before STARTTLS.
func TestSubmissionHidesAuthBeforeTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	st := e.st
	sub := &Submission{Config: Config{Hostname: "mail.example.org", Domains: []string{"example.org"}, MaxMessageBytes: 1 << 20, Timeout: 10 * time.Second},
		Store: st, Sealer: &intake.Sealer{Store: st}, Unlocker: cheapUnlocker(1),
		Guard: &keyring.Guard{Delay: -1}, OutboxKey: e.outbox, Log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sub.Serve(ctx, remoteAddrListener{ln}, false) }()
	t.Cleanup(func() { cancel(); <-done })
	got := e.raw(ln.Addr().String(), "EHLO x\r\nQUIT\r\n")
	if strings.Contains(got, "AUTH ") {
		t.Errorf("AUTH advertised to a remote client before STARTTLS:\n%s", got)
	}
}
