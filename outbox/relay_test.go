package outbox

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"tollbridge/store"
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
	q := newQueue(t)
	q.send("bob@gone.example")
	q.step()
	got := q.outcomes()
	if len(got) != 1 || !strings.HasPrefix(got[0], store.OutcomeBounced+" 5.1.2") {
		t.Fatalf("deliveries = %q, want one bounce with 5.1.2", got)
	}
	if qs, _ := q.st.Queue(t.Context()); len(qs) != 0 {
		t.Errorf("still queued: %+v", qs[0])
	}
	if n, err := q.st.UnfiledCount(t.Context(), q.alice.ID); err != nil || n != 1 {
		t.Fatalf("alice has %d messages waiting for her INBOX (%v), want the bounce", n, err)
	}
	q.checkDSN("Final-Recipient: rfc822; bob@gone.example", "Status: 5.1.2", "Subject: queued")
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
