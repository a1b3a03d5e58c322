package outbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tollbridge/intake"
	"tollbridge/keyring"
	"tollbridge/store"
	"tollbridge/ticketclient"
	"tollbridge/translate"
)

// fakeDNS answers for a few names the way a resolver does: a name not in
// the maps does not exist (NXDOMAIN, IsNotFound), an error kind makes the
// lookup time out or fail (SERVFAIL).
type fakeDNS struct {
	mx    map[string][]*net.MX
	hosts map[string][]string
	fail  map[string]*net.DNSError // per name, for both lookups
}

func (d fakeDNS) lookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if err := d.fail[name]; err != nil {
		return nil, err
	}
	if mx, ok := d.mx[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (d fakeDNS) lookupHost(_ context.Context, name string) ([]string, error) {
	if err := d.fail["host:"+name]; err != nil {
		return nil, err
	}
	if a, ok := d.hosts[name]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

var testDNS = fakeDNS{
	mx: map[string][]*net.MX{
		"mx.example":     {{Host: "mx2.mx.example.", Pref: 20}, {Host: "mx1.mx.example.", Pref: 10}},
		"nullmx.example": {{Host: ".", Pref: 0}},
	},
	hosts: map[string][]string{"bare.example": {"192.0.2.25"}, "slowhost.example": {"192.0.2.26"}},
	fail: map[string]*net.DNSError{
		"slow.example":          {Err: "i/o timeout", Name: "slow.example", IsTimeout: true, IsTemporary: true},
		"broken.example":        {Err: "server misbehaving", Name: "broken.example", IsTemporary: true},
		"host:slowhost.example": {Err: "i/o timeout", Name: "slowhost.example", IsTimeout: true, IsTemporary: true},
	},
}

// A domain that does not exist fails for good at once (5.1.2); a resolver
// that times out or fails is no answer about the domain: temporary.
func TestRelayTargetsFromDNS(t *testing.T) {
	t.Parallel()
	o := New(Options{LookupMX: testDNS.lookupMX, LookupHost: testDNS.lookupHost})
	for _, tc := range []struct {
		domain, want string // want: targets, or the failure's status and kind
	}{
		{"mx.example", "mx1.mx.example:25 mx2.mx.example:25"},
		{"bare.example", "192.0.2.25:25"},
		{"gone.example", "5.1.2 permanent"},
		{"nullmx.example", "5.1.10 permanent"},
		{"slow.example", "4.4.0 temporary"},
		{"broken.example", "4.4.0 temporary"},
		{"slowhost.example", "4.4.0 temporary"},
	} {
		if g := describeTargets(o.relayTargets(t.Context(), "someone@"+tc.domain)); g != tc.want {
			t.Errorf("%s: %s, want %s", tc.domain, g, tc.want)
		}
	}
}

// headersOnly is the part of cmd/bridge's Plaintext a bounce needs.
type headersOnly struct{}

func (headersOnly) Render(io.Writer, []byte, func(string) (io.ReadCloser, error)) error {
	return errors.New("not rendered in this test")
}

func (headersOnly) Headers(catalog []byte) ([]byte, error) {
	c, err := translate.ParseCatalog(catalog)
	if err != nil {
		return nil, err
	}
	return c.MIME.Header.Bytes, nil
}

// Mail to a domain that does not exist bounces on the first try, with a
// DSN stored for the sender's INBOX, instead of waiting out retry_for.
func TestNonexistentDomainBouncesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k, signer, err := keyring.Generate("alice@example.org", []byte("pw"), keyring.Protection{MemoryKiB: 1024, Passes: 1})
	if err != nil {
		t.Fatal(err)
	}
	alice := &store.User{Address: k.Address, AddressHash: keyring.HashNormalized(k.Address), WKDName: "example.org/x",
		Fingerprint: k.Fingerprint, PublicKey: k.Public, PrivateKey: k.Private}
	if err := st.CreateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	outboxKey, err := keyring.LoadOrCreateServiceKey(filepath.Join(dir, "outbox.key"), "outbox@mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	sealer := &intake.Sealer{Store: st}
	raw := "From: alice@example.org\r\nTo: bob@gone.example\r\nSubject: to nowhere\r\n\r\nhello\r\n"
	sd, err := sealer.Seal(strings.NewReader(raw), int64(len(raw)), alice.Address, signer, intake.Options{StripBcc: true})
	if err != nil {
		t.Fatal(err)
	}
	pkesk, err := sd.Key.Wrap(outboxKey)
	if err != nil {
		t.Fatal(err)
	}
	m := &store.OutboxMessage{UserID: alice.ID, Sender: alice.Address, SessionKey: pkesk, Parts: sd.PartsJSON(), Size: sd.Size, Blobs: sd.Blobs}
	if err := st.EnqueueOutbox(ctx, m, []string{"bob@gone.example"}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var dsns []string
	bounceTo := func(ctx context.Context, u *store.User, raw []byte) error {
		mu.Lock()
		dsns = append(dsns, string(raw))
		mu.Unlock()
		ms, sd, err := sealer.SealFor(bytes.NewReader(raw), int64(len(raw)), "", []*store.User{u})
		if err != nil {
			return err
		}
		ms[0].Source = store.SourceDSN
		if _, err := st.DeliverMessages(ctx, ms); err != nil {
			sd.Abort()
			return err
		}
		return nil
	}
	tickets, err := ticketclient.New(nil, nil, ticketclient.Options{NoSRV: true})
	if err != nil {
		t.Fatal(err)
	}
	o := New(Options{Hostname: "mail.example.org", Domains: []string{"example.org"}, RetryFor: 48 * time.Hour,
		LookupMX: testDNS.lookupMX, LookupHost: testDNS.lookupHost, Store: st, OutboxKey: outboxKey, Tickets: tickets, Plaintext: headersOnly{}, Bounce: bounceTo, Logger: slog.New(slog.DiscardHandler)})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); o.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	var ds []store.Delivery
	for deadline := time.Now().Add(20 * time.Second); len(ds) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ds, err = st.Deliveries(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	if len(ds) != 1 || ds[0].Outcome != store.OutcomeBounced || !strings.Contains(ds[0].Detail, "5.1.2") {
		t.Fatalf("deliveries = %+v, want one bounce with 5.1.2", ds)
	}
	if q, _ := st.Queue(ctx); len(q) != 0 {
		t.Errorf("still queued: %+v", q[0])
	}
	if n, err := st.UnfiledCount(ctx, alice.ID); err != nil || n != 1 {
		t.Fatalf("alice has %d messages waiting for her INBOX (%v), want the bounce", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"Final-Recipient: rfc822; bob@gone.example", "Status: 5.1.2", "Subject: to nowhere"} {
		if !strings.Contains(dsns[0], want) {
			t.Errorf("bounce lacks %q:\n%s", want, dsns[0])
		}
	}
}

// describeTargets says what relayTargets found, for comparing: the
// addresses in order, or the failure's status and whether it is temporary.
func describeTargets(ts []relayTarget, err error) string {
	var f *failure
	switch {
	case errors.As(err, &f) && f.Temporary:
		return f.Status + " temporary"
	case errors.As(err, &f):
		return f.Status + " permanent"
	case err != nil:
		return err.Error()
	}
	var got []string
	for _, t := range ts {
		got = append(got, t.addr)
	}
	return strings.Join(got, " ")
}
