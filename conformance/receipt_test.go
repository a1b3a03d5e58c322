package conformance_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Delivery receipts (docs/protocol.md §3.3.3) as a sending server checks
// them, written from the text alone.

const (
	receiptKey       = "receipt-server-key.asc" // receipts@example.net, public
	receiptHeader    = "receipt-header.json"    // the header bytes as uploaded
	receiptSignature = "receipt-signature.txt"  // the 202's "receipt"
)

// verifyReceipt is §3.3.3's check: the receipt passes when it decodes
// (standard base64) to exactly one signature packet of type 0x00 that
// verifies with key over header, byte for byte; key must be the server
// key of domain (user ID receipts@domain).
func verifyReceipt(header []byte, receipt string, key *openpgp.Entity, domain string) error {
	if !hasUserID(key, "receipts@"+domain) {
		return fmt.Errorf("key is not the server key of %s", domain)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(receipt)
	if err != nil {
		return fmt.Errorf("receipt is not standard base64: %w", err)
	}
	r := bytes.NewReader(sig)
	p, err := packet.Read(r)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	if s, ok := p.(*packet.Signature); !ok || s.SigType != packet.SigTypeBinary || r.Len() != 0 {
		return errors.New("receipt is not exactly one binary document signature")
	}
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{key}, bytes.NewReader(header), bytes.NewReader(sig), nil); err != nil {
		return fmt.Errorf("receipt signature: %w", err)
	}
	return nil
}

// TestVectorsReceipt checks vector (g) with verifyReceipt: it passes, and
// fails when any header byte changes, when it is checked with another key,
// or when the receipt is not exactly one binary signature (§3.3.3 "another
// packet or type, another key, other bytes").
func TestVectorsReceipt(t *testing.T) {
	startVectorTest(t)
	key := readArmoredKey(t, receiptKey)
	header := readVector(t, receiptHeader)
	receipt := strings.TrimSuffix(string(readVector(t, receiptSignature)), "\n")
	if !bytes.HasSuffix(header, []byte("}\n")) {
		t.Errorf("vector %s does not end in one LF after the JSON, as §3.9 (g) says", receiptHeader)
	}
	if err := verifyReceipt(header, receipt, key, "example.net"); err != nil {
		t.Fatalf("the vector does not pass: %v", err)
	}
	other := newServerKey(t, "example.net")
	var otherSig bytes.Buffer
	if err := openpgp.DetachSign(&otherSig, other, bytes.NewReader(header), nil); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(receipt)
	if err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]struct {
		header  []byte
		receipt string
		key     *openpgp.Entity
	}{
		"one header byte changed":     {bytes.Replace(header, []byte(`"version":1`), []byte(`"version":2`), 1), receipt, key},
		"header without its final LF": {bytes.TrimSuffix(header, []byte("\n")), receipt, key},
		"checked with another key":    {header, receipt, other},
		"signed by another key":       {header, base64.StdEncoding.EncodeToString(otherSig.Bytes()), key},
		"two signature packets":       {header, base64.StdEncoding.EncodeToString(append(append([]byte{}, raw...), raw...)), key},
		"receipt armored":             {header, "-----BEGIN PGP SIGNATURE-----", key},
		"no receipt":                  {header, "", key},
	} {
		if err := verifyReceipt(c.header, c.receipt, c.key, "example.net"); err == nil {
			t.Errorf("%s: passes, want fail (§3.3.3)", what)
		}
	}
}

// TestBridgeChecksReceipts: §3.3.3 "The sending server verifies every
// receipt when the 202 arrives, with the server key of the recipient's
// domain … A failed or unchecked receipt changes nothing about the
// delivery, which the 202 has completed: the sender logs it, counts it and
// keeps the result with the receipt". bob's bridge sends to this suite's
// peer twice: once the peer's receipt is good, once it is signed over
// other bytes. Both deliveries stand (no retry, no bounce); `bridge queue
// --done` shows the checks, pass and fail.
func TestBridgeChecksReceipts(t *testing.T) {
	t.Parallel()
	bin := buildBridge(t, t.TempDir())
	p := newPeer(t, "example.org", 6, 3)
	p.users["alice@example.org"] = newKey(t, "alice@example.org")
	const bob, bobPW = "bob@example.net", "pw-bob@example.net"
	b := startBridge(t, bin, "example.net", []string{bob}, 8, 2, []route{{"example.org", p.srv.URL, p.caFile}}, "")
	submit(t, b.submission, bob, bobPW, []string{"alice@example.org"}, sentMessage())
	p.awaitCompleted(t, 1)
	awaitReceiptChecks(t, bin, b, 1)
	p.mu.Lock()
	p.badReceipt = true
	p.mu.Unlock()
	submit(t, b.submission, bob, bobPW, []string{"alice@example.org"}, sentMessage())
	p.awaitCompleted(t, 1)
	checks := awaitReceiptChecks(t, bin, b, 2)
	if !strings.HasPrefix(checks[1], "pass") {
		t.Errorf("good receipt: check %q, want pass", checks[1])
	}
	if !strings.HasPrefix(checks[0], "fail") {
		t.Errorf("receipt signed over other bytes: check %q, want fail", checks[0])
	}
	p.mu.Lock()
	asked := p.asked[hashAddr(t, "alice@example.org")]
	p.mu.Unlock()
	if asked != 2 {
		t.Errorf("the peer saw %d ticket requests for alice, want 2: a bad receipt must not make the sender deliver again", asked)
	}
	if inbox := mailbox(t, b.imap, bob, bobPW, "INBOX"); len(inbox) != 0 {
		t.Errorf("bob's INBOX has %d messages, want none: a bad receipt is no bounce (the delivery stands)", len(inbox))
	}
}

// awaitReceiptChecks polls `bridge queue --done` (up to 30 s) until it
// lists n delivered rows for alice, and returns their RECEIPT column,
// newest first.
func awaitReceiptChecks(t *testing.T, bin string, b *bridgeProc, n int) []string {
	t.Helper()
	var out string
	for range 300 {
		out = runCLI(t, bin, "queue", "--done", "--config", b.config)
		var checks []string
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 6 && f[1] == "alice@example.org" {
				if f[2] != "delivered" {
					t.Fatalf("delivery to alice: outcome %s, want delivered:\n%s", f[2], out)
				}
				// RECEIPT is the last column and may hold spaces.
				checks = append(checks, line[strings.LastIndex(line, "  ")+2:])
			}
		}
		if len(checks) >= n {
			return checks
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("bridge queue --done lists fewer than %d deliveries to alice after 30 s:\n%s", n, out)
	return nil
}
