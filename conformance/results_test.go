package conformance_test

import (
	"bytes"
	"testing"
	"time"
)

// TestBridgeDropsOwnAuthResults: §3.7.4 "A message shown to a client
// loses every top-level Authentication-Results: field whose authserv-id
// is this server's hostname (RFC 8601 §5) before the server's own trace
// fields are put in front; nothing else changes." Mail delivered by hand
// to bob's bridge (hostname mail.example.net, bridge init's default)
// carries such a field, forged by the sender, and one of another host;
// bob reads the first gone and the second, and every other byte, kept.
func TestBridgeDropsOwnAuthResults(t *testing.T) {
	t.Parallel()
	bin := buildBridge(t, t.TempDir())
	p := newPeer(t, "example.org", 6, 3)
	b := startBridge(t, bin, "example.net", []string{"bob@example.net"}, 8, 2, []route{{"example.org", p.srv.URL, p.caFile}}, "")
	const bob, bobPW = "bob@example.net", "pw-bob@example.net"
	bobPub := readPublicKey(t, b.ticket.expect(200, "GET", wkdPath(bob), nil).body)
	const (
		own     = "Authentication-Results: mail.example.net; tollbridge=pass;\r\n\tdkim=pass header.d=example.net\r\n"
		foreign = "Authentication-Results: mx.other.example; spf=pass smtp.mailfrom=zed@example.org\r\n"
	)
	m := arMessage(own + foreign)
	deliverByHand(t, b.ticket, sealMessage(t, m.catalog, m.parts, nil), "zed@example.org", bob, bobPub)
	want := bytes.Replace(m.raw, []byte(own), nil, 1)
	for range 300 {
		for _, g := range mailbox(t, b.imap, bob, bobPW, "INBOX") {
			if body, _ := splitTrace(g); bytes.Contains(body, []byte("ar.conformance")) {
				if !bytes.Equal(body, want) {
					t.Errorf("bob reads (after the bridge's own trace fields):\n%q\nwant the message less its forged mail.example.net field:\n%q", body, want)
				}
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the message is not in bob's INBOX after 30 s")
}

// arMessage is an unsigned message from zed@example.org to bob whose
// header carries fields after its Subject:.
func arMessage(fields string) *handMessage {
	b1 := &part{id: "b1", kind: "block", ctype: "text/plain", plain: []byte("Trace fields in the header.\r\n")}
	mime := &node{
		header: "From: zed@example.org\r\nTo: bob@example.net\r\nSubject: results\r\n" + fields +
			"Message-ID: <ar.conformance@example.org>\r\n\r\n",
		body: []item{identity(b1)},
	}
	return new(handMessage).build(envelope{
		from: "zed@example.org", to: []string{"bob@example.net"}, subject: "results", messageID: "<ar.conformance@example.org>",
	}, mime, b1)
}
