package imapout

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-imap/v2"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/seal"
	"tollbridge/store"
	"tollbridge/translate"
)

// sealCrafted seals raw like a remote sender would, letting edit change
// the catalog before it is encrypted (a hostile sender writes any catalog
// it likes: docs/protocol.md §3.4 has the receiver accept any catalog of the shape).
func sealCrafted(t *testing.T, blobs *store.Blobs, raw []byte, from, to string, recipient *openpgp.Entity, edit func(*translate.Catalog)) *store.NewMessage {
	t.Helper()
	key, err := seal.NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	sink := &blobSink{blobs: blobs, key: key, refs: map[string]store.BlobRef{}}
	cat, err := translate.Split(bytes.NewReader(raw), int64(len(raw)), sink, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	edit(cat)
	plain, err := cat.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := translate.ParseCatalog(plain); err != nil {
		t.Fatalf("crafted catalog is refused by ParseCatalog already: %v", err)
	}
	var enc bytes.Buffer
	if err := key.SealCatalog(&enc, plain, nil); err != nil {
		t.Fatal(err)
	}
	ref, err := blobs.Put(bytes.NewReader(enc.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	sink.refs["catalog"] = ref
	h, err := key.NewHeader(recipient, protocol.Header{From: addrHash(from), To: addrHash(to), Catalog: protocol.RefOf(enc.Bytes()), Parts: sink.parts})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &store.NewMessage{Header: hb, Blobs: sink.refs}
}

// A catalog may reference one part any number of times: ~48 KiB of
// uploaded attachment referenced 1100 times would rebuild to ~72 MB at
// every login and FETCH (terabytes with a 50 MB part). Such a catalog is
// refused: the message goes to Junk and is never rendered.
func TestCatalogPartReuseIsNotRendered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.org")
	pub, err := keyring.ReadKey(bob.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 48<<10)
	rand.Read(blob)
	var body strings.Builder
	enc := base64.StdEncoding.EncodeToString(blob)
	for len(enc) > 76 {
		body.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	body.WriteString(enc + "\r\n")
	raw := crlf("From: mallory@evil.example\nTo: bob@example.org\nSubject: small\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n") + body.String()

	var stored int64
	nm := sealCrafted(t, e.st.Blobs(), []byte(raw), "mallory@evil.example", bob.Address, pub, func(c *translate.Catalog) {
		one := c.MIME.Body
		for range 1100 {
			c.MIME.Body = append(c.MIME.Body, one...)
		}
	})
	for _, ref := range nm.Blobs {
		stored += ref.Size
	}
	nm.UserID, nm.Source, nm.Trace = bob.ID, store.SourceTicket, []byte("Received: from peer\r\n")
	if _, err := e.st.DeliverMessage(context.Background(), nm); err != nil {
		t.Fatal(err)
	}

	// The message is not rendered: it goes to Junk, and asking for it is an
	// error, not 74 MB.
	c := e.login(bob)
	if mbox, err := c.Select("INBOX", nil).Wait(); err != nil || mbox.NumMessages != 0 {
		t.Fatalf("INBOX: %v, %v", mbox, err)
	}
	if mbox, err := c.Select("Junk", nil).Wait(); err != nil || mbox.NumMessages != 1 {
		t.Fatalf("Junk: %v, %v", mbox, err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect(); err == nil {
		t.Errorf("%d bytes stored that rebuild to 74 MB were served", stored)
	}
}

// LOGIN files waiting mail before it answers, and filing looks up each
// sender's key at the sender's server: a sender whose server stalls must
// not hold the recipient's LOGIN (it files for two seconds at most, the
// rest in the background).
func TestLoginDoesNotWaitForSenderKeyLookups(t *testing.T) {
	t.Parallel()
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	e := newEnv(t, func(c *Options) {
		c.SenderKeys = func(ctx context.Context, _ string) (*openpgp.Entity, error) {
			select {
			case <-stall:
			case <-ctx.Done():
			}
			return nil, ctx.Err()
		}
	})
	bob := e.addUser("bob@example.org")
	signer := e.remoteSender("mallory@evil.example")
	e.deliver(bob, message("mallory@evil.example", "bob@example.org", "hi", "x"), delivery{signer: signer})

	done := make(chan string, 1)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		br := bufio.NewReader(conn)
		br.ReadString('\n') // greeting
		fmt.Fprintf(conn, "a LOGIN %q %q\r\n", bob.Address, password(bob.Address))
		for {
			l, err := br.ReadString('\n')
			if err != nil || strings.HasPrefix(l, "a ") {
				done <- l
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("LOGIN still waiting after 5 s: it waits for the sender's key server (up to 15 s per sender)")
	}
}

// Every BINARY[part] item of a FETCH is decoded into its own spool held
// until the response is written; a 50 KiB command line holds ~5000 items,
// so one FETCH could pin gigabytes. More than 64 are refused.
func TestFetchManyBinarySectionsRefused(t *testing.T) {
	e := newEnv(t)
	bob := e.addUser("bob@example.org")
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	raw := crlf("From: alice@example.net\nTo: bob@example.org\nSubject: att\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n") +
		wrap76(base64.StdEncoding.EncodeToString(blob)) + "--b--\r\n"
	e.deliver(bob, raw, delivery{mailbox: "INBOX"})
	r := e.rawLogin(bob)
	r.ok("SELECT INBOX")
	items := strings.TrimSpace(strings.Repeat("BINARY.PEEK[2] ", 200))

	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	r.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	tag := r.send("FETCH 1 (%s)", items)
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if m := literalRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			io.CopyN(io.Discard, r.br, int64(n))
			continue
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" BAD [LIMIT]") {
				t.Errorf("200 sections in one FETCH answered %q", l)
			}
			break
		}
	}
	close(stop)
	<-sampled
	if grew := int64(peak) - int64(before.HeapInuse); grew > 64<<20 {
		t.Errorf("one FETCH of 200 BINARY items of a 1 MiB part grew the heap by %d MiB", grew>>20)
	}
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

// Unsigned mail over the ticket API is "none", but not when it claims a
// local user, whose mail submission always signs: stripping the signature
// must not turn "fail/Junk" into "none/INBOX".
func TestUnsignedMailFromLocalUserIsJunk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.org")
	e.addUser("ceo@example.org")
	e.deliver(bob, message("CEO <ceo@example.org>", "bob@example.org", "wire the money", "now"), delivery{from: "ceo@example.org"})
	c := e.login(bob)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 0 {
		t.Errorf("unsigned ticketed mail claiming a local sender was filed in INBOX")
	}
}
