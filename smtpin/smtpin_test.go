package smtpin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/intake"
	"tollbridge/internal/dnstest"
	"tollbridge/internal/testkit"
	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/seal"
	"tollbridge/store"
)

// env is a store with alice@example.org and the submission and MX
// listeners on loopback.
type env struct {
	t        *testing.T
	st       *store.Store
	sub, mx  string
	alice    *store.User
	outbox   *openpgp.Entity
	notified chan struct{}
	logs     *logBuffer
	// dns answers the MX's SPF, DKIM and DMARC lookups: NXDOMAIN for
	// every name a test has not set.
	dns *dnstest.Server
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newEnv(t testing.TB, maxBytes int64, maxRcpt int) *env {
	dir := t.TempDir()
	st := teststore.OpenDir(t, dir, store.Options{})
	e := &env{st: st, notified: make(chan struct{}, 100), logs: &logBuffer{}, dns: dnstest.New(t)}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	e.alice = addUser(t, st, "alice@example.org", "alice-pw")
	e.outbox, _ = keyring.LoadOrCreateServiceKey(filepath.Join(dir, "outbox.key"), "outbox@mail.example.org")
	cfg := Config{Hostname: "mail.example.org", Domains: []string{"example.org"}, MaxMessageBytes: maxBytes,
		MaxRecipients: maxRcpt, Timeout: 10 * time.Second, TLS: testkit.NewCertificate(t, "localhost").ServerConfig()}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	sealer := &intake.Sealer{Store: st}
	sub := &Submission{Config: cfg, Store: st, Sealer: sealer, Unlocker: cheapUnlocker(2),
		Guard: &keyring.Guard{Delay: -1, Limit: 5}, OutboxKey: e.outbox, Log: log,
		Notify: func() { e.notified <- struct{}{} }}
	mx := &MX{Config: cfg, Store: st, Sealer: sealer, Log: log, Resolver: e.dns.Resolver()}
	ln1, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	e.sub, e.mx = ln1.Addr().String(), ln2.Addr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sub.Serve(ctx, ln1, false) }()
	go func() { defer wg.Done(); mx.Serve(ctx, ln2) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if strings.Contains(e.logs.String(), "panic") {
			t.Errorf("server panicked:\n%s", e.logs.String())
		}
	})
	return e
}

// cheapUnlocker is an Unlocker whose decoy for unknown users is protected
// as teststore.Cheap protects test users' keys, so an unknown user costs
// what a real one does here too; that the decoy costs what production
// keys cost is keyring's test (TestUnlockerUnknownUserCostsOneDerivation),
// not each login test's.
func cheapUnlocker(concurrent int) *keyring.Unlocker {
	u := keyring.NewUnlocker(concurrent)
	u.Protection = teststore.Cheap
	return u
}

func addUser(t testing.TB, st *store.Store, addr, pw string) *store.User {
	u, _ := teststore.AddUser(t, st, addr, pw)
	return u
}

// dial opens a client session; auth logs in as alice when set.
func (e *env) dial(addr string, auth bool) *smtp.Client {
	e.t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		e.t.Fatal(err)
	}
	if auth {
		if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "alice-pw")); err != nil {
			e.t.Fatal(err)
		}
	}
	return c
}

// code returns the SMTP reply code and enhanced code of err.
func code(err error) (int, string) {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return 0, ""
	}
	ec := se.EnhancedCode
	return se.Code, fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
}

func (e *env) expectCode(err error, wantCode int, wantEnh string) {
	e.t.Helper()
	c, enh := code(err)
	if c != wantCode || enh != wantEnh {
		e.t.Fatalf("got %v (code %d %s), want %d %s", err, c, enh, wantCode, wantEnh)
	}
}

const aliceMsg = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nBcc: secret@example.net\r\nSubject: hi\r\n\r\nthe body text that must not be stored in the clear\r\n"

func TestSubmissionRefusesOpenRelayAndImpersonation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 3)
	e.t = t
	c := e.dial(e.sub, false)
	e.expectCode(c.Mail("alice@example.org", nil), 530, "5.7.0")
	e.expectCode(c.Auth(sasl.NewPlainClient("", "alice@example.org", "wrong")), 535, "5.7.8")
	e.expectCode(c.Auth(sasl.NewPlainClient("", "nobody@example.org", "x")), 535, "5.7.8")

	c = e.dial(e.sub, true)
	e.expectCode(c.Mail("bob@example.net", nil), 553, "5.7.1")
	if err := c.Mail("Alice@Example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.net", nil); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write([]byte("From: bob@example.net\r\nSubject: forged\r\n\r\nx\r\n"))
	e.expectCode(w.Close(), 550, "5.7.1")
}

func TestSubmissionLimitsAndSyntax(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4096, 2)
	e.t = t
	c := e.dial(e.sub, true)
	if ok, v := c.Extension("SIZE"); !ok || v != "4096" {
		t.Errorf("SIZE = %v %q", ok, v)
	}
	e.expectCode(c.Mail("alice@example.org", &smtp.MailOptions{Size: 5000}), 552, "5.3.4")
	if err := c.Mail("alice@example.org", nil); err != nil {
		t.Fatal(err)
	}
	e.expectCode(c.Rcpt("not an address", nil), 501, "5.5.2")
	e.expectCode(c.Rcpt("x@-bad-.example", nil), 501, "5.1.3")
	e.expectCode(c.Rcpt("nobody@example.org", nil), 550, "5.1.1")
	e.expectCode(c.Rcpt("receipts@example.org", nil), 550, "5.1.1")
	c.Rcpt("a@example.net", nil)
	c.Rcpt("b@example.net", nil)
	e.expectCode(c.Rcpt("c@example.net", nil), 452, "4.5.3")
	w, _ := c.Data()
	w.Write([]byte("From: alice@example.org\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n"))
	e.expectCode(w.Close(), 552, "5.3.4")

	// go-smtp's client turns bare LF into CRLF, so speak raw SMTP.
	auth := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00alice-pw"))
	got := e.raw(e.sub, "EHLO x\r\nAUTH PLAIN "+auth+"\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n"+
		"From: alice@example.org\r\n\r\nbare\nline feed\r\n.\r\nQUIT\r\n")
	if !strings.Contains(got, "\r\n554 5.6.0 ") {
		t.Fatalf("bare LF accepted:\n%s", got)
	}
}

// raw writes input on a fresh connection and returns all the server says
// until it closes the connection or, once it has started talking, goes
// quiet for two seconds.
func (e *env) raw(addr, input string) string {
	out, err := rawSession(addr, input, 2*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func rawSession(addr, input string, quiet time.Duration) (string, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	go conn.Write([]byte(input))
	var out bytes.Buffer
	buf := make([]byte, 4096)
	// The greeting may be slow on a loaded machine; only silence after
	// the server has started talking ends the session.
	wait := max(quiet, 10*time.Second)
	for {
		conn.SetReadDeadline(time.Now().Add(wait))
		wait = quiet
		n, err := conn.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String(), nil
		}
	}
}

func TestSubmissionQueuesSealed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	c := e.dial(e.sub, false)
	// AUTH LOGIN, as older clients use it, on loopback without TLS.
	if err := c.Auth(sasl.NewLoginClient("alice@example.org", "alice-pw")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@example.org", []string{"bob@example.net", "Bob@example.net", "secret@example.net"}, strings.NewReader(aliceMsg)); err != nil {
		t.Fatal(err)
	}
	<-e.notified
	q, err := e.st.Queue(context.Background())
	if err != nil || len(q) != 2 {
		t.Fatalf("queue = %d entries, %v; want bob and secret once each", len(q), err)
	}
	m, err := e.st.OutboxMessage(context.Background(), q[0].OutboxID)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing in the data dir holds the body in the clear.
	filepath.Walk(e.st.Dir(), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte("must not be stored in the clear")) {
				t.Errorf("plaintext found in %s", p)
			}
		}
		return nil
	})
	// The session key opens with the outbox key.
	if _, err := seal.Unwrap(m.SessionKey, e.outbox); err != nil {
		t.Fatalf("outbox key cannot open the message: %v", err)
	}
	// Replies from the recipients need no work.
	if a, _ := e.st.TrustedAddress(context.Background(), e.alice.ID, keyring.HashNormalized("bob@example.net")); a != "bob@example.net" {
		t.Error("recipient not noted as a correspondent")
	}
}

func TestSubmissionThrottlesGuessing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	for i := 0; i < 5; i++ {
		c := e.dial(e.sub, false)
		e.expectCode(c.Auth(sasl.NewPlainClient("", "alice@example.org", "guess")), 535, "5.7.8")
	}
	c := e.dial(e.sub, false)
	e.expectCode(c.Auth(sasl.NewPlainClient("", "alice@example.org", "alice-pw")), 454, "4.7.0")
}

func TestSTARTTLSThenAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	c, err := smtp.DialStartTLS(e.sub, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "alice-pw")); err != nil {
		t.Fatal(err)
	}
}

func TestMX(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	c := e.dial(e.mx, false)
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("MX offers AUTH")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("MX does not offer STARTTLS")
	}
	if err := c.Mail("someone@legacy.example", nil); err != nil {
		t.Fatal(err)
	}
	e.expectCode(c.Rcpt("victim@elsewhere.example", nil), 554, "5.7.1")
	e.expectCode(c.Rcpt("nobody@example.org", nil), 550, "5.1.1")
	if err := c.Rcpt("alice@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write([]byte("From: someone@legacy.example\r\nSubject: legacy\r\n\r\nhello\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.st.UnfiledCount(context.Background(), e.alice.ID); n != 1 {
		t.Fatalf("alice has %d messages", n)
	}
	// Nobody may relay through the MX, even with a null sender.
	c = e.dial(e.mx, false)
	c.Mail("", nil)
	e.expectCode(c.Rcpt("victim@elsewhere.example", nil), 554, "5.7.1")
}

// FuzzSubmission sends arbitrary input to a live submission listener after
// EHLO and AUTH: the server must answer in SMTP's terms and never panic.
func FuzzSubmission(f *testing.F) {
	e := newEnv(f, 64<<10, 5)
	auth := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00alice-pw"))
	prefix := "EHLO fuzz\r\nAUTH PLAIN " + auth + "\r\n"
	f.Add("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\nFrom: alice@example.org\r\n\r\nhi\r\n.\r\n")
	f.Add("MAIL FROM:<alice@example.org> SIZE=99999999999999999999\r\n")
	f.Add("RCPT TO:<>\r\nDATA\r\n.\r\n")
	f.Add("MAIL FROM:<alice@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nContent-Type: multipart/mixed; boundary=x\r\nFrom: alice@example.org\r\n\r\n--x\r\n\r\n.\r\n")
	f.Add("AUTH LOGIN\r\n*\r\nBDAT 10 LAST\r\n")
	for _, tc := range dataEndCases {
		f.Add("MAIL FROM:<alice@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nFrom: alice@example.org\r\n\r\n" + tc.data)
	}
	f.Fuzz(func(t *testing.T, input string) {
		out, err := rawSession(e.sub, prefix+input+"\r\nQUIT\r\n", 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, "220 ") {
			t.Fatalf("no greeting: %q", out)
		}
		if strings.Contains(e.logs.String(), "panic") {
			t.Fatalf("server panicked on %q:\n%s", input, e.logs.String())
		}
	})
}
