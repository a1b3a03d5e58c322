package dnstest

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestRecords(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.SetMX("Example.ORG", MX{Pref: 20, Host: "mx2.example.org"}, MX{Pref: 10, Host: "mx1.example.org."})
	srv.SetAddr("mx1.example.org", "127.0.0.1", "::1")
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 400)
	srv.SetTXT("example.org", "v=spf1 mx -all", long)
	srv.SetSRV("_tollbridge._tcp.example.org", SRV{Priority: 0, Weight: 5, Port: 8443, Target: "tb.example.org"})
	srv.SetCNAME("autoconfig.example.org", "mx1.example.org")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := srv.Resolver()

	mxs, err := r.LookupMX(ctx, "example.org")
	if err != nil || len(mxs) != 2 || mxs[0].Host != "mx1.example.org." || mxs[0].Pref != 10 {
		t.Fatalf("LookupMX = %v, %v", mxs, err)
	}
	ips, err := r.LookupHost(ctx, "mx1.example.org")
	slices.Sort(ips)
	if err != nil || !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
		t.Fatalf("LookupHost = %v, %v", ips, err)
	}
	txts, err := r.LookupTXT(ctx, "example.org")
	slices.Sort(txts)
	if err != nil || !slices.Equal(txts, []string{"v=DKIM1; k=rsa; p=" + strings.Repeat("A", 400), "v=spf1 mx -all"}) {
		t.Fatalf("LookupTXT = %q, %v", txts, err)
	}
	_, srvs, err := r.LookupSRV(ctx, "tollbridge", "tcp", "example.org")
	if err != nil || len(srvs) != 1 || srvs[0].Port != 8443 || srvs[0].Target != "tb.example.org." {
		t.Fatalf("LookupSRV = %v, %v", srvs, err)
	}
	cname, err := r.LookupCNAME(ctx, "autoconfig.example.org")
	if err != nil || cname != "mx1.example.org." {
		t.Fatalf("LookupCNAME = %q, %v", cname, err)
	}
	if ips, err := r.LookupHost(ctx, "autoconfig.example.org"); err != nil || len(ips) != 2 {
		t.Fatalf("LookupHost through CNAME = %v, %v", ips, err)
	}
	if n := srv.Queries("EXAMPLE.org."); n < 2 {
		t.Errorf("Queries = %d, want at least 2", n)
	}
}

// TestLongTXTOnTheWire checks that a long TXT really goes out as several
// strings of at most 255 bytes (the resolver joins them, hiding it).
func TestLongTXTOnTheWire(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.SetTXT("sel._domainkey.example.org", strings.Repeat("x", 600))
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("sel._domainkey.example.org.", dns.TypeTXT)
		m.SetEdns0(1232, false)
		in, _, err := c.Exchange(m, srv.Addr())
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if len(in.Answer) != 1 {
			t.Fatalf("%s: answer %v", network, in.Answer)
		}
		parts := in.Answer[0].(*dns.TXT).Txt
		if len(parts) != 3 || len(parts[0]) != 255 || strings.Join(parts, "") != strings.Repeat("x", 600) {
			t.Fatalf("%s: strings of %v bytes", network, len(parts))
		}
	}
}

func TestNXDomainAndNoData(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.SetAddr("host.example.org", "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := srv.Resolver()

	_, err := r.LookupMX(ctx, "nowhere.example.org")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound || dnsErr.IsTemporary {
		t.Fatalf("unknown name: %v, want not found", err)
	}
	_, err = r.LookupTXT(ctx, "host.example.org")
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound || dnsErr.IsTemporary {
		t.Fatalf("no TXT: %v, want not found (NODATA)", err)
	}
	srv.Remove("host.example.org")
	if _, err := r.LookupHost(ctx, "host.example.org"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("removed name: %v, want not found", err)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.SetTXT("example.org", "v=spf1 -all")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := srv.Resolver()

	srv.SetFailure("example.org", ServFail)
	_, err := r.LookupTXT(ctx, "example.org")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsTemporary || dnsErr.IsNotFound {
		t.Fatalf("SERVFAIL: %v, want a temporary error", err)
	}

	srv.SetFailure("example.org", Timeout)
	start := time.Now()
	_, err = r.LookupTXT(ctx, "example.org")
	if !errors.As(err, &dnsErr) || !dnsErr.IsTimeout {
		t.Fatalf("no answer: %v, want a timeout", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("timeout took the whole context (%v): exchangeTimeout not applied", time.Since(start))
	}

	srv.SetFailure("example.org", OK)
	if txts, err := r.LookupTXT(ctx, "example.org"); err != nil || len(txts) != 1 {
		t.Fatalf("after OK: %v, %v", txts, err)
	}
}
