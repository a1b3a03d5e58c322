package conformance_test

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// relay is a legacy SMTP server standing in for a smarthost; it keeps the
// DATA of every message.
type relay struct {
	addr string
	got  chan []byte
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{got: make(chan []byte, 16)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "relay.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// await returns the next relayed message.
func (r *relay) await(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-r.got:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("nothing relayed in 20 s")
		return nil
	}
}

type relaySession struct{ r *relay }

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *relaySession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	s.r.got <- b.Bytes()
	return nil
}
func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }

// dkimField is one DKIM-Signature field, folded lines included.
var dkimField = regexp.MustCompile(`^(?i:DKIM-Signature):[^\r\n]*\r\n([ \t][^\r\n]*\r\n)*`)

// splitDKIM removes the DKIM-Signature fields a sending bridge puts in
// front of legacy mail (§4) and returns the rest and the fields.
func splitDKIM(b []byte) ([]byte, []string) {
	var sigs []string
	for loc := dkimField.FindIndex(b); loc != nil; loc = dkimField.FindIndex(b) {
		sigs = append(sigs, string(b[:loc[1]]))
		b = b[loc[1]:]
	}
	return b, sigs
}
