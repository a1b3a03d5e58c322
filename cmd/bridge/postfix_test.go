package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"tollbridge/config"
	"tollbridge/internal/dnstest"
	"tollbridge/internal/mtatest"
	"tollbridge/internal/teststore"
)

// startPostfix runs mtatest's private Postfix (Debian's package: its own
// config, queue and data directories under a temporary folder, one SMTP
// listener on 127.0.0.1, never /etc/postfix or port 25) as the legacy
// world's relay: it accepts mail from loopback and sends each domain in
// routes to the host:port it maps to, over SMTP without TLS, and stops
// when the test ends. It skips the test where Postfix is not installed or
// cannot run (not root).
func startPostfix(t *testing.T, routes map[string]string) *mtatest.Postfix {
	t.Helper()
	transport := map[string]string{}
	for domain, hostport := range routes {
		host, port, _ := strings.Cut(hostport, ":")
		transport[domain] = fmt.Sprintf("smtp:[%s]:%s", host, port)
	}
	return mtatest.StartPostfix(t, mtatest.PostfixOptions{Hostname: "legacy.test", Routes: transport, Main: []string{
		"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
		"smtp_tls_security_level = none",
		"smtpd_tls_security_level = none",
		// Relay as an internet hop does: Postfix adds a missing Date:
		// or Message-ID: only for its own local clients, which would
		// break a DKIM signature that signed their absence.
		"local_header_rewrite_clients =",
		// Retry fast: the test waits on delivery, bounded.
		"queue_run_delay = 1s",
		"minimal_backoff_time = 1s",
		"maximal_backoff_time = 2s",
	}})
}

// TestPostfixLegacyWorld runs a bridge between mail clients and a private
// Postfix standing for the legacy world: the bridge's smarthost is the
// Postfix, which relays legacy.test to a sink and bridge.test to the
// bridge's MX. Mail from a bridge user to a legacy address arrives in the
// sink; mail a legacy server hands to Postfix for the bridge user arrives
// in the user's INBOX over IMAP, with the SPF, DKIM and DMARC results of
// the MX beside tollbridge=; mail forging a p=reject domain is refused by
// the MX and bounced by Postfix, never by the bridge.
func TestPostfixLegacyWorld(t *testing.T) {
	t.Parallel()
	sink := startSmarthost(t)
	mxAddr := freeAddr(t)
	pf := startPostfix(t, map[string]string{"legacy.test": sink.addr, "bridge.test": mxAddr})

	dns := dnstest.New(t)
	dns.SetTXT("legacy.test", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("_dmarc.legacy.test", "v=DMARC1; p=reject")
	dns.SetTXT("_dmarc.bank.test", "v=DMARC1; p=reject")

	dir := t.TempDir()
	res, err := writeInit(initOptions{Dir: dir, Domain: "bridge.test", Hostname: "localhost",
		Submission: freeAddr(t), IMAP: freeAddr(t), Ticket: freeAddr(t), MX: mxAddr,
		PowBits: 4, PowCount: 1, Smarthost: pf.Addr, SmarthostTLS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(res.path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DNS.Resolver = dns.Addr() // the MX's SPF, DKIM and DMARC lookups
	ctx, cancel := context.WithCancel(context.Background())
	b, err := newBridgeWith(ctx, cfg, testLog(), options{lookupSRV: notFoundSRV,
		firstRetry: 200 * time.Millisecond, maxRetry: time.Second})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := addUser(ctx, cfg, b.st, "carol@bridge.test", []byte("pw-carol"), teststore.Cheap); err != nil {
		cancel()
		b.close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { runAll(ctx, []*bridge{b}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// Out: bridge user → bridge's smarthost (Postfix) → the legacy sink.
	out := plainMessage("carol@bridge.test", "dave@legacy.test", "outbound")
	if err := submitRaw(b.addr("submission"), "carol@bridge.test", "pw-carol", []string{"dave@legacy.test"}, out); err != nil {
		t.Fatalf("submit: %v", err)
	}
	waitFor(t, "the legacy sink to get carol's mail through Postfix", 30*time.Second, func() bool { return len(sink.messages()) > 0 })
	got := sink.messages()[0]
	if got.from != "carol@bridge.test" || len(got.to) != 1 || got.to[0] != "dave@legacy.test" ||
		!bytes.Contains(got.data, []byte("Message-ID: <outbound@example.org>")) || !bytes.Contains(got.data, []byte("\r\n\r\noutbound\r\n")) {
		t.Errorf("sink got from %q to %q:\n%s", got.from, got.to, got.data)
	}
	if !bytes.Contains(got.data, []byte("by legacy.test (Postfix)")) {
		t.Errorf("the sink's copy did not pass through Postfix:\n%s", got.data)
	}

	// In: a legacy server hands mail to Postfix → the bridge's MX → INBOX.
	in := "From: Dave <dave@legacy.test>\r\nTo: carol@bridge.test\r\nSubject: inbound\r\nMessage-ID: <inbound@legacy.test>\r\n\r\ninbound\r\n"
	if err := smtpSend(pf.Addr, "dave@legacy.test", "carol@bridge.test", in); err != nil {
		t.Fatalf("hand mail to Postfix: %v", err)
	}
	var msg []byte
	waitFor(t, "carol's INBOX to get dave's mail through Postfix", 30*time.Second, func() bool {
		msg = inbox(t, b.addr("imap"), "carol@bridge.test", "pw-carol")["inbound@legacy.test"]
		return msg != nil
	})
	for _, want := range []string{
		"Authentication-Results: localhost; tollbridge=none;\r\n\tspf=pass smtp.mailfrom=dave@legacy.test;\r\n\tdkim=none;\r\n\tdmarc=pass header.from=legacy.test\r\n",
		"by legacy.test (Postfix)", "\r\n\r\ninbound\r\n",
	} {
		if !bytes.Contains(msg, []byte(want)) {
			t.Errorf("carol's copy lacks %q:\n%s", want, msg)
		}
	}

	// Forged: a p=reject domain's name without its signature. The MX
	// refuses it (550) and Postfix, which holds it, bounces it to the
	// legacy sender; the bridge stores nothing and sends nothing.
	forged := "From: Bank <alerts@bank.test>\r\nTo: carol@bridge.test\r\nSubject: forged\r\nMessage-ID: <forged@legacy.test>\r\n\r\nforged\r\n"
	if err := smtpSend(pf.Addr, "dave@legacy.test", "carol@bridge.test", forged); err != nil {
		t.Fatalf("hand forged mail to Postfix: %v", err)
	}
	waitFor(t, "Postfix to bounce the forged mail to dave", 30*time.Second, func() bool { return len(sink.messages()) > 1 })
	bounce := sink.messages()[1]
	if bounce.from != "" || len(bounce.to) != 1 || bounce.to[0] != "dave@legacy.test" ||
		!bytes.Contains(bounce.data, []byte("5.7.1")) || !bytes.Contains(bounce.data, []byte("DMARC policy of bank.test")) {
		t.Errorf("sink got from %q to %q, want Postfix's bounce of the forged mail:\n%s", bounce.from, bounce.to, bounce.data)
	}
	if box := inbox(t, b.addr("imap"), "carol@bridge.test", "pw-carol"); len(box) != 1 {
		t.Errorf("carol has %d messages, want only dave's", len(box))
	}

	// Carol's own mail, DKIM-signed by the bridge on its way out, comes
	// back through a legacy mailing list. Its From: is a local user, which
	// only the bridge's own aligned DKIM signature lets pass.
	keys, err := loadDKIM(cfg.Server.DataDir, cfg.Server.Domains)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys["bridge.test"] {
		txt, err := k.Record()
		if err != nil {
			t.Fatal(err)
		}
		dns.SetTXT(k.Selector+"._domainkey.bridge.test", txt)
	}
	echo := strings.Join(got.dkim, "") + string(got.data)
	if err := smtpSend(pf.Addr, "list@legacy.test", "carol@bridge.test", echo); err != nil {
		t.Fatalf("hand carol's signed mail back to Postfix: %v", err)
	}
	waitFor(t, "carol's own signed mail to come back to her INBOX", 30*time.Second, func() bool {
		msg = inbox(t, b.addr("imap"), "carol@bridge.test", "pw-carol")["outbound@example.org"]
		return msg != nil
	})
	for _, want := range []string{"tollbridge=none;\r\n", "\tdkim=pass header.d=bridge.test", "\tdmarc=none header.from=bridge.test\r\n"} {
		if !bytes.Contains(msg, []byte(want)) {
			t.Errorf("carol's echoed mail lacks %q:\n%s", want, msg)
		}
	}
}

// smtpSend hands one message to the SMTP server at addr, as a legacy
// server would.
func smtpSend(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("peer.legacy.test"); err != nil {
		return err
	}
	if err := c.SendMail(from, []string{to}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}
