package conformance_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestBridgeChecksMDC: §3.6 "A reader MUST check the MDC". Two unsigned
// messages go to bob's bridge by hand; in one, the last byte of the
// block's SEIPD packet is flipped: that byte is in the encrypted SHA-1 of
// the MDC packet, so the literal data decrypts unchanged and only the MDC
// check can tell (the catalog's SHA-256 of the plaintext still matches).
// The header states the tampered bytes, so the ticket API may take it
// (it cannot decrypt). bob must read the intact message and never the
// tampered one's text, in INBOX or Junk.
func TestBridgeChecksMDC(t *testing.T) {
	t.Parallel()
	bin := buildBridge(t, t.TempDir())
	p := newPeer(t, "example.org", 6, 3)
	b := startBridge(t, bin, "example.net", []string{"bob@example.net"}, 8, 2, []route{{"example.org", p.srv.URL, p.caFile}}, "")
	const bob, bobPW = "bob@example.net", "pw-bob@example.net"
	bobPub := readPublicKey(t, b.ticket.expect(200, "GET", wkdPath(bob), nil).body)

	bad := plainMessageFrom("zed@example.org", "mdc-tampered.conformance")
	s := sealMessage(t, bad.catalog, bad.parts, nil)
	s.parts[0].sealed[len(s.parts[0].sealed)-1] ^= 0x01
	h := s.header(t, hashAddr(t, "zed@example.org"), hashAddr(t, bob), bobPub, true)
	if r := uploadByHand(t, b.ticket, s, "zed@example.org", bob, h); r.status != 202 && r.status != 422 {
		t.Fatalf("complete with a tampered part: HTTP %d, want 202 (taken; checked on reading) or 422: %s", r.status, r.body)
	}
	good := plainMessageFrom("zed@example.org", "mdc-intact.conformance")
	deliverByHand(t, b.ticket, sealMessage(t, good.catalog, good.parts, nil), "zed@example.org", bob, bobPub)

	for range 300 {
		var shown [][]byte
		for _, box := range []string{"INBOX", "Junk"} {
			got, err := fetchEach(b.imap, bob, bobPW, box)
			if err != nil {
				t.Fatal(err)
			}
			shown = append(shown, got...)
		}
		seen := false
		for _, m := range shown {
			if bytes.Contains(m, []byte("mdc-tampered.conformance")) {
				t.Fatalf("bob reads the message whose MDC fails:\n%s", m)
			}
			seen = seen || bytes.Contains(m, []byte("mdc-intact.conformance"))
		}
		if seen {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the intact message is not readable in bob's INBOX or Junk after 30 s")
}

// fetchEach fetches every message of a mailbox one at a time (BODY.PEEK[]),
// so that one the server refuses to show (a NO) does not hide the others.
func fetchEach(addr, user, pass, name string) ([][]byte, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		return nil, fmt.Errorf("IMAP login %s: %w", user, err)
	}
	box, err := c.Select(name, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("IMAP select %s: %w", name, err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	var out [][]byte
	for i := uint32(1); i <= box.NumMessages; i++ {
		msgs, err := c.Fetch(imap.SeqSetNum(i), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			continue // refused: nothing of it shown
		}
		for _, m := range msgs {
			out = append(out, m.FindBodySection(section))
		}
	}
	return out, nil
}
