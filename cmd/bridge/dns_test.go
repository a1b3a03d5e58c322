package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"tollbridge/config"
	"tollbridge/internal/dnstest"
	"tollbridge/internal/teststore"
)

// initDNSSite runs `bridge init` for example.org (host mail.example.org)
// on free loopback ports, with [dns] resolver pointing at zone, and
// returns the config path.
func initDNSSite(t *testing.T, zone *dnstest.Server) string {
	t.Helper()
	dir := t.TempDir()
	if code, _, errs := cli(t, "", "init", "--dir", dir, "--domain", "example.org"); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	path := filepath.Join(dir, "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, def := range []string{"127.0.0.1:1587", "127.0.0.1:1143", "127.0.0.1:8443"} {
		text = strings.Replace(text, def, freeAddr(t), 1)
	}
	text += fmt.Sprintf("\n[dns]\nresolver = %q\n", zone.Addr())
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// publishZone runs `bridge dns` and serves what it prints from zone. Each
// line must parse as a zone-file record (miekg/dns's parser).
func publishZone(t *testing.T, zone *dnstest.Server, cfgPath string) string {
	t.Helper()
	code, out, errs := cli(t, "", "dns", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("dns: %d %s", code, errs)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil || rr == nil {
			t.Fatalf("not a zone-file record: %q: %v", line, err)
		}
		name := rr.Header().Name
		switch rr := rr.(type) {
		case *dns.MX:
			zone.SetMX(name, dnstest.MX{Pref: rr.Preference, Host: rr.Mx})
		case *dns.SRV:
			zone.SetSRV(name, dnstest.SRV{Priority: rr.Priority, Weight: rr.Weight, Port: rr.Port, Target: rr.Target})
		case *dns.TXT:
			zone.SetTXT(name, strings.Join(rr.Txt, ""))
		case *dns.CNAME:
			zone.SetCNAME(name, rr.Target)
		default:
			t.Fatalf("unexpected record %s", rr)
		}
	}
	zone.SetAddr("mail.example.org", "127.0.0.1")
	return out
}

func TestDNSCommandAndCheck(t *testing.T) {
	t.Parallel()
	zone := dnstest.New(t)
	cfgPath := initDNSSite(t, zone)
	out := publishZone(t, zone, cfgPath)
	for _, want := range []string{
		"example.org. 3600 IN MX 10 mail.example.org.\n",
		"_tollbridge._tcp.example.org. 3600 IN SRV 0 1 ",
		"tb-ed._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=ed25519; p=",
		"tb-rsa._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=rsa; p=",
		"example.org. 3600 IN TXT \"v=spf1 mx -all\"\n",
		"_dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org\"\n",
		"autoconfig.example.org. 3600 IN CNAME mail.example.org.\n",
		"; Check once published",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bridge dns lacks %q:\n%s", want, out)
		}
	}
	if code, one, _ := cli(t, "", "dns", "--config", cfgPath, "example.org"); code != 0 || one != out {
		t.Errorf("dns example.org: %d, differs from dns without DOMAIN", code)
	}
	if code, _, errs := cli(t, "", "dns", "--config", cfgPath, "example.net"); code == 0 || !strings.Contains(errs, "example.net is not one of server.domains") {
		t.Errorf("dns for a foreign domain: %d %s", code, errs)
	}
	if code, help, _ := cli(t, "", "dns", "--help"); code != 0 || !strings.Contains(help, "usage: bridge dns --config F [DOMAIN]") {
		t.Errorf("dns --help: %d %q", code, help)
	}

	check := func() (int, string) {
		code, out, _ := cli(t, "", "check", "--config", cfgPath)
		return code, out
	}
	if code, out := check(); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("check with every record published: %d\n%s", code, out)
	}

	// A wrong key, a missing record, a second SPF: warnings naming each,
	// never a failed check.
	zone.SetTXT("tb-rsa._domainkey.example.org", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAold")
	zone.Remove("_dmarc.example.org")
	zone.SetTXT("example.org", "v=spf1 mx -all", "v=spf1 a -all")
	code, got := check()
	for _, want := range []string{
		"config.toml: warning: dns: tb-rsa._domainkey.example.org TXT: publishes another key",
		"config.toml: warning: dns: _dmarc.example.org TXT: missing; want: _dmarc.example.org. 3600 IN TXT \"v=DMARC1;",
		"config.toml: warning: dns: example.org TXT: 2 records start with v=spf1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check lacks %q:\n%s", want, got)
		}
	}
	if code != 0 || strings.Count(got, "warning") != 3 {
		t.Errorf("check: exit %d, want 0 and three warnings:\n%s", code, got)
	}

	// DNS trouble: said once, still not a failure.
	zone.SetFailure("example.org", dnstest.ServFail)
	code, got = check()
	if code != 0 || strings.Count(got, "warning") != 1 || !strings.Contains(got, "warning: dns: cannot check the records of example.org") {
		t.Errorf("check with SERVFAIL: exit %d\n%s", code, got)
	}
}

// legacyMX is a legacy domain's MX: a go-smtp server offering STARTTLS.
type legacyMX struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (m *legacyMX) NewSession(*smtp.Conn) (smtp.Session, error) { return &legacyMXSession{m: m}, nil }

func (m *legacyMX) received() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]byte(nil), m.msgs...)
}

type legacyMXSession struct{ m *legacyMX }

func (s *legacyMXSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *legacyMXSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *legacyMXSession) Reset()                               {}
func (s *legacyMXSession) Logout() error                        { return nil }
func (s *legacyMXSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, b)
	s.m.mu.Unlock()
	return nil
}

// TestDirectMXSigned: alice@example.org writes to a legacy domain; the
// bridge (no smarthost) finds its MX through the [dns] resolver and
// delivers there, DKIM-signed with the keys `bridge dns` published. Both
// signatures verify with go-msgauth and, when installed, with
// python3-dkim's dkimverify.
func TestDirectMXSigned(t *testing.T) {
	t.Parallel()
	zone := dnstest.New(t)
	cfgPath := initDNSSite(t, zone)
	publishZone(t, zone, cfgPath)

	mx := &legacyMX{}
	srv := smtp.NewServer(mx)
	srv.Domain = "mx.legacy.example"
	certDir := t.TempDir()
	if err := selfSigned(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"), "mx.legacy.example"); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	zone.SetMX("legacy.example", dnstest.MX{Pref: 10, Host: "mx.legacy.example"})
	zone.SetAddr("mx.legacy.example", "127.0.0.1")

	ctx, cancel := context.WithCancel(context.Background())
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBridgeWith(ctx, cfg, testLog(), options{mxPort: portNumber(t, ln.Addr().String()),
		firstRetry: 200 * time.Millisecond, maxRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := addUser(ctx, b.cfg, b.st, "alice@example.org", []byte("pw"), teststore.Cheap); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { runAll(ctx, []*bridge{b}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	msg := "From: Alice <alice@example.org>\r\nTo: bob@legacy.example\r\nSubject: signed\r\n" +
		"Date: Sun, 06 Dec 2026 18:00:00 +0000\r\nMessage-ID: <signed.1@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nSigned by the bridge.\r\n"
	if err := submitRaw(b.addr("submission"), "alice@example.org", "pw", []string{"bob@legacy.example"}, msg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery to the MX", 30*time.Second, func() bool { return len(mx.received()) == 1 })
	raw := mx.received()[0]
	if zone.Queries("_tollbridge._tcp.legacy.example") == 0 {
		t.Errorf("SRV discovery did not use the [dns] resolver")
	}

	r := zone.Resolver()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return r.LookupTXT(context.Background(), name) },
	})
	if err != nil || len(vs) != 2 {
		t.Fatalf("%d signatures (%v), want 2:\n%s", len(vs), err, raw)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Errorf("go-msgauth: signature by %s: %v", v.Domain, v.Err)
		}
	}
	t.Run("dkimverify", func(t *testing.T) { dkimverify(t, zone, raw, len(vs)) })
}

// dkimverify checks each signature of raw with python3-dkim's dkimverify,
// its DNS queries sent to zone.
func dkimverify(t *testing.T, zone *dnstest.Server, raw []byte, n int) {
	path, err := exec.LookPath("dkimverify")
	if err != nil {
		t.Skip("dkimverify not installed (Debian: python3-dkim)")
	}
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Run dkimverify's own main with the interpreter it was installed
	// for, dnspython's default resolver pointed at the test zone.
	python, _, _ := strings.Cut(strings.TrimPrefix(string(script), "#!"), "\n")
	host, port, _ := strings.Cut(zone.Addr(), ":")
	prog := fmt.Sprintf(`import sys, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = [%q]
r.port = %s
dns.resolver.default_resolver = r
from dkim import dkimverify
dkimverify.main()
`, host, port)
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, strings.TrimSpace(python), "-c", prog, "--index", fmt.Sprint(i))
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "signature ok") {
			t.Errorf("dkimverify --index %d: %v\n%s", i, err, out)
		}
	}
}

func portNumber(t *testing.T, addr string) int {
	t.Helper()
	var p int
	if _, err := fmt.Sscan(addr[strings.LastIndexByte(addr, ':')+1:], &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The [dns] resolver sends every query to its server and reports a
// SERVFAIL as temporary, never as "no such domain".
func TestNewResolver(t *testing.T) {
	t.Parallel()
	zone := dnstest.New(t)
	zone.SetTXT("example.net", "v=spf1 -all")
	r := newResolver(zone.Addr())
	ctx := context.Background()
	if txts, err := r.LookupTXT(ctx, "example.net"); err != nil || len(txts) != 1 || txts[0] != "v=spf1 -all" {
		t.Fatalf("LookupTXT = %q, %v", txts, err)
	}
	zone.SetFailure("example.net", dnstest.ServFail)
	_, err := r.LookupTXT(ctx, "example.net")
	if notFound(err) || !isTemporaryDNS(err) {
		t.Fatalf("SERVFAIL gave %v, want a temporary error", err)
	}
}

func isTemporaryDNS(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsTemporary
}

// With listeners on public addresses, the host's A/AAAA records and SPF
// name them; a smarthost joins SPF.
func TestDNSRecordsFromListeners(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Server.Hostname, cfg.Server.Domains, cfg.Server.DataDir = "mail.example.org", []string{"example.org"}, t.TempDir()
	cfg.SMTP.MX, cfg.SMTP.Submission, cfg.Ticket.Listen = "[2001:db8::25]:25", "192.0.2.7:587", "192.0.2.7:443"
	cfg.Delivery.Smarthost = "relay.example.org:587"
	if _, err := loadOrCreateDKIM(cfg.Server.DataDir, cfg.Server.Domains); err != nil {
		t.Fatal(err)
	}
	recs, err := domainRecords(cfg, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Type != "TXT" || strings.Contains(r.Data, "v=spf1") {
			got = append(got, r.String())
		}
	}
	want := []string{
		"example.org. 3600 IN MX 10 mail.example.org.",
		"mail.example.org. 3600 IN AAAA 2001:db8::25",
		"mail.example.org. 3600 IN A 192.0.2.7",
		"_tollbridge._tcp.example.org. 3600 IN SRV 0 1 443 mail.example.org.",
		`example.org. 3600 IN TXT "v=spf1 mx ip6:2001:db8::25 ip4:192.0.2.7 a:relay.example.org -all"`,
		"autoconfig.example.org. 3600 IN CNAME mail.example.org.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
