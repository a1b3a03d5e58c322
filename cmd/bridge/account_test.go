package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/store"
)

// bridgeExec runs the built bridge binary, as an admin's shell would, in
// its own process beside the bridges the test runs: stdin is /dev/null
// unless given.
func bridgeExec(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	bin, err := bridgeBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// writeSecret writes a password or code file.
func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// imapLogin logs in over IMAP; the error is the login's.
func imapLogin(addr, user, pw string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// selectInbox logs in over IMAP and selects INBOX, failing t otherwise;
// the caller closes the client.
func selectInbox(t *testing.T, addr, user, pw string) (*imapclient.Client, *imap.SelectData) {
	t.Helper()
	c, err := imapLogin(addr, user, pw)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c, sel
}

// smtpLogin authenticates a submission session.
func smtpLogin(addr, user, pw string) (*smtp.Client, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Hello("client.test"); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Auth(sasl.NewPlainClient("", user, pw)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

var recoveryRE = regexp.MustCompile(`[0-9A-Z]{4}(-[0-9A-Z]{4}){7}`)

// TestPasswdAndRecovery is issue 14 items 1 and 2 through the CLI (the
// built binary, another process on the running bridge's store) and real
// listeners: after `user passwd` the new password works over IMAP and
// SMTP and the old one fails, also for sessions logged in before (IMAP:
// BYE at the next command; SMTP: 421); `user recover` with the code from
// `user add --recovery-file` sets a password and replaces the code.
func TestPasswdAndRecovery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startSites(t, dir, twoSites()[:1], "", 4, 1)
	cfg := s.layout.configPath(s.layout.Sites[0])
	imapAddr, smtpAddr := s.bridges[0].addr("imap"), s.bridges[0].addr("submission")
	const alice, oldPW = "alice@example.org", "pw-alice@example.org"

	oldIMAP, err := imapLogin(imapAddr, alice, oldPW)
	if err != nil {
		t.Fatal(err)
	}
	defer oldIMAP.Close()
	if _, err := oldIMAP.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idling, err := imapLogin(imapAddr, alice, oldPW)
	if err != nil {
		t.Fatal(err)
	}
	defer idling.Close()
	if _, err := idling.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := idling.Idle(); err != nil {
		t.Fatal(err)
	}
	oldSMTP, err := smtpLogin(smtpAddr, alice, oldPW)
	if err != nil {
		t.Fatal(err)
	}
	defer oldSMTP.Close()

	oldFile := writeSecret(t, dir, "old", oldPW)
	newFile := writeSecret(t, dir, "new", "a new passphrase")
	if code, _, errs := bridgeExec(t, "", "user", "passwd", "--config", cfg, "--old-password-file", newFile, "--password-file", oldFile, alice); code != 1 || !strings.Contains(errs, "wrong password") {
		t.Fatalf("passwd with a wrong old password: %d %s", code, errs)
	}
	if code, out, errs := bridgeExec(t, "", "user", "passwd", "--config", cfg, "--old-password-file", oldFile, "--password-file", newFile, alice); code != 0 {
		t.Fatalf("passwd: %d %s %s", code, out, errs)
	}

	// Sessions logged in with the old password end: an idling one on its
	// own, the others at their next command.
	select {
	case <-idling.Closed():
	case <-time.After(10 * time.Second):
		t.Error("an IDLE session logged in with the old password is still open after passwd")
	}
	if err := oldIMAP.Noop().Wait(); err == nil {
		t.Error("an IMAP session logged in with the old password still answers after passwd")
	}
	var se *smtp.SMTPError
	if err := oldSMTP.Mail(alice, nil); !errors.As(err, &se) || se.Code != 421 {
		t.Errorf("MAIL FROM in an SMTP session logged in with the old password: %v, want 421", err)
	}
	// The old password fails, the new one works, on both listeners.
	if c, err := imapLogin(imapAddr, alice, oldPW); err == nil {
		c.Close()
		t.Error("IMAP login with the old password works after passwd")
	}
	if err := submitRaw(smtpAddr, alice, oldPW, []string{alice}, plainMessage(alice, alice, "old.pw")); err == nil {
		t.Error("SMTP with the old password works after passwd")
	}
	if err := submitRaw(smtpAddr, alice, "a new passphrase", []string{alice}, plainMessage(alice, alice, "new.pw")); err != nil {
		t.Fatalf("SMTP with the new password: %v", err)
	}
	waitFor(t, "the message to herself", 20*time.Second, func() bool { return s.unfiled(0, alice) == 1 })
	if box := inbox(t, imapAddr, alice, "a new passphrase"); len(box) != 1 {
		t.Fatalf("IMAP with the new password shows %d messages, want 1", len(box))
	}

	// A user made with --recovery-file gets the code there, 0600.
	recFile := filepath.Join(dir, "carol.recovery")
	if code, out, errs := bridgeExec(t, "", "user", "add", "--config", cfg, "--password-file", oldFile, "--recovery-file", recFile, "carol@example.org"); code != 0 || recoveryRE.MatchString(out) {
		t.Fatalf("user add --recovery-file: %d %q %s (the code must not be printed)", code, out, errs)
	}
	fi, err := os.Stat(recFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("recovery file: %v %v", fi, err)
	}
	first, _ := os.ReadFile(recFile)
	if !recoveryRE.Match(first) {
		t.Fatalf("recovery file holds %q", first)
	}
	// Without --recovery-file the code is printed, once.
	if code, out, _ := bridgeExec(t, "", "user", "add", "--config", cfg, "--password-file", oldFile, "dave@example.org"); code != 0 || !recoveryRE.MatchString(out) {
		t.Fatalf("user add prints no recovery code: %d %q", code, out)
	}

	// Carol forgot her password: the code sets a new one and is replaced.
	carolPW := writeSecret(t, dir, "carol.new", "carol's new password")
	if code, out, errs := bridgeExec(t, "", "user", "recover", "--config", cfg, "--recovery-file", recFile, "--password-file", carolPW, "carol@example.org"); code != 0 {
		t.Fatalf("recover: %d %s %s", code, out, errs)
	}
	second, _ := os.ReadFile(recFile)
	if !recoveryRE.Match(second) || bytes.Equal(first, second) {
		t.Fatalf("recover did not write a new code: %q then %q", first, second)
	}
	if fi, _ := os.Stat(recFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("new recovery file mode %v", fi.Mode())
	}
	c, err := imapLogin(imapAddr, "carol@example.org", "carol's new password")
	if err != nil {
		t.Fatalf("IMAP with the recovered password: %v", err)
	}
	c.Close()
	// The first code is void now.
	stale := writeSecret(t, dir, "stale", strings.ToLower(string(bytes.TrimSpace(first))))
	if code, _, errs := bridgeExec(t, "", "user", "recover", "--config", cfg, "--recovery-file", stale, "--password-file", oldFile, "carol@example.org"); code != 1 || !strings.Contains(errs, "wrong recovery code") {
		t.Fatalf("recover with the used code: %d %s", code, errs)
	}
}

// TestRemoveUser is issue 14 item 3: `user remove` refuses without a
// terminal's yes, and with --yes deletes the user's mail and keys, takes
// them out of aliases (reporting each), and WKD and tickets answer 404;
// the address can then be taken again, with a new key.
func TestRemoveUser(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startSites(t, dir, twoSites()[:1], "", 4, 1)
	cfg := s.layout.configPath(s.layout.Sites[0])
	const alice, carol = "alice@example.org", "carol@example.org"
	pwFile := writeSecret(t, dir, "pw", "carol's password")
	if code, _, errs := bridgeExec(t, "", "user", "add", "--config", cfg, "--password-file", pwFile, carol); code != 0 {
		t.Fatal(errs)
	}
	for _, args := range [][]string{{"team@example.org", carol, alice}, {"solo@example.org", carol}} {
		if code, _, errs := bridgeExec(t, "", append([]string{"alias", "add", "--config", cfg}, args...)...); code != 0 {
			t.Fatal(errs)
		}
	}
	if err := s.submit(0, alice, "pw-alice@example.org", []string{carol}, plainMessage(alice, carol, "for.carol")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mail for carol", 20*time.Second, func() bool { return s.unfiled(0, carol) == 1 })
	st := s.bridges[0].st
	old, err := st.UserByAddress(t.Context(), carol)
	if err != nil {
		t.Fatal(err)
	}
	ticketAddr := s.bridges[0].addr("ticket")
	wkd := fmt.Sprintf("https://%s/.well-known/openpgpkey/example.org/hu/%s?l=carol", ticketAddr, keyring.WKDHash("carol"))
	if got := httpStatus(t, "GET", wkd, ""); got != http.StatusOK {
		t.Fatalf("WKD for carol before removal: %d", got)
	}

	// A script's stdin is no terminal: no removal without --yes.
	if code, _, errs := bridgeExec(t, "", "user", "remove", "--config", cfg, carol); code != 1 || !strings.Contains(errs, "--yes") {
		t.Fatalf("remove without --yes: %d %s", code, errs)
	}
	if _, err := st.UserByAddress(t.Context(), carol); err != nil {
		t.Fatalf("carol went without confirmation: %v", err)
	}
	code, out, errs := bridgeExec(t, "", "user", "remove", "--config", cfg, "--yes", carol)
	if code != 0 {
		t.Fatalf("remove --yes: %d %s %s", code, out, errs)
	}
	for _, want := range []string{"1 messages", "alias team@example.org no longer delivers", "alias solo@example.org delivered only to " + carol} {
		if !strings.Contains(out, want) {
			t.Errorf("remove's report lacks %q:\n%s", want, out)
		}
	}
	if _, err := st.UserByAddress(t.Context(), carol); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("carol still there: %v", err)
	}
	if n, _ := st.UnfiledCount(t.Context(), old.ID); n != 0 {
		t.Fatalf("%d messages of carol left", n)
	}
	if got := httpStatus(t, "GET", wkd, ""); got != http.StatusNotFound {
		t.Errorf("WKD for removed carol: %d, want 404", got)
	}
	req := fmt.Sprintf(`{"sender": %q, "recipient": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 100}}`,
		keyring.HashNormalized("x@example.net"), keyring.HashNormalized(carol))
	if got := httpStatus(t, "POST", "https://"+ticketAddr+"/v1/tickets", req); got != http.StatusNotFound {
		t.Errorf("ticket request for removed carol: %d, want 404", got)
	}
	if a, err := st.AliasByAddress(t.Context(), "team@example.org"); err != nil || strings.Join(a.Targets, ",") != alice {
		t.Errorf("alias team: %+v %v", a, err)
	}

	// The address is free again, with a new key.
	if code, _, errs := bridgeExec(t, "", "user", "add", "--config", cfg, "--password-file", pwFile, carol); code != 0 {
		t.Fatal(errs)
	}
	again, err := st.UserByAddress(t.Context(), carol)
	if err != nil || again.Fingerprint == old.Fingerprint {
		t.Fatalf("re-added carol: %v, same key %v", err, again != nil && again.Fingerprint == old.Fingerprint)
	}
}

// httpStatus makes one request to the ticket listener and returns the
// status.
func httpStatus(t *testing.T, method, url, body string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRotateKeyBetweenBridges is issue 14 item 4 between two bridges: bob
// rotates his key with the CLI; WKD serves the new key; mail flows both
// ways with no `keys accept` (alice's bridge follows the certified
// transition, both for mail to bob and for bob's signature), and bob's
// older mail (filed before, and waiting unfiled, sealed to the old key)
// stays readable over IMAP. A key certified by another key is refused:
// alice's mail bounces and `keys list` shows it waiting for an admin.
func TestRotateKeyBetweenBridges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startSites(t, dir, twoSites(), "", 4, 1)
	const alice, bob = "alice@example.org", "bob@example.net"
	const alicePW, bobPW = "pw-" + alice, "pw-" + bob
	orgCfg, netCfg := s.layout.configPath(s.layout.Sites[0]), s.layout.configPath(s.layout.Sites[1])
	send := func(i int, from, pw, to, subject string) {
		t.Helper()
		if err := s.submit(i, from, pw, []string{to}, plainMessage(from, to, subject)); err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
	}
	send(0, alice, alicePW, bob, "before.1")
	waitFor(t, "before.1 at bob's", 30*time.Second, func() bool { return s.unfiled(1, bob) == 1 })
	if box := inbox(t, s.bridges[1].addr("imap"), bob, bobPW); len(box) != 1 {
		t.Fatalf("bob has %d messages before the rotation", len(box))
	}
	send(0, alice, alicePW, bob, "before.2")
	waitFor(t, "before.2 at bob's", 30*time.Second, func() bool { return s.unfiled(1, bob) == 1 })
	st := s.bridges[1].st
	oldKey, _ := st.UserByAddress(t.Context(), bob)

	pwFile := writeSecret(t, dir, "bob.pw", bobPW)
	code, out, errs := bridgeExec(t, "", "user", "rotate-key", "--config", netCfg, "--password-file", pwFile, bob)
	if code != 0 || !recoveryRE.MatchString(out) {
		t.Fatalf("rotate-key: %d %s %s", code, out, errs)
	}
	newKey, _ := st.UserByAddress(t.Context(), bob)
	if newKey.Fingerprint == oldKey.Fingerprint {
		t.Fatal("rotate-key kept the key")
	}
	if got := wkdFingerprint(t, s.bridges[1].addr("ticket"), "example.net", "bob"); got != newKey.Fingerprint {
		t.Fatalf("WKD serves %s, want the new key %s", got, newKey.Fingerprint)
	}

	send(0, alice, alicePW, bob, "after.1")
	waitFor(t, "after.1 at bob's", 30*time.Second, func() bool { return s.unfiled(1, bob) == 2 })
	if _, out, _ := bridgeExec(t, "", "keys", "list", "--config", orgCfg); !strings.Contains(out, newKey.Fingerprint) {
		t.Errorf("alice's bridge did not pin bob's new key:\n%s", out)
	}
	send(1, bob, bobPW, alice, "after.reply")
	waitFor(t, "bob's reply at alice's", 30*time.Second, func() bool { return s.unfiled(0, alice) == 1 })

	box := inbox(t, s.bridges[1].addr("imap"), bob, bobPW)
	for _, subject := range []string{"before.1", "before.2", "after.1"} {
		m, ok := box[subject+"@example.org"]
		if !ok || !bytes.Contains(m, []byte("\r\n\r\n"+subject+"\r\n")) {
			t.Errorf("bob cannot read %s after the rotation (%d messages)", subject, len(box))
		}
	}
	reply, ok := inbox(t, s.bridges[0].addr("imap"), alice, alicePW)["after.reply@example.org"]
	if !ok {
		t.Fatal("bob's reply is not in alice's INBOX")
	}
	if _, verdict := stripTrace(reply); verdict != "pass" {
		t.Errorf("bob's reply signed with the new key shows tollbridge=%s, want pass", verdict)
	}

	// Someone replaces bob's key with one the old key never certified.
	_, other, err := keyring.Generate("mallory@example.net", []byte("x"), teststore.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	forged, forgedEnt, err := keyring.Rotate(other, bob)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keyring.Protect(forgedEnt, []byte(bobPW), teststore.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateKeys(t.Context(), newKey.ID, newKey.Generation, store.KeyUpdate{
		Fingerprint: forged.Fingerprint, PublicKey: forged.Public, PrivateKey: priv, RetiredKeys: newKey.RetiredKeys,
	}); err != nil {
		t.Fatal(err)
	}
	send(0, alice, alicePW, bob, "tampered")
	waitFor(t, "the bounce at alice's", 30*time.Second, func() bool { return s.unfiled(0, alice) == 1 })
	if n := s.unfiled(1, bob); n != 0 {
		t.Errorf("mail sealed to an uncertified key reached bob (%d waiting)", n)
	}
	if _, out, _ := bridgeExec(t, "", "keys", "list", "--config", orgCfg); !strings.Contains(out, forged.Fingerprint) {
		t.Errorf("keys list does not show the uncertified key waiting:\n%s", out)
	}
}

// wkdFingerprint fetches local@domain's key from WKD at the ticket
// listener addr.
func wkdFingerprint(t *testing.T, addr, domain, local string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get(fmt.Sprintf("https://%s/.well-known/openpgpkey/%s/hu/%s?l=%s", addr, domain, keyring.WKDHash(local), local))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	e, err := keyring.ReadKey(b.Bytes())
	if err != nil {
		t.Fatalf("WKD: HTTP %d: %v", resp.StatusCode, err)
	}
	return keyring.Fingerprint(e)
}

// TestAccountCommandsHelpAndConfirm: every new command answers --help on
// stdout with exit 0, and `user remove` removes nothing unless the answer
// on stdin is yes.
func TestAccountCommandsHelpAndConfirm(t *testing.T) {
	t.Parallel()
	for _, words := range []string{"user add", "user passwd", "user recover", "user remove", "user rotate-key", "user allow"} {
		args := append(strings.Fields(words), "--help")
		if code, out, _ := cli(t, "", args...); code != 0 || !strings.HasPrefix(out, "usage: bridge "+words) {
			t.Errorf("%s --help: %d %q", words, code, out)
		}
	}
	dir := t.TempDir()
	if code, _, errs := cli(t, "", "init", "--dir", dir, "--domain", "example.org"); code != 0 {
		t.Fatal(errs)
	}
	cfg := filepath.Join(dir, "config.toml")
	if code, _, errs := cli(t, "pw\n", "user", "add", "--config", cfg, "--password-file", "-", "ann@example.org"); code != 0 {
		t.Fatal(errs)
	}
	for _, answer := range []string{"", "no\n", "y\n"} {
		if code, _, errs := cli(t, answer, "user", "remove", "--config", cfg, "ann@example.org"); code != 1 || !strings.Contains(errs, "not confirmed") {
			t.Fatalf("answer %q: %d %s", answer, code, errs)
		}
	}
	if code, out, errs := cli(t, "yes\n", "user", "remove", "--config", cfg, "ann@example.org"); code != 0 || !strings.Contains(out, "removed ann@example.org") {
		t.Fatalf("answer yes: %d %s %s", code, out, errs)
	}
}
