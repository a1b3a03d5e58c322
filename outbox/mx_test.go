package outbox

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"tollbridge/internal/dnstest"
	"tollbridge/keyring"
	"tollbridge/smtpin"
	"tollbridge/store"
	"tollbridge/ticketclient"
	"tollbridge/translate"
)

// mxSink is a legacy MX: it keeps each message it gets and whether it
// came over TLS.
type mxSink struct {
	mu   sync.Mutex
	msgs []mxMessage
}

type mxMessage struct {
	raw   []byte
	tls   bool
	hello string
}

func (s *mxSink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &mxSession{s: s, c: c}, nil
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
	ss.s.msgs = append(ss.s.msgs, mxMessage{raw: raw, tls: isTLS, hello: ss.c.Hostname()})
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
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sk, ln.Addr().(*net.TCPAddr).Port
}

// selfSigned makes a certificate no client can verify for name.
func selfSigned(t *testing.T, name string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// testDKIMKeys are an Ed25519 and an RSA-2048 key, as cmd/bridge makes.
func testDKIMKeys(t *testing.T) []DKIMKey {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return []DKIMKey{{Selector: "tb-ed", Signer: ed}, {Selector: "tb-rsa", Signer: rk}}
}

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
	ctx := t.Context()
	dir := t.TempDir()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	outboxKey, err := keyring.LoadOrCreateServiceKey(filepath.Join(dir, "outbox.key"), "outbox@mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	_, alice, err := keyring.Generate("alice@example.org", []byte("pw"), keyring.Protection{MemoryKiB: 1024, Passes: 1})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := (&smtpin.Sealer{Store: st}).Seal(strings.NewReader(raw), int64(len(raw)), "alice@example.org", alice, translate.Options{StripBcc: true})
	if err != nil {
		t.Fatal(err)
	}
	pkesk, err := sd.Key.Wrap(outboxKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueOutbox(ctx, &store.OutboxMessage{Sender: "alice@example.org", SessionKey: pkesk, Parts: sd.PartsJSON(),
		Size: sd.Size, Blobs: sd.Blobs}, []string{rcpt}); err != nil {
		t.Fatal(err)
	}
	tc, err := ticketclient.New(nil, nil, ticketclient.Options{LookupSRV: zone.Resolver().LookupSRV})
	if err != nil {
		t.Fatal(err)
	}
	o := New(Config{Hostname: "mail.example.org", Domains: []string{"example.org"}, RetryFor: time.Hour,
		FirstRetry: time.Hour, Resolver: zone.Resolver(), MXPort: mxPort, DKIM: map[string][]DKIMKey{"example.org": keys}},
		st, outboxKey, tc, nil, joinPlaintext{}, nil, slog.New(slog.DiscardHandler), Metrics{})
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
		{"starttls", selfSigned(t, "mx.legacy.example")},
		{"broken-cert", selfSigned(t, "wrong.invalid")},
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
			if got.hello != "mail.example.org" {
				t.Errorf("EHLO %q, want the bridge's host name", got.hello)
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
