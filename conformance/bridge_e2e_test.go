package conformance_test

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// TestBridgeBothWays runs a real `bridge serve` for example.net (user bob)
// against this suite's independent peer for example.org (users alice,
// carol, dave: keys made here, served by the peer's WKD):
//   - receive: messages sealed here by hand (go-crypto's and GnuPG's
//     framing) are delivered to bob's bridge and read back over IMAP, byte
//     for byte, with their signature verdict and mailbox;
//   - send, group, envelope sender: bob's mail goes out through his bridge
//     to the peer, which checks every byte against docs/protocol.md §3;
//   - legacy, legacy relay: SMTP in (verdict none) and out (unchanged);
//   - no such user, 429 then 201, 413 and 404 are permanent: how the
//     sending side takes the answers of §3.1–3.2;
//   - trust: having written to alice, bob's bridge gives her a valid ticket
//     at once (§3.2);
//   - pin: a changed key at alice's WKD is refused (§3.1).
func TestBridgeBothWays(t *testing.T) {
	t.Parallel()
	bin := buildBridge(t, t.TempDir())
	p := newPeer(t, "example.org", 6, 3)
	keys := map[string]*openpgp.Entity{}
	for _, u := range []string{"alice@example.org", "carol@example.org", "dave@example.org", "big@example.org", "gone@example.org"} {
		keys[u] = newKey(t, u)
		p.users[u] = keys[u]
	}
	alice := keys["alice@example.org"]
	relay := startRelay(t)
	b := startBridge(t, bin, "example.net", []string{"bob@example.net", "erin@example.net"}, 8, 2, []route{{"example.org", p.srv.URL, p.caFile}}, relay.addr)
	bobPub := readPublicKey(t, b.ticket.expect(200, "GET", wkdPath("bob@example.net"), nil).body)
	if !hasUserID(bobPub, "bob@example.net") {
		t.Errorf("bob's WKD key has no user id bob@example.net")
	}
	const bob, bobPW = "bob@example.net", "pw-bob@example.net"

	t.Run("receive", func(t *testing.T) {
		eve := newKey(t, "alice@example.org") // not the key alice's WKD serves
		m1 := multipartMessage("alice@example.org", "m1.conformance")
		m2 := plainMessage("m2.conformance")
		m3 := multipartMessage("mallory@example.org", "m3.conformance") // From: is not catalog.from
		m4 := multipartMessage("alice@example.org", "m4.conformance")   // signed by another key
		m5 := multipartMessage("mallory@example.org", "m5.conformance") // catalog.from is not the envelope sender
		m5.catalog = bytes.Replace(m5.catalog, []byte(`"from": "alice@example.org"`), []byte(`"from": "mallory@example.org"`), 1)
		m6 := oddMessage("m6.conformance")
		m7 := plainMessageFrom("zed@example.org", "m7.conformance") // unsigned, from a sender with no key
		for _, d := range []struct {
			m      *handMessage
			signer *openpgp.Entity
		}{{m1, alice}, {m2, nil}, {m3, alice}, {m4, eve}, {m5, alice}, {m6, alice}} {
			deliverByHand(t, b.ticket, sealMessage(t, d.m.catalog, d.m.parts, d.signer), "alice@example.org", bob, bobPub)
		}
		deliverByHand(t, b.ticket, sealMessage(t, m7.catalog, m7.parts, nil), "zed@example.org", bob, bobPub)
		m8 := multipartMessage("alice@example.org", "m8.conformance") // GnuPG's packet framing
		deliverByHand(t, b.ticket, sealGnuPGStyle(t, m8.catalog, m8.parts, alice), "alice@example.org", bob, bobPub)
		// §3.7: unsigned mail is fail when catalog.from has a pinned key —
		// alice's, pinned while m1 was checked — and none otherwise.
		inbox := mailbox(t, b.imap, bob, bobPW, "INBOX")
		expectMail(t, "INBOX", inbox, map[string]string{"m1": string(m1.raw), "m6": string(m6.raw), "m7": string(m7.raw), "m8": string(m8.raw)},
			map[string]string{"m1": "pass", "m6": "pass", "m7": "none", "m8": "pass"})
		junk := mailbox(t, b.imap, bob, bobPW, "Junk")
		expectMail(t, "Junk", junk, map[string]string{"m2": string(m2.raw), "m3": string(m3.raw), "m4": string(m4.raw), "m5": string(m5.raw)},
			map[string]string{"m2": "fail", "m3": "fail", "m4": "fail", "m5": "fail"})
	})

	t.Run("signed, signer's key not found", func(t *testing.T) {
		// §3.4 "tollbridge=pass|fail|none; none for unsigned mail and for
		// legacy mail that came in over SMTP": this mail is signed, and
		// ticketed, yet ghost's WKD answers 404, so no key verifies it.
		ghost := newKey(t, "ghost@example.org")
		m := multipartMessage("ghost@example.org", "m9.conformance")
		m.catalog = bytes.Replace(m.catalog, []byte(`"from": "alice@example.org"`), []byte(`"from": "ghost@example.org"`), 1)
		deliverByHand(t, b.ticket, sealMessage(t, m.catalog, m.parts, ghost), "ghost@example.org", bob, bobPub)
		for _, box := range []string{"INBOX", "Junk"} {
			for _, g := range mailbox(t, b.imap, bob, bobPW, box) {
				if body, verdict := splitTrace(g); bytes.Contains(body, []byte("m9.conformance")) {
					if verdict != "fail" || box != "Junk" {
						t.Errorf("signed mail whose signer's key cannot be found: tollbridge=%s in %s, want fail in Junk (§3.4: none is only for unsigned and legacy mail; mail whose signature fails goes under Junk)", verdict, box)
					}
					return
				}
			}
		}
		t.Errorf("m9 delivered but in neither INBOX nor Junk")
	})

	t.Run("202 means the recipient can read it", func(t *testing.T) {
		// §3.3: complete answers 202 "with a delivery receipt"; §3.6: a
		// mismatching header is a 422 "and the ticket stays open". What
		// the server accepts, the recipient's mail client must be able to
		// read. (Sent to erin, so that bob's mailboxes stay readable.)
		const erin = "erin@example.net"
		erinPub := readPublicKey(t, b.ticket.expect(200, "GET", wkdPath(erin), nil).body)
		for name, mutate := range map[string]func([]byte) []byte{
			"header with a field the protocol does not list": func(h []byte) []byte {
				return bytes.Replace(h, []byte(`"version": 1,`), []byte(`"version": 1, "x-note": "extension",`), 1)
			},
			"encrypted_key that is not a PKESK v3 packet": func(h []byte) []byte {
				return regexp.MustCompile(`"encrypted_key": "[^"]*"`).ReplaceAll(h, []byte(`"encrypted_key": "bm90IGEgUEtFU0sgcGFja2V0"`))
			},
		} {
			id := strings.ReplaceAll(name, " ", "-")
			m := plainMessage(id)
			s := sealMessage(t, m.catalog, m.parts, alice)
			r := uploadByHand(t, b.ticket, s, "alice@example.org", erin, mutate(s.header(t, hashAddr(t, "alice@example.org"), hashAddr(t, erin), erinPub, true)))
			switch r.status {
			case 422:
				if r.obj["part"] != "header" {
					t.Errorf("%s: 422 names %v, want header", name, r.obj["part"])
				}
			case 202:
				if !readable(t, b, erin, id) {
					t.Errorf("%s: complete answered 202 with a receipt, but %s's IMAP cannot show the message (want 422 {\"part\": \"header\"} or a readable message)", name, erin)
				}
			default:
				t.Errorf("%s: complete answered HTTP %d: %s", name, r.status, r.body)
			}
		}
	})

	t.Run("send", func(t *testing.T) {
		msg := sentMessage()
		submit(t, b.submission, bob, bobPW, []string{"alice@example.org"}, msg)
		tks := p.awaitCompleted(t, 1)
		checkSent(t, tks[0], bob, "alice@example.org", alice, bobPub, msg, sentWant)
		checkSigned(t, tks[0], readPublicKey(t, b.ticket.expect(200, "GET", wkdPath("receipts@example.net"), nil).body))
		gpgDecrypts(t, tks[0], alice, bobPub)
	})

	t.Run("group", func(t *testing.T) {
		msg := groupMessage()
		submit(t, b.submission, bob, bobPW, []string{"alice@example.org", "Carol@Example.ORG", "dave@example.org"}, msg)
		tks := p.awaitCompleted(t, 3)
		// §3.5: "sealed once: one catalog, one copy of each part, N headers".
		for _, tk := range tks[1:] {
			if !bytes.Equal(tk.uploads["catalog"], tks[0].uploads["catalog"]) {
				t.Errorf("recipients got different catalogs (§3.5 \"sealed once: one catalog, one copy of each part, N headers\")")
			}
			for name, up := range tks[0].uploads {
				if name != "header" && !bytes.Equal(tk.uploads[name], up) {
					t.Errorf("recipients got different %s (§3.5)", name)
				}
			}
		}
		for _, tk := range tks {
			var to string
			for addr := range keys {
				if h := decodeObj(tk.complete); h["to"] == hashAddr(t, addr) {
					to = addr
				}
			}
			if to == "" {
				t.Errorf("header to %v is none of the recipients", decodeObj(tk.complete)["to"])
				continue
			}
			checkSent(t, tk, bob, to, keys[to], bobPub, msg, groupWant)
			key := openPKESK(t, decodeObj(tk.complete)["encrypted_key"].(string), keys[to])
			if cat := openSEIPD(t, "catalog", tk.uploads["catalog"], key).data; bytes.Contains(cat, []byte("dave")) {
				t.Errorf("the Bcc recipient appears in the catalog (§3.5 \"Blind copies stay blind\")")
			}
		}
	})

	t.Run("envelope sender", func(t *testing.T) {
		// §3.6: "The ticket's sender and the header's from hash the envelope
		// sender", hashed lowercased whatever case MAIL FROM used; the
		// catalog's from "is that same sender's address".
		submitAs(t, b.submission, bob, bobPW, "Bob@EXAMPLE.net", []string{"alice@example.org"}, plainText("case.conformance"))
		tk := p.awaitCompleted(t, 1)[0]
		h := decodeObj(tk.complete)
		if h["from"] != hashAddr(t, bob) || decodeObj(tk.request)["sender"] != hashAddr(t, bob) {
			t.Errorf("header from / ticket sender %v / %v, want hash(%s) (§3.6)", h["from"], decodeObj(tk.request)["sender"], bob)
		}
		key := openPKESK(t, h["encrypted_key"].(string), alice)
		cat := decodeObj(openSEIPD(t, "catalog", tk.uploads["catalog"], key).data)
		if from, _ := cat["from"].(string); !strings.EqualFold(from, bob) {
			t.Errorf("catalog from %q, want the envelope sender %s (§3.6)", from, bob)
		}
		if cat["subject"] != "Grüße aus Köln" {
			t.Errorf("catalog subject %q, want \"Grüße aus Köln\" (§3.6 \"subject RFC 2047-decoded (raw 8-bit bytes read as UTF-8, else Latin-1)\")", cat["subject"])
		}
	})

	t.Run("legacy", func(t *testing.T) {
		// §3.4: "none … for legacy mail that came in over SMTP".
		msg := strings.Replace(plainText("legacy.conformance"), "From: bob@example.net", "From: Old <old@legacy.example>", 1)
		submitAs(t, b.mx, "", "", "old@legacy.example", []string{bob}, msg)
		for _, m := range mailbox(t, b.imap, bob, bobPW, "INBOX") {
			if body, verdict := splitTrace(m); bytes.Contains(body, []byte("legacy.conformance")) {
				if verdict != "none" {
					t.Errorf("legacy mail: tollbridge=%q, want none (§3.4)", verdict)
				}
				if string(body) != msg {
					t.Errorf("legacy mail after the trace fields:\ngot:  %q\nwant: %q", body, msg)
				}
				return
			}
		}
		t.Errorf("legacy mail not in bob's INBOX")
	})

	t.Run("legacy relay", func(t *testing.T) {
		// §3.1: "No route and no record: the domain is legacy and the
		// message goes out over SMTP (smarthost or MX) unchanged" (trace
		// fields in front allowed, RFC 5321 §4.4).
		msg := strings.Replace(plainText("relay.conformance"), "To: alice@example.org", "To: frank@legacy.invalid", 1)
		submit(t, b.submission, bob, bobPW, []string{"frank@legacy.invalid"}, msg)
		got := relay.await(t)
		unsigned, sigs := splitDKIM(got)
		if rest, _ := splitTrace(unsigned); string(rest) != msg {
			t.Errorf("relayed message changed:\ngot:  %q\nwant: %q", got, msg)
		}
		// §4: "outgoing legacy mail is DKIM-signed (a key per domain)".
		if len(sigs) == 0 || !strings.Contains(sigs[0], "d=example.net;") {
			t.Errorf("relayed message not DKIM-signed by example.net: %q", sigs)
		}
	})

	t.Run("no such user", func(t *testing.T) {
		// §3.1: "404 means no such user": the mail bounces.
		before := len(mailbox(t, b.imap, bob, bobPW, "INBOX"))
		submit(t, b.submission, bob, bobPW, []string{"nobody@example.org"}, plainText("nobody.conformance"))
		if !waitBounce(t, b, before, "nobody@example.org") {
			t.Errorf("no bounce for mail to a user alice's WKD answers 404 for")
		}
	})

	t.Run("429 then 201", func(t *testing.T) {
		// §3.2 "429 rate limited (Retry-After)": temporary.
		p.mu.Lock()
		p.throttle = 1
		asked := p.asked[hashAddr(t, "alice@example.org")]
		p.mu.Unlock()
		submit(t, b.submission, bob, bobPW, []string{"alice@example.org"}, plainText("throttled.conformance"))
		p.awaitCompleted(t, 1)
		p.mu.Lock()
		if n := p.asked[hashAddr(t, "alice@example.org")] - asked; n != 2 {
			t.Errorf("%d ticket requests for one message after one 429, want 2", n)
		}
		p.mu.Unlock()
	})

	t.Run("413 and 404 are permanent", func(t *testing.T) {
		// §3.2 "404 unknown recipient (permanent); 413 message too large
		// (permanent)": the sender bounces at once.
		p.mu.Lock()
		p.forced["big@example.org"], p.forced["gone@example.org"] = 413, 404
		p.mu.Unlock()
		before := len(mailbox(t, b.imap, bob, bobPW, "INBOX"))
		submit(t, b.submission, bob, bobPW, []string{"big@example.org", "gone@example.org"}, plainText("permanent.conformance"))
		for _, rcpt := range []string{"big@example.org", "gone@example.org"} {
			if !waitBounce(t, b, before, rcpt) {
				t.Errorf("no bounce for %s after a permanent ticket answer", rcpt)
			}
		}
	})

	t.Run("trust", func(t *testing.T) {
		// §3.2: bob wrote to alice, so her server's signed request is valid
		// at once; §3.7: the same request unsigned, which anyone could send,
		// costs work but still gets a ticket.
		body := fmt.Sprintf(`{"sender": %q, "recipient": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 100}}`,
			hashAddr(t, "alice@example.org"), hashAddr(t, bob))
		r := b.ticket.expect(201, "POST", "/v1/tickets", []byte(body))
		if v, _ := r.obj["valid"].(bool); v {
			t.Errorf("an unsigned request naming alice got a no-work ticket: %s (§3.7 \"only a signed request earns a no-work ticket\")", r.body)
		}
		signed := fmt.Sprintf(`{"sender": %q, "recipient": %q, "sender_domain": "example.org", "created": %d, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 100}}`,
			hashAddr(t, "alice@example.org"), hashAddr(t, bob), time.Now().Unix())
		r = b.ticket.expectWith(201, "POST", "/v1/tickets", []byte(signed), http.Header{"Tollbridge-Signature": {detachSign(t, p.receipt, []byte(signed))}})
		if v, _ := r.obj["valid"].(bool); !v {
			t.Errorf("bob wrote to alice, yet her server's signed request needs work: %s (§3.2, §3.7)", r.body)
		}
		r = b.ticket.expectWith(201, "POST", "/v1/tickets", []byte(signed), http.Header{"Tollbridge-Signature": {detachSign(t, p.receipt, []byte(signed))}})
		if v, _ := r.obj["valid"].(bool); v {
			t.Errorf("a replayed signed request got a second no-work ticket (§3.7 \"the same body was not seen in the last 600 s\")")
		}
	})

	t.Run("pin", func(t *testing.T) {
		before := len(mailbox(t, b.imap, bob, bobPW, "INBOX"))
		newAlice := newKey(t, "alice@example.org")
		p.mu.Lock()
		p.users["alice@example.org"] = newAlice
		nTickets := len(p.tickets)
		p.mu.Unlock()
		// Mail signed with the new key is not taken on trust.
		m7 := multipartMessage("alice@example.org", "m7.conformance")
		deliverByHand(t, b.ticket, sealMessage(t, m7.catalog, m7.parts, newAlice), "alice@example.org", bob, bobPub)
		// Mail to alice is refused rather than sealed to the new key: a
		// bounce comes back to bob (§4: permanent error → DSN).
		submit(t, b.submission, bob, bobPW, []string{"alice@example.org"}, sentMessage())
		if !waitBounce(t, b, before, "alice@example.org") {
			t.Errorf("no bounce for mail to alice after her key changed (§3.1 refuses a changed key; §4 DSN)")
		}
		p.mu.Lock()
		if len(p.tickets) != nTickets {
			t.Errorf("bob's bridge asked for a ticket for alice after her key changed (§3.1 \"refuses a changed key until an admin accepts it\")")
		}
		p.mu.Unlock()
		found := false
		for _, m := range append(mailbox(t, b.imap, bob, bobPW, "INBOX"), mailbox(t, b.imap, bob, bobPW, "Junk")...) {
			if body, verdict := splitTrace(m); bytes.Contains(body, []byte("m7.conformance")) {
				found = true
				if verdict == "pass" {
					t.Errorf("mail signed with alice's changed key: tollbridge=pass, but her pinned key did not sign it (§3.4 \"pinned on first use\")")
				}
			}
		}
		if !found {
			t.Errorf("mail signed with alice's changed key is in neither INBOX nor Junk")
		}
	})

	t.Run("transition", func(t *testing.T) {
		// §3.1 (version 1.1): a changed key whose user ID for the address
		// carries a certification by the pinned old primary key is pinned
		// in its place without an admin; one certified by another key is
		// still refused. carol's and dave's keys were pinned by "group".
		newCarol := newKey(t, "carol@example.org")
		certify(t, newCarol, keys["carol@example.org"])
		newDave := newKey(t, "dave@example.org")
		certify(t, newDave, newKey(t, "mallory@example.org"))
		p.mu.Lock()
		p.users["carol@example.org"], p.users["dave@example.org"] = newCarol, newDave
		p.mu.Unlock()
		before := 0
		// Receiving: carol's mail signed with her new key passes, as her
		// server's WKD now serves a key her pinned key certified.
		m := multipartMessage("carol@example.org", "m10.conformance")
		m.catalog = bytes.Replace(m.catalog, []byte(`"from": "alice@example.org"`), []byte(`"from": "carol@example.org"`), 1)
		deliverByHand(t, b.ticket, sealMessage(t, m.catalog, m.parts, newCarol), "carol@example.org", bob, bobPub)
		verdict := ""
		for _, g := range mailbox(t, b.imap, bob, bobPW, "INBOX") {
			if body, v := splitTrace(g); bytes.Contains(body, []byte("m10.conformance")) {
				verdict = v
			}
		}
		if verdict != "pass" {
			t.Errorf("mail signed with carol's certified new key: tollbridge=%q in INBOX, want pass (§3.1 key transition)", verdict)
		}
		before = len(mailbox(t, b.imap, bob, bobPW, "INBOX"))
		submit(t, b.submission, bob, bobPW, []string{"carol@example.org"}, plainText("transition.conformance"))
		tks := p.awaitCompleted(t, 1)
		h := decodeObj(tks[0].complete)
		if h["key_fingerprint"] != fingerprint(newCarol) {
			t.Errorf("mail to carol after her certified key transition went to key %v, want the new key %s", h["key_fingerprint"], fingerprint(newCarol))
		} else {
			openPKESK(t, h["encrypted_key"].(string), newCarol)
		}
		submit(t, b.submission, bob, bobPW, []string{"dave@example.org"}, plainText("tampered.conformance"))
		if !waitBounce(t, b, before, "dave@example.org") {
			t.Errorf("no bounce for mail to dave, whose new key is certified by another key than the pinned one")
		}
	})
}

// certify adds to each user ID of e a certification by signer's primary
// key, as a key transition carries it (§3.1).
func certify(t *testing.T, e, signer *openpgp.Entity) {
	t.Helper()
	for name := range e.Identities {
		if err := e.SignIdentity(name, signer, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// readable reports whether user's INBOX or Junk shows a message
// containing marker; a message the server cannot show fails the FETCH.
func readable(t *testing.T, b *bridgeProc, user, marker string) bool {
	t.Helper()
	for _, box := range []string{"INBOX", "Junk"} {
		msgs, err := tryMailbox(b.imap, user, "pw-"+user, box)
		if err != nil {
			t.Logf("IMAP %s: %v", box, err)
			return false
		}
		for _, m := range msgs {
			if bytes.Contains(m, []byte(marker)) {
				return true
			}
		}
	}
	return false
}
