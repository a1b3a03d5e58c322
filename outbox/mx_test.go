package outbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"tollbridge/intake"
	"tollbridge/internal/dnstest"
	"tollbridge/internal/testkit"
	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/store"
	"tollbridge/ticketclient"
)

// mxSink is a legacy MX: it keeps each message it gets and whether it
// came over TLS.
type mxSink struct {
	mu     sync.Mutex
	msgs   []mxMessage
	hellos []string // the name of each EHLO that opened a session
	conns  int
}

type mxMessage struct {
	raw []byte
	tls bool
}

func (s *mxSink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.hellos = append(s.hellos, c.Hostname())
	s.mu.Unlock()
	return &mxSession{s: s, c: c}, nil
}

// countingListener counts the connections the MX accepts.
type countingListener struct {
	net.Listener
	s *mxSink
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns++
		l.s.mu.Unlock()
	}
	return c, err
}

func (s *mxSink) received() []mxMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mxMessage(nil), s.msgs...)
}

type mxSession struct {
	s *mxSink
	c *smtp.Conn
}

func (ss *mxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *mxSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *mxSession) Reset()                               {}
func (ss *mxSession) Logout() error                        { return nil }
func (ss *mxSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, mxMessage{raw: raw, tls: isTLS})
	ss.s.mu.Unlock()
	return nil
}

// startMX runs a go-smtp server on loopback, offering STARTTLS with cert
// when cert is not nil.
func startMX(t *testing.T, cert *tls.Certificate) (*mxSink, int) {
	t.Helper()
	sk := &mxSink{}
	srv := smtp.NewServer(sk)
	srv.Domain = "mx.legacy.example"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(countingListener{Listener: ln, s: sk})
	t.Cleanup(func() { srv.Close() })
	return sk, ln.Addr().(*net.TCPAddr).Port
}

// testDKIMKeys are an Ed25519 and an RSA-2048 key, as cmd/bridge makes.
func testDKIMKeys(t testing.TB) []DKIMKey {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := testRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	return []DKIMKey{{Selector: "tb-ed", Signer: ed}, {Selector: "tb-rsa", Signer: rk}}
}

// testRSAKey is one RSA-2048 key for the package's tests: generating one
// takes a good part of a second, and signing does not change it.
var testRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// publishDKIM serves each key's record, as `bridge dns` prints it.
func publishDKIM(t *testing.T, zone *dnstest.Server, domain string, keys []DKIMKey) {
	t.Helper()
	for _, k := range keys {
		rec, err := k.Record()
		if err != nil {
			t.Fatal(err)
		}
		zone.SetTXT(k.Selector+"._domainkey."+domain, rec)
	}
}

// runDirectMX queues raw from alice@example.org to rcpt and runs an
// outbox that delivers it directly to the MX that zone names.
func runDirectMX(t *testing.T, zone *dnstest.Server, mxPort int, keys []DKIMKey, raw, rcpt string) *store.Store {
	t.Helper()
	return runOutbox(t, zone, Options{Resolver: zone.Resolver(), MXPort: mxPort, DKIM: map[string][]DKIMKey{"example.org": keys}}, raw, rcpt)
}

// runOutbox queues raw from alice@example.org to rcpt and runs an outbox
// for example.org with cfg, its ticket discovery asking zone.
func runOutbox(t *testing.T, zone *dnstest.Server, cfg Options, raw, rcpt string) *store.Store {
	t.Helper()
	ctx := t.Context()
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
	sd, err := (&intake.Sealer{Store: st}).Seal(strings.NewReader(raw), int64(len(raw)), "alice@example.org", alice, intake.Options{StripBcc: true})
	if err != nil {
		t.Fatal(err)
	}
	pkesk, err := sd.Key.Wrap(outboxKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueOutbox(ctx, &store.OutboxMessage{Sender: "alice@example.org", SessionKey: pkesk, Parts: sd.Parts,
		Size: sd.Size, Blobs: sd.Blobs}, []string{rcpt}); err != nil {
		t.Fatal(err)
	}
	tc, err := ticketclient.New(nil, nil, ticketclient.Options{LookupSRV: zone.Resolver().LookupSRV})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hostname, cfg.Domains, cfg.RetryFor, cfg.FirstRetry = "mail.example.org", []string{"example.org"}, time.Hour, time.Hour
	cfg.Store, cfg.OutboxKey, cfg.Tickets, cfg.Plaintext = st, outboxKey, tc, joinPlaintext{}
	o := New(cfg)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); o.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return st
}

// waitRelayed waits for the MX to get one message, failing early with
// the queue's last error when the first try fails.
func waitRelayed(t *testing.T, st *store.Store, sk *mxSink) mxMessage {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got := sk.received(); len(got) > 0 {
			return got[0]
		}
		q, err := st.Queue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == 1 && q[0].Tries > 0 && q[0].LastError != "" {
			t.Fatalf("first try failed: %s", q[0].LastError)
		}
	}
	t.Fatal("nothing relayed in 30 s")
	return mxMessage{}
}

// verifyDKIM checks every signature of raw against the keys zone serves.
func verifyDKIM(t *testing.T, zone *dnstest.Server, raw []byte) []*dkim.Verification {
	t.Helper()
	r := zone.Resolver()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return r.LookupTXT(context.Background(), name) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestDirectMXDelivery relays to an MX found in DNS (MX record, then
// A record) without a smarthost: with STARTTLS, with STARTTLS and a
// certificate no one could verify, and without STARTTLS, where the
// bridge used to say EHLO twice ("Hello called after other methods") and
// so never delivered. The message carries an Ed25519 and an RSA DKIM
// signature that verify against the records in DNS.
func TestDirectMXDelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
	}{
		{"starttls", &testkit.NewCertificate(t, "mx.legacy.example").Certificate},
		{"broken-cert", &testkit.NewCertificate(t, "wrong.invalid").Certificate},
		{"plaintext", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sk, port := startMX(t, tc.cert)
			zone := dnstest.New(t)
			zone.SetMX("legacy.example", dnstest.MX{Pref: 10, Host: "mx.legacy.example"})
			zone.SetAddr("mx.legacy.example", "127.0.0.1")
			keys := testDKIMKeys(t)
			publishDKIM(t, zone, "example.org", keys)
			raw := "From: Alice <alice@example.org>\r\nTo: bob@legacy.example\r\nSubject: hello\r\n" +
				"Date: Sun, 06 Dec 2026 18:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nhi Bob\r\n"
			st := runDirectMX(t, zone, port, keys, raw, "bob@legacy.example")
			got := waitRelayed(t, st, sk)
			if got.tls != (tc.cert != nil) {
				t.Errorf("over TLS: %v, want %v", got.tls, tc.cert != nil)
			}
			sk.mu.Lock()
			hellos, conns := strings.Join(sk.hellos, " "), sk.conns
			sk.mu.Unlock()
			want := "mail.example.org"
			if tc.cert != nil {
				want = "mail.example.org mail.example.org" // before and after STARTTLS
			}
			if hellos != want || conns != 1 {
				t.Errorf("EHLO %q on %d connection(s), want %q on one", hellos, conns, want)
			}
			if zone.Queries("legacy.example") == 0 || zone.Queries("mx.legacy.example") == 0 {
				t.Errorf("MX or A not asked of the [dns] resolver")
			}
			checkSigned(t, zone, got.raw)
		})
	}
}

// checkSigned checks that raw has an Ed25519 and an RSA signature by
// example.org, both valid, and that both break when a Subject: is added.
func checkSigned(t *testing.T, zone *dnstest.Server, raw []byte) {
	t.Helper()
	for _, algo := range []string{"a=ed25519-sha256;", "a=rsa-sha256;"} {
		if !bytes.Contains(raw, []byte(algo)) {
			t.Errorf("no signature with %s:\n%s", algo, raw)
		}
	}
	vs := verifyDKIM(t, zone, raw)
	if len(vs) != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", len(vs), raw)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Errorf("signature by %s: %v", v.Domain, v.Err)
		}
	}
	forged := append([]byte("Subject: urgent: new bank details\r\n"), raw...)
	for _, v := range verifyDKIM(t, zone, forged) {
		if v.Err == nil {
			t.Errorf("signature still valid with a Subject: added: not over-signed")
		}
	}
}

// Mail whose From: is not a local domain is not signed: the bridge holds
// no key for it and a signature by another domain would not align.
func TestDKIMOnlyForLocalFrom(t *testing.T) {
	t.Parallel()
	sk, port := startMX(t, nil)
	zone := dnstest.New(t)
	zone.SetMX("legacy.example", dnstest.MX{Pref: 10, Host: "mx.legacy.example"})
	zone.SetAddr("mx.legacy.example", "127.0.0.1")
	raw := "From: alice@elsewhere.example\r\nTo: bob@legacy.example\r\nSubject: hello\r\n\r\nhi\r\n"
	st := runDirectMX(t, zone, port, testDKIMKeys(t), raw, "bob@legacy.example")
	got := waitRelayed(t, st, sk)
	if bytes.Contains(got.raw, []byte("DKIM-Signature")) {
		t.Errorf("signed:\n%s", got.raw)
	}
}

// TestRelayTargetsRealResolver is TestRelayTargetsFromDNS through a real
// resolver and DNS server: the *net.DNSError flags the outbox relies on
// (not found vs temporary) are the ones Go's resolver really sets.
func TestRelayTargetsRealResolver(t *testing.T) {
	t.Parallel()
	zone := dnstest.New(t)
	zone.SetMX("mx.example", dnstest.MX{Pref: 20, Host: "mx2.mx.example"}, dnstest.MX{Pref: 10, Host: "mx1.mx.example"})
	zone.SetMX("nullmx.example", dnstest.MX{Pref: 0, Host: "."})
	zone.SetAddr("bare.example", "192.0.2.25")          // no MX: NODATA, then its address
	zone.SetTXT("noaddr.example", "v=spf1 -all")        // exists, but no MX and no address
	zone.SetFailure("broken.example", dnstest.ServFail) // SERVFAIL for the MX
	zone.SetFailure("slow.example", dnstest.Timeout)
	o := New(Options{Resolver: zone.Resolver()})
	for _, tc := range []struct{ domain, want string }{
		{"mx.example", "mx1.mx.example:25 mx2.mx.example:25"},
		{"bare.example", "192.0.2.25:25"},
		{"gone.example", "5.1.2 permanent"},
		{"noaddr.example", "5.1.2 permanent"},
		{"nullmx.example", "5.1.10 permanent"},
		{"broken.example", "4.4.0 temporary"},
		{"slow.example", "4.4.0 temporary"},
	} {
		if g := describeTargets(o.relayTargets(t.Context(), "someone@"+tc.domain)); g != tc.want {
			t.Errorf("%s: %s, want %s", tc.domain, g, tc.want)
		}
	}
}

// waitFailed waits for the first try to fail and returns its error.
func waitFailed(t *testing.T, st *store.Store) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		q, err := st.Queue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == 1 && q[0].Tries > 0 && q[0].LastError != "" {
			return q[0].LastError
		}
	}
	t.Fatal("no failed try in 30 s")
	return ""
}

// An MX that offers STARTTLS and then fails the handshake gets no
// plaintext: the try fails (temporary), as a stripped or broken STARTTLS
// must not silently downgrade.
func TestDirectMXNoFallbackAfterSTARTTLS(t *testing.T) {
	t.Parallel()
	broken := &testkit.NewCertificate(t, "mx.legacy.example").Certificate
	broken.PrivateKey = nil // the server cannot complete a handshake
	sk, port := startMX(t, broken)
	zone := dnstest.New(t)
	zone.SetMX("legacy.example", dnstest.MX{Pref: 10, Host: "mx.legacy.example"})
	zone.SetAddr("mx.legacy.example", "127.0.0.1")
	st := runDirectMX(t, zone, port, nil, "From: alice@example.org\r\nSubject: x\r\n\r\nx\r\n", "bob@legacy.example")
	if e := waitFailed(t, st); !strings.HasPrefix(e, "4.") || !strings.Contains(e, "STARTTLS") {
		t.Errorf("last error %q, want a temporary STARTTLS failure", e)
	}
	if got := sk.received(); len(got) != 0 {
		t.Errorf("delivered in plaintext after STARTTLS failed")
	}
}

// A smarthost with smarthost_tls = "starttls" gets the message over
// verified TLS, one connection, EHLO naming the bridge; one that does not
// offer STARTTLS gets nothing.
func TestSmarthostSTARTTLS(t *testing.T) {
	t.Parallel()
	relay := testkit.NewCertificate(t, "relay.test")
	cert, roots := &relay.Certificate, relay.Pool
	zone := dnstest.New(t)
	raw := "From: alice@example.org\r\nTo: dan@legacy.example\r\nSubject: x\r\n\r\nx\r\n"

	sk, port := startMX(t, cert)
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	st := runOutbox(t, zone, Options{Smarthost: Smarthost{Addr: addr, TLS: "starttls", RootCAs: roots}}, raw, "dan@legacy.example")
	if got := waitRelayed(t, st, sk); !got.tls {
		t.Errorf("relayed without TLS")
	}
	sk.mu.Lock()
	if h := strings.Join(sk.hellos, " "); h != "mail.example.org mail.example.org" || sk.conns != 1 {
		t.Errorf("EHLO %q on %d connection(s)", h, sk.conns)
	}
	sk.mu.Unlock()

	plain, port := startMX(t, nil)
	addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	st = runOutbox(t, zone, Options{Smarthost: Smarthost{Addr: addr, TLS: "starttls", RootCAs: roots}}, raw, "dan@legacy.example")
	if e := waitFailed(t, st); !strings.HasPrefix(e, "4.") || !strings.Contains(e, "STARTTLS is not offered") {
		t.Errorf("last error %q", e)
	}
	if len(plain.received()) != 0 {
		t.Errorf("relayed in plaintext to a smarthost without STARTTLS")
	}
}
