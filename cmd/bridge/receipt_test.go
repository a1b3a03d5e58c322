package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/keyring"
)

// submitDSN sends msg from user to rcpt through the submission listener
// at addr with RFC 3461 parameters: ENVID envid, NOTIFY notify, ORCPT rcpt.
func submitDSN(addr, user, pw, rcpt, envid string, notify []smtp.DSNNotify, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if ok, _ := c.Extension("DSN"); !ok {
		return errNoDSN
	}
	if err := c.Auth(sasl.NewPlainClient("", user, pw)); err != nil {
		return err
	}
	if err := c.Mail(user, &smtp.MailOptions{EnvelopeID: envid, Return: smtp.DSNReturnHeaders}); err != nil {
		return err
	}
	ropts := &smtp.RcptOptions{Notify: notify, OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: rcpt}
	if err := c.Rcpt(rcpt, ropts); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

var errNoDSN = &smtp.SMTPError{Code: 502, Message: "submission does not advertise DSN"}

// notices are the delivery notices in a user's INBOX, by Final-Recipient
// and action, in no order.
func notices(t *testing.T, s *sites, i int, user, pw string) []string {
	t.Helper()
	var out []string
	for _, m := range inbox(t, s.bridges[i].addr("imap"), user, pw) {
		if bytes.Contains(m, []byte("report-type=delivery-status")) {
			out = append(out, string(m))
		}
	}
	return out
}

// TestSuccessNoticeCarriesVerifiedReceipt is issue 16 item 2 between two
// real bridges: submission advertises DSN; NOTIFY=SUCCESS gets alice an
// RFC 3464 success notice in her INBOX carrying bob's server's receipt
// (and the header it signs), verified against receipts@example.net's key,
// with ENVID and ORCPT given back; the deliveries log keeps the check. A
// receipt that does not verify (alice's bridge holds another key for
// receipts@example.net) is logged, counted and shown as fail, and the
// mail is delivered all the same. NOTIFY=NEVER suppresses a bounce.
func TestSuccessNoticeCarriesVerifiedReceipt(t *testing.T) {
	t.Parallel()
	s := startSites(t, t.TempDir(), twoSites(), "", 4, 1)
	alice, pw, sub := "alice@example.org", "pw-alice@example.org", s.bridges[0].addr("submission")
	success := []smtp.DSNNotify{smtp.DSNNotifySuccess}
	if err := submitDSN(sub, alice, pw, "bob@example.net", "env-1", success, plainMessage(alice, "bob@example.net", "receipt.1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the success notice", 30*time.Second, func() bool { return s.unfiled(0, alice) == 1 })
	got := notices(t, s, 0, alice, pw)
	if len(got) != 1 {
		t.Fatalf("%d notices, want 1", len(got))
	}
	for _, want := range []string{"Action: delivered", "Status: 2.0.0", "Original-Envelope-Id: env-1",
		"Original-Recipient: rfc822;bob@example.net", "Final-Recipient: rfc822; bob@example.net",
		`filename="receipt.sig"`, `filename="header.json"`, "receipts@example.net", ": pass."} {
		if !strings.Contains(got[0], want) {
			t.Errorf("success notice lacks %q:\n%s", want, got[0])
		}
	}
	ds, err := s.bridges[0].st.Deliveries(t.Context(), 10)
	if err != nil || len(ds) != 1 || ds[0].ReceiptCheck != "pass" || len(ds[0].Receipt) == 0 {
		t.Fatalf("deliveries %+v, %v; want one with a receipt that passed", ds, err)
	}
	checkOffline(t, s, got[0])

	// Another key pinned for receipts@example.net: the receipt fails.
	other, err := keyring.LoadOrCreateServiceKey(t.TempDir()+"/other.key", "receipts@example.net")
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := other.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	pin, err := s.bridges[0].st.PinnedKey(t.Context(), "receipts@example.net")
	if err != nil {
		t.Fatalf("receipts@example.net was not pinned by the first check: %v", err)
	}
	if err := s.bridges[0].st.ReplacePin(t.Context(), "receipts@example.net", pin.Fingerprint, keyring.Fingerprint(other), pub.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := submitDSN(sub, alice, pw, "bob@example.net", "env-2", success, plainMessage(alice, "bob@example.net", "receipt.2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second notice", 30*time.Second, func() bool { return s.unfiled(0, alice) == 1 })
	if bad := metric(t, s.bridges[0], "tollbridge_receipts_bad_total"); bad != 1 {
		t.Errorf("bad receipts counted: %v, want 1", bad)
	}
	if n := s.unfiled(1, "bob@example.net"); n != 2 {
		t.Errorf("bob has %d messages waiting, want 2: a bad receipt must not undo the delivery", n)
	}
	ds, _ = s.bridges[0].st.Deliveries(t.Context(), 1)
	if len(ds) != 1 || !strings.HasPrefix(ds[0].ReceiptCheck, "fail: ") {
		t.Errorf("deliveries %+v; want the last receipt check to be fail", ds)
	}
	for _, n := range notices(t, s, 0, alice, pw) {
		if strings.Contains(n, "env-2") && !strings.Contains(n, ": fail: ") {
			t.Errorf("the second notice does not say the receipt failed:\n%s", n)
		}
	}

	// NOTIFY=NEVER: an unknown recipient bounces without a notice.
	never := []smtp.DSNNotify{smtp.DSNNotifyNever}
	if err := submitDSN(sub, alice, pw, "nobody@example.net", "env-3", never, plainMessage(alice, "nobody@example.net", "never")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bounce", 30*time.Second, func() bool {
		ds, _ := s.bridges[0].st.Deliveries(t.Context(), 1)
		return len(ds) == 1 && ds[0].Outcome == "bounced"
	})
	if n := s.unfiled(0, alice); n != 0 {
		t.Errorf("NOTIFY=NEVER: %d notices, want none", n)
	}
}

// checkOffline runs bridge queue --done and bridge receipt verify on the
// saved notice: with the bridge's pinned key, with bob's server's key
// given, and with another key (which must fail).
func checkOffline(t *testing.T, s *sites, notice string) {
	t.Helper()
	cfg := s.bridges[0].cfg.File
	if code, out, errs := cli(t, "", "queue", "--config", cfg, "--done"); code != 0 || !strings.Contains(out, "bob@example.net") || !strings.Contains(out, "pass") {
		t.Errorf("queue --done: %d %q %q", code, out, errs)
	}
	dir := t.TempDir()
	file := dir + "/notice.eml"
	if err := os.WriteFile(file, []byte(notice), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli(t, "", "receipt", "verify", "--config", cfg, file); code != 0 || !strings.Contains(out, "receipt: pass") || !strings.Contains(out, "the header names it: yes") {
		t.Errorf("receipt verify --config: %d %q %q", code, out, errs)
	}
	key := dir + "/bob-server.pgp"
	var b bytes.Buffer
	if err := s.bridges[1].serverKeys["example.net"].Serialize(&b); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(key, b.Bytes(), 0o600)
	if code, out, errs := cli(t, "", "receipt", "verify", "--key", key, file); code != 0 || !strings.Contains(out, "receipt: pass") {
		t.Errorf("receipt verify --key: %d %q %q", code, out, errs)
	}
	other, err := keyring.LoadOrCreateServiceKey(dir+"/other.key", "receipts@example.net")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	other.Serialize(&b)
	os.WriteFile(key, b.Bytes(), 0o600)
	if code, out, _ := cli(t, "", "receipt", "verify", "--key", key, file); code != 1 || !strings.Contains(out, "receipt: fail") {
		t.Errorf("receipt verify with another key: exit %d, %q; want 1 and fail", code, out)
	}
}
