package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"tollbridge/config"
	"tollbridge/internal/dnstest"
	"tollbridge/internal/teststore"
)

// postfix is a private Postfix (Debian's package) run for one test: its
// own config, queue and data directories under a temporary folder, one
// SMTP listener on 127.0.0.1. It never touches /etc/postfix or port 25.
type postfix struct {
	bin  string // the postfix command
	dir  string // etc/ (config_directory), queue/ and data/
	addr string // its smtpd
}

// startPostfix runs a Postfix on 127.0.0.1 that accepts mail from
// loopback and sends each domain in routes to the host:port it maps to,
// and stops it when the test ends. It skips the test where Postfix is
// not installed or cannot run (not root).
func startPostfix(t *testing.T, routes map[string]string) *postfix {
	t.Helper()
	bin, err := exec.LookPath("postfix")
	if err != nil {
		for _, p := range []string{"/usr/sbin/postfix", "/sbin/postfix"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Skip("postfix is not installed (Debian: apt-get install postfix)")
	}
	if os.Geteuid() != 0 {
		t.Skip("a private Postfix must be started as root (it drops to mail_owner)")
	}
	// Postfix's daemons run as the postfix user and must reach the queue:
	// t.TempDir makes folders only root can enter.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pf := &postfix{bin: bin, dir: dir, addr: freeAddr(t)}
	var transport []string
	for domain, hostport := range routes {
		host, port, _ := strings.Cut(hostport, ":")
		transport = append(transport, fmt.Sprintf("%s=smtp:[%s]:%s", domain, host, port))
	}
	mainCF := strings.Join([]string{
		"compatibility_level = 3.6",
		// Apart from the config: Postfix wants everything under
		// config_directory owned by root, the queue by mail_owner.
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"myhostname = legacy.test",
		"mydomain = legacy.test",
		"mydestination =",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"relay_domains = " + strings.Join(mapKeys(routes), ", "),
		"transport_maps = inline:{ " + strings.Join(transport, ", ") + " }",
		"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
		"smtp_tls_security_level = none",
		"smtpd_tls_security_level = none",
		"smtputf8_enable = no",
		"alias_maps =",
		"alias_database =",
		"biff = no",
		"smtp_host_lookup = native",
		"smtpd_peername_lookup = no",
		// Relay as an internet hop does: Postfix adds a missing Date:
		// or Message-ID: only for its own local clients, which would
		// break a DKIM signature that signed their absence.
		"local_header_rewrite_clients =",
		// Retry fast: the test waits on delivery, bounded.
		"queue_run_delay = 1s",
		"minimal_backoff_time = 1s",
		"maximal_backoff_time = 2s",
		"maillog_file = " + filepath.Join(dir, "maillog"),
		"maillog_file_prefixes = " + dir,
		"",
	}, "\n")
	// No chroot (the last "n" of the fifth column): the daemons see the
	// private folders as they are.
	masterCF := strings.Join([]string{
		pf.addr + " inet n - n - - smtpd",
		"pickup unix n - n 60 1 pickup",
		"cleanup unix n - n - 0 cleanup",
		"qmgr unix n - n 300 1 qmgr",
		"rewrite unix - - n - - trivial-rewrite",
		"bounce unix - - n - 0 bounce",
		"defer unix - - n - 0 bounce",
		"trace unix - - n - 0 bounce",
		"verify unix - - n - 1 verify",
		"flush unix n - n 1000? 0 flush",
		"proxymap unix - - n - - proxymap",
		"smtp unix - - n - - smtp",
		"relay unix - - n - - smtp",
		"showq unix n - n - - showq",
		"error unix - - n - - error",
		"retry unix - - n - - error",
		"discard unix - - n - - discard",
		"anvil unix - - n - 1 anvil",
		"scache unix - - n - 1 scache",
		"postlog unix-dgram n - n - 1 postlogd",
		"",
	}, "\n")
	// Postfix makes what is inside the queue folder, not the folder.
	for _, d := range []string{"etc", "queue"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "etc", "main.cf"), mainCF)
	writeFile(t, filepath.Join(dir, "etc", "master.cf"), masterCF)
	if out, err := pf.run("start"); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, pf.log())
	}
	t.Cleanup(func() {
		if out, err := pf.run("stop"); err != nil {
			t.Errorf("postfix stop: %v\n%s", err, out)
		}
		if t.Failed() || os.Getenv("TOLLBRIDGE_LOG") != "" {
			t.Logf("postfix log:\n%s", pf.log())
		}
		// The master has exited when its pid names no process.
		b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
		if err != nil {
			t.Errorf("postfix master pid: %v", err)
			return
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		for i := 0; pid > 0 && syscall.Kill(pid, 0) == nil; i++ {
			if i == 100 {
				t.Errorf("postfix master (pid %d) still running 5 s after stop", pid)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return pf
}

// run runs `postfix -c DIR cmd`, bounded in time.
func (pf *postfix) run(cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, pf.bin, "-c", filepath.Join(pf.dir, "etc"), cmd).CombinedOutput()
}

// log is Postfix's log so far, for failure messages.
func (pf *postfix) log() string {
	b, _ := os.ReadFile(filepath.Join(pf.dir, "maillog"))
	return string(b)
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
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
		PowBits: 4, PowCount: 1, Smarthost: pf.addr, SmarthostTLS: "none"})
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
	if err := smtpSend(pf.addr, "dave@legacy.test", "carol@bridge.test", in); err != nil {
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
	if err := smtpSend(pf.addr, "dave@legacy.test", "carol@bridge.test", forged); err != nil {
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
	if err := smtpSend(pf.addr, "list@legacy.test", "carol@bridge.test", echo); err != nil {
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
