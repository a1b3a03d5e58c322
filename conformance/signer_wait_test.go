package conformance_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/imapout"
	"tollbridge/internal/testkit"
	"tollbridge/keyring"
)

// TestUnreachableSignerWaitsADay: §3.7.4 "while the signer's server
// cannot be reached the message waits unfiled, up to 24 h, then fail".
// alice's signed mail reaches bob's site over the ticket API; the key of
// alice@example.org is fetched by WKD from a server that does not listen.
// bob's IMAP (imapout over the site's store and clock) must not show the
// message before 24 h, must try the key again meanwhile, and must file it
// as tollbridge=fail (in Junk) once the day has passed.
func TestUnreachableSignerWaitsADay(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	var asked atomic.Int32
	unreachable := "https://" + testkit.FreeAddr(t) // nothing listens there
	imapAddr := s.imap(func(ctx context.Context, address string) (*openpgp.Entity, error) {
		asked.Add(1)
		return (&keyring.Remote{}).Lookup(ctx, http.DefaultClient, unreachable, address)
	})

	alice := newKey(t, "alice@example.org")
	m := s.sample(alice)
	id := s.validTicket(m)
	s.upload(id, m, m.header(t, hashAddr(t, "alice@example.org"), s.bob.AddressHash, s.bobKey, true))
	s.api.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)

	// shown returns alice's message and the mailbox it is in, if bob's
	// IMAP shows it; each look is a login, which files waiting mail.
	shown := func() ([]byte, string) {
		t.Helper()
		for _, box := range []string{"INBOX", "Junk"} {
			msgs, err := tryMailbox(imapAddr, "bob@example.net", "pw", box)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range msgs {
				if bytes.Contains(g, []byte("Hello Bob.")) {
					return g, box
				}
			}
		}
		return nil, ""
	}
	for i, step := range []time.Duration{0, 10*time.Minute + time.Second, 23 * time.Hour} {
		s.clock.Add(step)
		before := asked.Load()
		if g, box := shown(); g != nil {
			t.Fatalf("%v after delivery, with alice's key server unreachable, bob's %s shows the message (§3.7.4: it waits unfiled up to 24 h):\n%.300s",
				s.clock.Now().Sub(time.Unix(1_900_000_000, 0)), box, g)
		}
		if asked.Load() == before {
			t.Errorf("look %d: filing did not ask for alice's key again (§3.7.4: the message waits and is retried)", i)
		}
	}
	s.clock.Add(time.Hour) // 24 h and 10 min after delivery
	g, box := shown()
	if g == nil {
		t.Fatalf("a day after delivery the message is still not shown (§3.7.4: after 24 h it is filed as fail)")
	}
	if _, verdict := splitTrace(g); verdict != "fail" || box != "Junk" {
		t.Errorf("a day after delivery: tollbridge=%s in %s, want fail in Junk (§3.7.4)", verdict, box)
	}
}

// imap serves bob's mail over IMAP on 127.0.0.1 from the site's store, on
// the site's clock, with senderKeys as the lookup of senders' keys; it
// returns the address. Logins are bob@example.net, password "pw".
func (s *site) imap(senderKeys func(context.Context, string) (*openpgp.Entity, error)) string {
	s.t.Helper()
	srv := imapout.New(imapout.Options{Store: s.st, Hostname: "mail.example.net", Now: s.clock.Now, SenderKeys: senderKeys, SpoolDir: s.t.TempDir()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	s.t.Cleanup(func() { cancel(); srv.Close(); <-done })
	return ln.Addr().String()
}
