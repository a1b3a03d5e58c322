package outbox

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"tollbridge/intake"
	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/store"
	"tollbridge/ticketclient"
	"tollbridge/translate"
)

// joinPlaintext rebuilds messages with package translate, as cmd/bridge
// wires it.
type joinPlaintext struct{}

func (joinPlaintext) Render(w io.Writer, catalog []byte, part func(string) (io.ReadCloser, error)) error {
	c, err := translate.ParseCatalog(catalog)
	if err != nil {
		return err
	}
	return translate.Join(w, c, partOpener(part))
}

func (joinPlaintext) Headers(catalog []byte) ([]byte, error) {
	c, err := translate.ParseCatalog(catalog)
	if err != nil {
		return nil, err
	}
	return c.MIME.Header.Bytes, nil
}

type partOpener func(string) (io.ReadCloser, error)

func (f partOpener) OpenPart(id string) (io.ReadCloser, error) { return f(id) }

// sink is an SMTP server that catches whatever is relayed to it.
type sink struct {
	mu  sync.Mutex
	got []string // recipients of relayed messages
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s    *sink
	rcpt []string
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.rcpt = append(ss.rcpt, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, ss.rcpt...)
	ss.s.mu.Unlock()
	return nil
}
func (ss *sinkSession) Reset()        { ss.rcpt = nil }
func (ss *sinkSession) Logout() error { return nil }

func (s *sink) relayed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// TestNoSilentDowngrade: discovery answers NXDOMAIN for every domain. A
// domain that took ticketed mail before, and one whose users' keys are
// pinned, keep their mail queued as a temporary failure; only a domain
// never seen ticketed is relayed to the (real) smarthost.
func TestNoSilentDowngrade(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st := teststore.OpenDir(t, dir, store.Options{})
	outboxKey, err := keyring.LoadOrCreateServiceKey(filepath.Join(dir, "outbox.key"), "outbox@mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	_, alice, err := keyring.Generate("alice@example.org", []byte("pw"), teststore.Cheap)
	if err != nil {
		t.Fatal(err)
	}

	sk := &sink{}
	srv := smtp.NewServer(sk)
	srv.Domain = "relay.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)

	nxdomain := func(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
		return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	tc, err := ticketclient.New(nil, pow.NewRegistry(pow.HashWork{}), ticketclient.Options{LookupSRV: nxdomain})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	o := New(Options{Hostname: "mail.example.org", Domains: []string{"example.org"}, Workers: 4, RetryFor: time.Hour,
		FirstRetry: time.Hour, Smarthost: Smarthost{Addr: ln.Addr().String(), TLS: "none"}, Store: st, OutboxKey: outboxKey, Tickets: tc, Plaintext: joinPlaintext{}, Logger: log})

	// What the store knows from before.
	if err := st.RecordTicketedDelivery(ctx, "ticketed.example", "https://mail.ticketed.example:8443"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PinKey(ctx, "carol@pinned.example", "fp", []byte("key")); err != nil {
		t.Fatal(err)
	}

	msg := "From: alice@example.org\r\nTo: bob@ticketed.example\r\nSubject: secret\r\n\r\nnot for plaintext SMTP\r\n"
	sd, err := (&intake.Sealer{Store: st}).Seal(strings.NewReader(msg), int64(len(msg)), "alice@example.org", alice, intake.Options{StripBcc: true})
	if err != nil {
		t.Fatal(err)
	}
	pkesk, err := sd.Key.Wrap(outboxKey)
	if err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"bob@ticketed.example", "carol@pinned.example", "dan@legacy.example"}
	if err := st.EnqueueOutbox(ctx, &store.OutboxMessage{Sender: "alice@example.org", SessionKey: pkesk, Parts: sd.Parts,
		Size: sd.Size, Blobs: sd.Blobs}, rcpts); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close(); st.Close() })

	// Wait until the legacy one is relayed and the others were tried once.
	var q []*store.QueueEntry
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatalf("timed out; queue %+v, relayed %v", q, sk.relayed())
		}
		q, err = st.Queue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tried := 0
		for _, e := range q {
			if e.Tries >= 1 && e.LastError != "" {
				tried++
			}
		}
		if n := len(sk.relayed()); n > 1 {
			t.Fatalf("relayed in the clear: %v", sk.relayed())
		}
		if len(q) == 2 && tried == 2 && len(sk.relayed()) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := sk.relayed(); got[0] != "dan@legacy.example" {
		t.Errorf("relayed to %v", got)
	}
	for _, e := range q {
		if e.Recipient != "bob@ticketed.example" && e.Recipient != "carol@pinned.example" {
			t.Errorf("%s left in the queue", e.Recipient)
		}
		if e.Route == "legacy" || !strings.Contains(e.LastError, "not relaying in the clear") || !strings.HasPrefix(e.LastError, "4.") {
			t.Errorf("%s: route %q, last error %q", e.Recipient, e.Route, e.LastError)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "not relaying in the clear") {
		t.Errorf("the reason is not logged:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
