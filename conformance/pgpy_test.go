package conformance_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-imap/v2/imapclient"
)

// PGPy frames a signed message with new-format packets and writes the
// one-pass signature packet of a single signature with its nested flag at
// 0 (RFC 4880 §5.4 would have 1). docs/protocol.md §3.6: "A reader accepts the
// one-pass signature packet whatever its nested flag says … what counts is
// that exactly one signature packet follows the literal data and verifies."

// sealPGPyStyle is sealMessage with PGPy's framing of the catalog: one-pass
// signature (nested = 0), literal data, then sigs copies of the signature
// packet (1 for what PGPy writes).
func sealPGPyStyle(t testing.TB, catalog []byte, parts []*part, signer *openpgp.Entity, sigs int) *sealed {
	t.Helper()
	return sealOnePassStyle(t, catalog, parts, signer, 1, sigs)
}

// sealOnePassStyle is sealPGPyStyle with opss copies of the one-pass
// signature packet before the literal data (2 and 2: a message signed
// twice, as RFC 4880 §5.4 nests it, which §3.6 does not allow).
func sealOnePassStyle(t testing.TB, catalog []byte, parts []*part, signer *openpgp.Entity, opss, sigs int) *sealed {
	t.Helper()
	s := &sealed{key: make([]byte, 32), catalogPlain: catalog, parts: parts}
	rand.Read(s.key)
	key, ok := signer.SigningKey(time.Now())
	if !ok {
		t.Fatal("signer has no signing key")
	}
	// Version 3, binary document, SHA-256, algorithm, key id, nested = 0.
	ops := binary.BigEndian.AppendUint64([]byte{3, 0, 8, byte(key.PrivateKey.PubKeyAlgo)}, key.PrivateKey.KeyId)
	ops = append(ops, 0)
	id := key.PrivateKey.KeyId
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: key.PrivateKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: time.Now(), IssuerKeyId: &id}
	h, err := sig.PrepareSign(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(catalog)
	if err := sig.Sign(h, key.PrivateKey, nil); err != nil {
		t.Fatal(err)
	}
	var sb bytes.Buffer
	if err := sig.Serialize(&sb); err != nil {
		t.Fatal(err)
	}
	var inner []byte
	for i := range opss {
		last := byte(0) // PGPy's flag for the only signature; 1 on the last of several
		if opss > 1 && i == opss-1 {
			last = 1
		}
		inner = append(inner, newPacket(4, append(ops[:len(ops)-1:len(ops)-1], last))...)
	}
	inner = append(inner, newPacket(11, append([]byte{'b', 0, 0, 0, 0, 0}, catalog...))...)
	for range sigs {
		inner = append(inner, newPacket(2, packetBody(t, sb.Bytes()))...)
	}
	s.catalog = seipdByHand(s.key, inner)
	for _, p := range parts {
		p.sealed = seipdByHand(s.key, newPacket(11, append([]byte{'b', 0, 0, 0, 0, 0}, p.plain...)))
	}
	return s
}

// TestPGPyFramingSelfCheck makes sure the framing above is a signed
// OpenPGP message go-crypto reads and verifies, nested flag and all, so
// that a receiver refusing it is the receiver's fault.
func TestPGPyFramingSelfCheck(t *testing.T) {
	t.Parallel()
	alice, bob := newKey(t, "alice@example.org"), newKey(t, "bob@example.org")
	s := sealPGPyStyle(t, []byte(`{"catalog": true}`), nil, alice, 1)
	md, err := openpgp.ReadMessage(bytes.NewReader(append(s.pkesk(t, bob), s.catalog...)), openpgp.EntityList{bob, alice}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	if _, err := body.ReadFrom(md.UnverifiedBody); err != nil {
		t.Fatal(err)
	}
	if body.String() != `{"catalog": true}` || !md.IsSigned || md.SignatureError != nil {
		t.Fatalf("go-crypto reads %q signed %v err %v", body, md.IsSigned, md.SignatureError)
	}
	if o := openSEIPD(t, "catalog", s.catalog, s.key); o.ops == nil || o.ops.IsLast {
		t.Fatalf("catalog holds %v, want a one-pass signature with nested = 0", o.other)
	}
}

// TestBridgePGPyCatalog delivers catalogs framed as PGPy writes them to a
// real `bridge serve`: one signature reads as pass in INBOX (§3.6); two
// signature packets after the literal data are still refused, which for
// a recipient means Junk (§3.4), never INBOX.
func TestBridgePGPyCatalog(t *testing.T) {
	t.Parallel()
	bin := buildBridge(t, t.TempDir())
	p := newPeer(t, "example.org", 6, 3)
	alice := newKey(t, "alice@example.org")
	p.users["alice@example.org"] = alice
	const bob, erin = "bob@example.net", "erin@example.net"
	b := startBridge(t, bin, "example.net", []string{bob, erin}, 8, 2, []route{{"example.org", p.srv.URL, p.caFile}}, "")

	bobPub := readPublicKey(t, b.ticket.expect(200, "GET", wkdPath(bob), nil).body)
	m := multipartMessage("alice@example.org", "pgpy1.conformance")
	deliverByHand(t, b.ticket, sealPGPyStyle(t, m.catalog, m.parts, alice, 1), "alice@example.org", bob, bobPub)
	expectMail(t, "INBOX", mailbox(t, b.imap, bob, "pw-"+bob, "INBOX"), map[string]string{"pgpy1": string(m.raw)},
		map[string]string{"pgpy1": "pass"})
	if junk := mailbox(t, b.imap, bob, "pw-"+bob, "Junk"); len(junk) != 0 {
		t.Errorf("bob's Junk holds %d messages, want 0", len(junk))
	}

	// The same with the signature packet twice goes to erin, whose
	// mailboxes show nothing else. The server cannot open it (it holds no
	// private key), so it takes it; erin's bridge files it under Junk.
	erinPub := readPublicKey(t, b.ticket.expect(200, "GET", wkdPath(erin), nil).body)
	m2 := multipartMessage("alice@example.org", "pgpy2.conformance")
	deliverByHand(t, b.ticket, sealPGPyStyle(t, m2.catalog, m2.parts, alice, 2), "alice@example.org", erin, erinPub)
	if inbox, junk := counts(t, b.imap, erin, "pw-"+erin); inbox != 0 || junk != 1 {
		t.Errorf("catalog with two signature packets: erin's INBOX holds %d, Junk %d; want 0 and 1 (§3.6: exactly one signature packet)", inbox, junk)
	}
}

// counts logs in (which files waiting mail) and returns how many messages
// INBOX and Junk hold, without fetching any.
func counts(t *testing.T, addr, user, pass string) (inbox, junk uint32) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("IMAP login %s: %v", user, err)
	}
	for _, n := range []struct {
		box string
		out *uint32
	}{{"INBOX", &inbox}, {"Junk", &junk}} {
		d, err := c.Select(n.box, nil).Wait()
		if err != nil {
			t.Fatalf("IMAP select %s: %v", n.box, err)
		}
		*n.out = d.NumMessages
	}
	return inbox, junk
}
