package smtpin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"tollbridge/internal/dnstest"
)

// dkimKey is a DKIM signing key published in a test's DNS.
type dkimKey struct {
	domain, selector string
	key              ed25519.PrivateKey
}

// publishDKIM makes a key for domain and puts its record in the DNS.
func publishDKIM(t *testing.T, dns *dnstest.Server, domain string) *dkimKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("sel._domainkey."+domain, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	return &dkimKey{domain: domain, selector: "sel", key: priv}
}

// sign returns msg with a DKIM-Signature field by k in front.
func (k *dkimKey) sign(t *testing.T, msg string) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: k.domain, Selector: k.selector, Signer: k.key})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// sendMXFrom delivers msg over the MX with envelope sender from, and
// returns the answer to DATA (nil for 250).
func (e *env) sendMXFrom(from, msg string) error {
	e.t.Helper()
	c := e.dial(e.mx, false)
	if err := c.Mail(from, nil); err != nil {
		e.t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.org", nil); err != nil {
		e.t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		e.t.Fatal(err)
	}
	w.Write([]byte(msg))
	return w.Close()
}

// TestMXLegacyAuth sends legacy mail over a real MX listener whose SPF,
// DKIM and DMARC lookups go to a real DNS server, and reads what was
// accepted with a real IMAP client (docs/protocol.md §3.7 and docs/rules.md §4, issue 12): a DMARC
// reject failure is refused at the end of DATA and nothing is stored; a
// quarantine failure and a local user's forged name go to Junk; the
// results are shown beside tollbridge= in the bridge's
// Authentication-Results field.
func TestMXLegacyAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	imapAddr := e.serveIMAP(t)
	dns := e.dns
	// bank.example signs its mail, and asks that what fails be refused.
	dns.SetTXT("bank.example", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("_dmarc.bank.example", "v=DMARC1; p=reject")
	bank := publishDKIM(t, dns, "bank.example")
	// shop.example asks for quarantine, its SPF names another server.
	dns.SetTXT("shop.example", "v=spf1 ip4:192.0.2.1 -all")
	dns.SetTXT("_dmarc.shop.example", "v=DMARC1; p=quarantine")
	// org.example: p=none for itself, sp=reject for its subdomains.
	dns.SetTXT("_dmarc.org.example", "v=DMARC1; p=none; sp=reject")
	// sample.example refuses only a sample: quarantine instead.
	dns.SetTXT("_dmarc.sample.example", "v=DMARC1; p=reject; pct=50")
	// strict.example wants exact alignment; its bounce domain passes SPF.
	dns.SetTXT("_dmarc.strict.example", "v=DMARC1; p=reject; aspf=s")
	dns.SetTXT("bounce.strict.example", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("bounce.bank.example", "v=spf1 ip4:127.0.0.1 -all")
	// SPF results without DMARC.
	dns.SetTXT("soft.example", "v=spf1 ~all")
	dns.SetTXT("fail.example", "v=spf1 -all")
	dns.SetTXT("perm.example", "v=spf1 ip4:127.0.0.1 -all", "v=spf1 -all") // two records
	dns.SetTXT("neutral.example", "v=spf1 ?all")
	// This bridge's own legacy key, and a stranger's.
	own := publishDKIM(t, dns, "example.org")
	other := publishDKIM(t, dns, "list.example")

	msg := func(id, from string) string {
		return "From: " + from + "\r\nTo: alice@example.org\r\nSubject: " + id + "\r\nMessage-ID: <" + id + "@test>\r\n\r\nhello " + id + "\r\n"
	}
	tamper := func(m string) string { return strings.Replace(m, "hello", "HELLO", 1) }
	cases := []struct {
		id, mailFrom, msg string
		code              int    // answer to DATA, 0 for 250
		want              string // mailbox and verdict
		results           []string
	}{
		{id: "bank-signed", mailFrom: "news@bank.example", msg: bank.sign(t, msg("bank-signed", "Bank <news@bank.example>")),
			want: "INBOX none", results: []string{"spf=pass smtp.mailfrom=news@bank.example", "dkim=pass header.d=bank.example", "dmarc=pass header.from=bank.example"}},
		{id: "bank-signed-forwarded", mailFrom: "fwd@legacy.example", msg: bank.sign(t, msg("bank-signed-forwarded", "news@bank.example")),
			want: "INBOX none", results: []string{"spf=none smtp.mailfrom=fwd@legacy.example", "dkim=pass header.d=bank.example", "dmarc=pass header.from=bank.example"}},
		{id: "bank-spf-relaxed", mailFrom: "b@bounce.bank.example", msg: msg("bank-spf-relaxed", "news@bank.example"),
			want: "INBOX none", results: []string{"spf=pass", "dkim=none", "dmarc=pass header.from=bank.example"}},
		{id: "bank-forged", mailFrom: "someone@legacy.example", msg: msg("bank-forged", "Bank <news@bank.example>"), code: 550},
		{id: "bank-tampered", mailFrom: "someone@legacy.example", msg: tamper(bank.sign(t, msg("bank-tampered", "news@bank.example"))), code: 550},
		{id: "bank-second-from", mailFrom: "someone@legacy.example", msg: msg("bank-second-from", "a@legacy.example, news@bank.example"), code: 550},
		{id: "bank-other-signer", mailFrom: "someone@legacy.example", msg: other.sign(t, msg("bank-other-signer", "news@bank.example")), code: 550},
		{id: "org-sub-forged", mailFrom: "someone@legacy.example", msg: msg("org-sub-forged", "x@mail.org.example"), code: 550},
		{id: "org-forged", mailFrom: "someone@legacy.example", msg: msg("org-forged", "x@org.example"),
			want: "INBOX none", results: []string{"dmarc=fail header.from=org.example"}},
		{id: "strict-relaxed-spf", mailFrom: "b@bounce.strict.example", msg: msg("strict-relaxed-spf", "x@strict.example"), code: 550},
		{id: "shop-forged", mailFrom: "someone@legacy.example", msg: msg("shop-forged", "Shop <deals@shop.example>"),
			want: "Junk fail", results: []string{"spf=none", "dkim=none", "dmarc=fail header.from=shop.example"}},
		{id: "shop-spf-fail", mailFrom: "deals@shop.example", msg: msg("shop-spf-fail", "deals@shop.example"),
			want: "Junk fail", results: []string{"spf=fail smtp.mailfrom=deals@shop.example", "dmarc=fail header.from=shop.example"}},
		{id: "sample-forged", mailFrom: "someone@legacy.example", msg: msg("sample-forged", "x@sample.example"),
			want: "Junk fail", results: []string{"dmarc=fail header.from=sample.example"}},
		{id: "local-forged", mailFrom: "someone@legacy.example", msg: msg("local-forged", "Alice <alice@example.org>"),
			want: "Junk fail", results: []string{"dkim=none", "dmarc=none header.from=example.org"}},
		{id: "local-foreign-dkim", mailFrom: "someone@legacy.example", msg: other.sign(t, msg("local-foreign-dkim", "alice@example.org")),
			want: "Junk fail", results: []string{"dkim=pass header.d=list.example"}},
		{id: "local-own-dkim-tampered", mailFrom: "someone@legacy.example", msg: tamper(own.sign(t, msg("local-own-dkim-tampered", "alice@example.org"))),
			want: "Junk fail", results: []string{"dkim=fail header.d=example.org"}},
		{id: "local-own-dkim", mailFrom: "list@list.example", msg: own.sign(t, msg("local-own-dkim", "Alice <alice@example.org>")),
			want: "INBOX none", results: []string{"dkim=pass header.d=example.org"}},
		{id: "spf-softfail", mailFrom: "x@soft.example", msg: msg("spf-softfail", "x@soft.example"),
			want: "INBOX none", results: []string{"spf=softfail smtp.mailfrom=x@soft.example", "dmarc=none header.from=soft.example"}},
		{id: "spf-fail", mailFrom: "x@fail.example", msg: msg("spf-fail", "x@fail.example"),
			want: "INBOX none", results: []string{"spf=fail smtp.mailfrom=x@fail.example"}},
		{id: "spf-permerror", mailFrom: "x@perm.example", msg: msg("spf-permerror", "x@perm.example"),
			want: "INBOX none", results: []string{"spf=permerror smtp.mailfrom=x@perm.example"}},
		{id: "spf-neutral", mailFrom: "x@neutral.example", msg: msg("spf-neutral", "x@neutral.example"),
			want: "INBOX none", results: []string{"spf=neutral smtp.mailfrom=x@neutral.example"}},
		{id: "bounce", mailFrom: "", msg: msg("bounce", "MAILER-DAEMON@legacy.example"),
			want: "INBOX none", results: []string{"spf=none smtp.helo=client.test"}},
	}
	ctx := context.Background()
	for _, c := range cases {
		before, err := e.st.UnfiledCount(ctx, e.alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		err = e.sendMXFrom(c.mailFrom, c.msg)
		after, _ := e.st.UnfiledCount(ctx, e.alice.ID)
		switch got, enh := code(err); {
		case c.code == 0 && err != nil:
			t.Errorf("%s: DATA: %v", c.id, err)
		case c.code != 0 && (got != c.code || enh != "5.7.1"):
			t.Errorf("%s: DATA answered %v, want %d 5.7.1", c.id, err, c.code)
		case c.code != 0 && after != before:
			t.Errorf("%s: refused, but alice has %d messages more", c.id, after-before)
		}
	}
	got := imapMessages(t, imapAddr, e.st, e.alice.ID)
	for _, c := range cases {
		m, ok := got[c.id+"@test"]
		if c.code != 0 {
			if ok {
				t.Errorf("%s: refused, but in %s", c.id, m.box)
			}
			continue
		}
		v := verdictRE.FindSubmatch(m.body)
		if !ok || v == nil || m.box+" "+string(v[1]) != c.want {
			t.Errorf("%s: not in %s:\n%s", c.id, c.want, m.body)
			continue
		}
		for _, r := range c.results {
			if !bytes.Contains(v[0], []byte(";\r\n\t"+r)) {
				t.Errorf("%s: Authentication-Results lacks %q:\n%s", c.id, r, v[0])
			}
		}
	}
	logs := e.logs.String()
	for _, want := range []string{"fails the DMARC policy reject", "domain=bank.example", "domain=mail.org.example", "DMARC policy quarantine of shop.example"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log line says %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs)
	}
}

// TestMXDeferredOnDNSFailure: a DNS lookup that fails for now (SERVFAIL)
// during any of the checks is a 451 and nothing is stored; once DNS
// answers again the same message is accepted with its results.
func TestMXDeferredOnDNSFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	imapAddr := e.serveIMAP(t)
	dns := e.dns
	key := publishDKIM(t, dns, "flaky.example")
	dns.SetTXT("flaky.example", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("_dmarc.flaky.example", "v=DMARC1; p=reject")
	ctx := context.Background()
	for _, name := range []string{"flaky.example", "sel._domainkey.flaky.example", "_dmarc.flaky.example"} {
		id := "retry-" + strings.ReplaceAll(name, ".", "-")
		m := key.sign(t, "From: news@flaky.example\r\nTo: alice@example.org\r\nMessage-ID: <"+id+"@test>\r\n\r\nhello\r\n")
		dns.SetFailure(name, dnstest.ServFail)
		before, _ := e.st.UnfiledCount(ctx, e.alice.ID)
		err := e.sendMXFrom("news@flaky.example", m)
		if c, enh := code(err); c != 451 || enh != "4.4.3" {
			t.Errorf("%s fails: DATA answered %v, want 451 4.4.3", name, err)
		}
		if after, _ := e.st.UnfiledCount(ctx, e.alice.ID); after != before {
			t.Errorf("%s fails: a deferred message was stored", name)
		}
		dns.SetFailure(name, dnstest.OK)
		if err := e.sendMXFrom("news@flaky.example", m); err != nil {
			t.Errorf("%s answers again: DATA: %v", name, err)
		}
	}
	got := imapMessages(t, imapAddr, e.st, e.alice.ID)
	if len(got) != 3 {
		t.Errorf("alice has %d messages, want 3", len(got))
	}
	for id, m := range got {
		want := "tollbridge=none;\r\n\tspf=pass smtp.mailfrom=news@flaky.example;\r\n\tdkim=pass header.d=flaky.example;\r\n\tdmarc=pass header.from=flaky.example\r\n"
		if m.box != "INBOX" || !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("%s: in %s, want INBOX with %q:\n%s", id, m.box, want, m.body)
		}
	}
}

// TestResultsValues: what a client chose (HELO, MAIL FROM) or a message
// claims (d=, From:) goes into the Authentication-Results field as an
// RFC 8601 property value: plain when it is address-like, else quoted,
// and never with a control character that could end the field.
func TestResultsValues(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"news@bank.example":                 "news@bank.example",
		"bank.example":                      "bank.example",
		"a b@x.example":                     `"a b@x.example"`,
		`q"uote\@x.example`:                 `"q\"uote\\@x.example"`,
		"x\rAuthentication-Results: h; a=b": `"xAuthentication-Results: h; a=b"`,
		"":                                  `""`,
		"bücher@x.example":                  `"bücher@x.example"`,
	} {
		if got := pvalue(in); got != want {
			t.Errorf("pvalue(%q) = %s, want %s", in, got, want)
		}
	}
	a := &legacyAuth{spf: "none", spfProp: "smtp.helo", spfValue: "evil\r\n\tdkim=pass",
		dkim: []dkimResult{{"fail", "x\n.example"}}, dmarc: []dmarcResult{{result: "none", from: "x.example"}}}
	got := a.results()
	want := "spf=none smtp.helo=\"evildkim=pass\"\ndkim=fail header.d=\"x.example\"\ndmarc=none header.from=x.example"
	if got != want {
		t.Errorf("results:\ngot  %q\nwant %q", got, want)
	}
}

// BenchmarkCheckLegacy measures the SPF, DKIM and DMARC checks of one
// signed 1 MiB message against a DNS server on loopback.
func BenchmarkCheckLegacy(b *testing.B) {
	dns := dnstest.New(b)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dns.SetTXT("sel._domainkey.bank.example", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	dns.SetTXT("bank.example", "v=spf1 ip4:127.0.0.1 -all")
	dns.SetTXT("_dmarc.bank.example", "v=DMARC1; p=reject")
	raw := "From: news@bank.example\r\nTo: alice@example.org\r\nSubject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 1<<20/78)
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(raw), &dkim.SignOptions{Domain: "bank.example", Selector: "sel", Signer: priv}); err != nil {
		b.Fatal(err)
	}
	msg := bytes.NewReader(signed.Bytes())
	m := &MX{Resolver: dns.Resolver()}
	c := client{ip: []byte{127, 0, 0, 1}, helo: "mx.bank.example"}
	b.SetBytes(int64(signed.Len()))
	for b.Loop() {
		a := m.checkLegacy(context.Background(), c, "news@bank.example", msg, msg.Size(), []byte("From: news@bank.example\r\n"))
		if a.results() != "spf=pass smtp.mailfrom=news@bank.example\ndkim=pass header.d=bank.example\ndmarc=pass header.from=bank.example" {
			b.Fatal(a.results())
		}
	}
}
