package imapout

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/store"
)

// fetchAll returns the full text of every message of a mailbox by UID.
func fetchAll(t *testing.T, c *imapclient.Client, mailbox string) map[imap.UID]string {
	t.Helper()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID]string{}
	for _, m := range msgs {
		body := string(m.FindBodySection(whole))
		if int64(len(body)) != m.RFC822Size {
			t.Errorf("UID %d: RFC822.SIZE %d, BODY[] %d bytes", m.UID, m.RFC822Size, len(body))
		}
		out[m.UID] = body
	}
	return out
}

func TestFilingVerdicts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	alice := e.remoteSender("alice@example.org")
	mallory := e.remoteSender("mallory@example.com")
	e.remoteSender("carol@example.org") // a key exists, but carol signs nothing

	pass := message("Alice <alice@example.org>", "bob@example.net", "signed by alice", "hello")
	forged := message("Alice <alice@example.org>", "bob@example.net", "signed by mallory", "give me money")
	unsigned := message("carol@example.org", "bob@example.net", "unsigned", "hi")
	spoofed := message("Alice <alice@example.org>", "bob@example.net", "envelope from mallory", "hi")
	nokey := message("dave@example.org", "bob@example.net", "no key known", "hi")
	legacy := message("someone@legacy.example", "bob@example.net", "legacy smtp", "hi")

	e.deliver(bob, pass, delivery{signer: alice})
	e.deliver(bob, forged, delivery{signer: mallory})
	e.deliver(bob, unsigned, delivery{})
	e.deliver(bob, spoofed, delivery{from: "mallory@example.com", signer: mallory})
	e.deliver(bob, nokey, delivery{signer: e.remoteSenderUnknown("dave@example.org")})
	e.deliver(bob, legacy, delivery{source: store.SourceMX, from: "bounce@legacy.example"})
	if n, _ := e.st.UnfiledCount(context.Background(), bob.ID); n != 6 {
		t.Fatalf("%d unfiled before login", n)
	}

	c := e.login(bob) // files before LOGIN's OK
	if n, _ := e.st.UnfiledCount(context.Background(), bob.ID); n != 0 {
		t.Fatalf("%d unfiled after login", n)
	}
	trace := "Received: from peer.example by " + hostname + "; Tue, 24 Nov 2026 10:00:00 +0000\r\n"
	want := map[string]string{ // body → verdict
		pass:     "pass",
		unsigned: "none",
		legacy:   "none",
	}
	inbox := fetchAll(t, c, "INBOX")
	if len(inbox) != len(want) {
		t.Errorf("INBOX has %d messages, want %d", len(inbox), len(want))
	}
	for _, got := range inbox {
		found := false
		for body, verdict := range want {
			if got == trace+"Authentication-Results: "+hostname+"; tollbridge="+verdict+"\r\n"+body {
				found = true
			}
		}
		if !found {
			t.Errorf("unexpected INBOX message %q", got)
		}
	}
	// Signed mail is pass or fail: a signer with no key at all is fail.
	junk := fetchAll(t, c, "Junk")
	if len(junk) != 3 {
		t.Errorf("Junk has %d messages, want 3", len(junk))
	}
	for _, got := range junk {
		if !strings.Contains(got, "tollbridge=fail\r\n") ||
			!strings.HasSuffix(got, forged) && !strings.HasSuffix(got, spoofed) && !strings.HasSuffix(got, nokey) {
			t.Errorf("unexpected Junk message %q", got)
		}
	}
}

// TestUnsignedVerdicts: unsigned ticketed mail is fail when it came on a
// no-work ticket or its sender has a pinned key (docs/protocol.md §3.7),
// none otherwise; signed mail on a no-work ticket is judged as usual.
func TestUnsignedVerdicts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	alice := e.remoteSender("alice@example.org")
	frank := userKey(t, "frank@example.org", "x")
	if _, err := e.st.PinKey(context.Background(), "frank@example.org", frank.uk.Fingerprint, frank.uk.Public); err != nil {
		t.Fatal(err)
	}
	free := message("erin@example.org", "bob@example.net", "unsigned on a free ticket", "hi")
	pinned := message("frank@example.org", "bob@example.net", "unsigned from a pinned sender", "hi")
	stranger := message("gina@example.org", "bob@example.net", "unsigned stranger", "hi")
	signedFree := message("alice@example.org", "bob@example.net", "signed on a free ticket", "hi")
	e.deliver(bob, free, delivery{noWork: true})
	e.deliver(bob, pinned, delivery{})
	e.deliver(bob, stranger, delivery{})
	e.deliver(bob, signedFree, delivery{signer: alice, noWork: true})

	c := e.login(bob)
	verdicts := map[string]string{}
	for _, box := range []string{"INBOX", "Junk"} {
		for _, got := range fetchAll(t, c, box) {
			for _, body := range []string{free, pinned, stranger, signedFree} {
				if strings.HasSuffix(got, body) {
					i := strings.Index(got, "tollbridge=")
					verdicts[body] = box + " " + strings.TrimSpace(got[i+len("tollbridge="):strings.Index(got[i:], "\r\n")+i])
				}
			}
		}
	}
	for body, want := range map[string]string{free: "Junk fail", pinned: "Junk fail", stranger: "INBOX none", signedFree: "INBOX pass"} {
		if verdicts[body] != want {
			t.Errorf("%q: filed as %q, want %q", body[strings.Index(body, "Subject: "):strings.Index(body, "\r\nDate")], verdicts[body], want)
		}
	}
}

// remoteSenderUnknown makes a signing key that SenderKeys will not find.
func (e *env) remoteSenderUnknown(addr string) *openpgp.Entity {
	k := userKey(e.t, addr, "x")
	return k.e
}

func TestFilingWhileLoggedIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	alice := e.remoteSender("alice@example.org")
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	r.send("IDLE")
	r.expect(`^\+ `)
	start := time.Now()
	e.deliver(bob, message("alice@example.org", "bob@example.net", "while idle", "hi"), delivery{signer: alice})
	r.expect(`^\* 1 EXISTS$`)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("new mail took %v to show", d)
	}
	r.c.Write([]byte("DONE\r\n"))
	r.expect(`^T\d+ OK`)
	if u := r.ok("UID FETCH 1 (FLAGS RFC822.SIZE)"); len(u) != 1 || !strings.Contains(u[0], `\Recent`) {
		t.Errorf("fetch after IDLE: %q", u)
	}
}

func TestTamperedMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	var msgs []string
	for i, body := range []string{"first", "second (to be tampered with)", "third"} {
		msgs = append(msgs, message("alice@example.org", "bob@example.net", "message "+string(rune('1'+i)), strings.Repeat(body+"\r\n", 20)))
		e.deliver(bob, msgs[i], delivery{mailbox: "INBOX", source: store.SourceMX})
	}
	c := e.login(bob)
	// Index them (the login's background indexer may be done already).
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{Envelope: true}).Collect(); err != nil {
		t.Fatal(err)
	}
	// The metadata caches are written by the background indexer: wait
	// until all three have theirs, so what follows reads them, not the
	// tampered part.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ids, err := e.st.UnindexedMessages(context.Background(), bob.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages %v still not indexed after 30 s", ids)
		}
	}
	// Flip one byte inside the encrypted text part of message 2.
	sealed, err := e.st.SealedMessage(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, "blobs", sealed.Blobs["b1"][:2], sealed.Blobs["b1"])
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o600)
	b[len(b)/2] ^= 0x40
	writeFile(t, path, string(b))

	c2 := e.login(bob) // a new session: no rendered message cached
	if _, err := c2.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	got, err := c2.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err == nil || !strings.Contains(err.Error(), "UID 2") {
		t.Errorf("FETCH of a tampered message: %v", err)
	}
	if len(got) != 2 || got[0].UID != 1 || got[1].UID != 3 {
		t.Fatalf("got %d messages", len(got))
	}
	for _, m := range got {
		if want := msgs[m.UID-1]; !strings.HasSuffix(string(m.FindBodySection(whole)), want) {
			t.Errorf("UID %d altered", m.UID)
		}
	}
	// The mailbox keeps working: flags, envelopes, search.
	if _, err := c2.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{Flags: true, Envelope: true}).Collect(); err != nil {
		t.Errorf("FETCH FLAGS ENVELOPE: %v", err)
	}
	res, err := c2.UIDSearch(&imap.SearchCriteria{Body: []string{"tampered"}}, nil).Wait()
	if err != nil || len(res.AllUIDs()) != 0 {
		t.Errorf("search of tampered text: %v %v", res, err)
	}
	res, err = c2.UIDSearch(&imap.SearchCriteria{Body: []string{"third"}}, nil).Wait()
	if err != nil || len(res.AllUIDs()) != 1 {
		t.Errorf("search: %v %v", res, err)
	}
}

// TestSignedMailWaitsForAnUnreachableKeyServer: signed mail whose sender's
// key server does not answer stays unfiled and is tried again; once the key
// can be had it is checked (pass); after a day of silence it is fail.
func TestSignedMailWaitsForAnUnreachableKeyServer(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	reachable := false
	var e *env
	e = newEnv(t, func(c *Options) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		c.SenderKeys = func(ctx context.Context, addr string) (*openpgp.Entity, error) {
			mu.Lock()
			up := reachable
			mu.Unlock()
			if !up {
				return nil, errors.New("connect: connection refused")
			}
			return e.senderKey(ctx, addr)
		}
	})
	advance := func(d time.Duration, up bool) {
		mu.Lock()
		now, reachable = now.Add(d), up
		mu.Unlock()
	}
	bob := e.addUser("bob@example.net")
	alice := e.remoteSender("alice@example.org")
	carol := e.remoteSender("carol@example.org")
	e.deliver(bob, message("alice@example.org", "bob@example.net", "from alice", "hi"), delivery{signer: alice, received: now})
	e.deliver(bob, message("carol@example.org", "bob@example.net", "from carol", "hi"), delivery{signer: carol, received: now})

	e.login(bob).Logout()
	if n, _ := e.st.UnfiledCount(context.Background(), bob.ID); n != 2 {
		t.Fatalf("%d unfiled while the key server is down, want 2", n)
	}
	advance(11*time.Minute, true)
	c := e.login(bob)
	inbox := fetchAll(t, c, "INBOX")
	if len(inbox) != 2 {
		t.Fatalf("INBOX has %d messages after the key server came back", len(inbox))
	}
	for _, m := range inbox {
		if !strings.Contains(m, "tollbridge=pass") {
			t.Errorf("verdict: %q", m)
		}
	}
	c.Logout()

	dave := e.remoteSender("dave@example.org")
	e.deliver(bob, message("dave@example.org", "bob@example.net", "from dave", "hi"), delivery{signer: dave, received: now})
	advance(25*time.Hour, false)
	c = e.login(bob)
	if junk := fetchAll(t, c, "Junk"); len(junk) != 1 {
		t.Fatalf("a day without the key server: Junk has %d messages", len(junk))
	}
}

// TestRotatedSenderWaitsForItsServer: a signature the pinned key does
// not verify asks the sender's server once (a key transition); while that
// server does not answer the message waits unfiled, and once it answers
// with the certified new key the message passes.
func TestRotatedSenderWaitsForItsServer(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	reachable := false
	old := userKey(t, "alice@example.org", "old").e
	next := userKey(t, "alice@example.org", "new").e
	e := newEnv(t, func(c *Options) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		c.SenderKeys = func(context.Context, string) (*openpgp.Entity, error) { return old, nil } // the pin
		c.FreshSenderKey = func(context.Context, string) (*openpgp.Entity, error) {
			mu.Lock()
			defer mu.Unlock()
			if !reachable {
				return nil, errors.New("connect: connection refused")
			}
			return next, nil
		}
	})
	bob := e.addUser("bob@example.net")
	e.deliver(bob, message("alice@example.org", "bob@example.net", "rotated", "hi"), delivery{signer: next, received: now})
	e.login(bob).Logout()
	if n, _ := e.st.UnfiledCount(context.Background(), bob.ID); n != 1 {
		t.Fatalf("%d unfiled while alice's server is down, want 1 (not filed as fail)", n)
	}
	mu.Lock()
	now, reachable = now.Add(11*time.Minute), true
	mu.Unlock()
	c := e.login(bob)
	inbox := fetchAll(t, c, "INBOX")
	if len(inbox) != 1 {
		t.Fatalf("INBOX has %d messages once alice's server answers", len(inbox))
	}
	for _, m := range inbox {
		if !strings.Contains(m, "tollbridge=pass") {
			t.Errorf("verdict: %q", m)
		}
	}
}
