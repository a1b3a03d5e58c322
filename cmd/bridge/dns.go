package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"tollbridge/config"
)

// dnsTTL is the TTL `bridge dns` suggests: an hour, short enough to fix a
// mistake the same day.
const dnsTTL = 3600

const dnsUsage = "--config F [DOMAIN]: print the DNS records a domain needs, in zone-file syntax"

// dnsRecord is one record a local domain needs. Name is fully qualified
// (trailing dot); Data is in zone-file syntax (TXT data quoted).
type dnsRecord struct {
	Name, Type, Data string
	// Why is the comment printed above the record.
	Why string
}

func (r dnsRecord) String() string {
	return fmt.Sprintf("%s %d IN %s %s", r.Name, dnsTTL, r.Type, r.Data)
}

// runDNS prints, ready to paste into a zone, the records of DOMAIN (or of
// every local domain).
func runDNS(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(e.stdout, "usage: bridge dns %s\n", dnsUsage)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("at most one DOMAIN")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	domains := cfg.Server.Domains
	if len(pos) == 1 {
		d := strings.ToLower(strings.TrimSuffix(pos[0], "."))
		if !cfg.IsLocalDomain(d) {
			return fmt.Errorf("%s is not one of server.domains in %s", pos[0], cfg.File)
		}
		domains = []string{d}
	}
	for i, d := range domains {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		recs, err := domainRecords(cfg, d)
		if err != nil {
			return err
		}
		printZone(e.stdout, cfg, d, recs)
	}
	return nil
}

// domainRecords lists what domain needs: MX, the ticket API's SRV, both
// DKIM keys, SPF, DMARC and autoconfig, plus the host's own addresses
// when the config shows them.
func domainRecords(cfg *config.Config, domain string) ([]dnsRecord, error) {
	host := fqdn(cfg.Server.Hostname)
	zone := fqdn(domain)
	recs := []dnsRecord{{Name: zone, Type: "MX", Data: "10 " + host,
		Why: "legacy mail for " + domain + " goes to the bridge" + mxNote(cfg)}}
	recs = append(recs, hostAddresses(cfg, host)...)
	recs = append(recs, dnsRecord{Name: "_tollbridge._tcp." + zone, Type: "SRV",
		Data: fmt.Sprintf("0 1 %s %s", portOf(cfg.Ticket.Listen, "8443"), host),
		Why:  "other tollbridges find the ticket API here and send ticketed, encrypted mail" + loopbackNote(cfg.Ticket.Listen)})
	keys, err := loadDKIM(cfg.Server.DataDir, []string{domain})
	if err != nil {
		return nil, err
	}
	for _, k := range keys[domain] {
		txt, err := k.Record()
		if err != nil {
			return nil, err
		}
		recs = append(recs, dnsRecord{Name: k.Selector + "._domainkey." + zone, Type: "TXT", Data: quoteTXT(txt),
			Why: "DKIM key " + k.Selector + ": mail the bridge relays over SMTP is signed with it"})
	}
	recs = append(recs,
		dnsRecord{Name: zone, Type: "TXT", Data: quoteTXT(spfPolicy(cfg)),
			Why: "SPF: only the MX host sends mail for " + domain + smarthostNote(cfg)},
		dnsRecord{Name: "_dmarc." + zone, Type: "TXT", Data: quoteTXT("v=DMARC1; p=quarantine; rua=mailto:postmaster@" + domain),
			Why: "DMARC: mail that fails both SPF and DKIM goes to spam, not lost; reports to postmaster@"},
		dnsRecord{Name: "autoconfig." + zone, Type: "CNAME", Data: host,
			Why: "mail clients' automatic setup (served by the ticket listener; clients ask on port 443)"},
	)
	return recs, nil
}

func printZone(w io.Writer, cfg *config.Config, domain string, recs []dnsRecord) {
	fmt.Fprintf(w, "; DNS records for %s, served by %s (tollbridge).\n", domain, cfg.Server.Hostname)
	fmt.Fprintf(w, "; Zone-file syntax: paste into the zone of %s. A long TXT is several\n", domain)
	fmt.Fprintf(w, "; quoted strings of one record; web forms want them joined, without quotes.\n")
	for _, r := range recs {
		fmt.Fprintf(w, "; %s\n%s\n", r.Why, r)
		if r.Type == "MX" && len(publicAddrs(cfg)) == 0 {
			fmt.Fprintf(w, "; %s also needs A (and AAAA) records with this host's public addresses:\n", fqdn(cfg.Server.Hostname))
			fmt.Fprintf(w, "; the listeners bind to no public address, so they are not printed here\n")
		}
	}
	dig := "dig +short"
	if s := cfg.DNS.Resolver; s != "" {
		h, p, _ := net.SplitHostPort(s)
		dig = fmt.Sprintf("dig @%s -p %s +short", h, p)
	}
	fmt.Fprintf(w, "; Check once published (or run: bridge check --config %s):\n", cfg.File)
	seen := map[string]bool{}
	for _, r := range recs {
		q := r.Type + " " + strings.TrimSuffix(r.Name, ".")
		if !seen[q] {
			seen[q] = true
			fmt.Fprintf(w, ";   %s %s\n", dig, q)
		}
	}
}

// spfPolicy allows the MX host, the host's public addresses when the
// config binds to them, and the smarthost; everything else fails (-all:
// DKIM signs all legitimate mail, so a forwarder's SPF failure is
// rescued by DKIM under DMARC).
func spfPolicy(cfg *config.Config) string {
	terms := []string{"v=spf1", "mx"}
	for _, a := range publicAddrs(cfg) {
		if a.Is4() {
			terms = append(terms, "ip4:"+a.String())
		} else {
			terms = append(terms, "ip6:"+a.String())
		}
	}
	if sh := cfg.Delivery.Smarthost; sh != "" {
		if h, _, err := net.SplitHostPort(sh); err == nil {
			terms = append(terms, "a:"+h)
		}
	}
	return strings.Join(append(terms, "-all"), " ")
}

// hostAddresses are A/AAAA records for the host when the listeners are
// bound to public addresses (a bridge listening on 0.0.0.0 cannot know).
func hostAddresses(cfg *config.Config, host string) []dnsRecord {
	var recs []dnsRecord
	for _, a := range publicAddrs(cfg) {
		typ := "A"
		if a.Is6() {
			typ = "AAAA"
		}
		recs = append(recs, dnsRecord{Name: host, Type: typ, Data: a.String(), Why: "the bridge's address (from the listeners)"})
	}
	return recs
}

// publicAddrs are the distinct global unicast, non-private addresses the
// listeners are bound to.
func publicAddrs(cfg *config.Config) []netip.Addr {
	var out []netip.Addr
	for _, l := range []string{cfg.SMTP.MX, cfg.Ticket.Listen, cfg.SMTP.Submission, cfg.SMTP.SubmissionTLS, cfg.IMAP.Listen, cfg.IMAP.ListenTLS} {
		ap, err := netip.ParseAddrPort(l)
		if err != nil {
			continue
		}
		a := ap.Addr().Unmap()
		if a.IsGlobalUnicast() && !a.IsPrivate() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func mxNote(cfg *config.Config) string {
	if cfg.SMTP.MX == "" {
		return " (smtp.mx is not set: set it to listen on port 25, or point MX at your existing mail server)"
	}
	if p := portOf(cfg.SMTP.MX, ""); p != "25" {
		return " (senders use port 25; smtp.mx listens on " + p + ": forward 25 to it)"
	}
	return ""
}

func loopbackNote(listen string) string {
	if h, _, err := net.SplitHostPort(listen); err == nil {
		if a, err := netip.ParseAddr(h); err == nil && a.IsLoopback() {
			return " (ticket.listen is on loopback: other servers cannot reach it yet)"
		}
	}
	return ""
}

func smarthostNote(cfg *config.Config) string {
	if cfg.Delivery.Smarthost != "" {
		return ", and the smarthost (use its provider's include: instead, if it has one)"
	}
	return ""
}

func portOf(hostport, def string) string {
	if _, p, err := net.SplitHostPort(hostport); err == nil && p != "" {
		return p
	}
	return def
}

func fqdn(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") + "." }

// quoteTXT writes txt as TXT data: quoted strings of at most 255 bytes
// (the limit of one DNS character-string), with " and \ escaped.
func quoteTXT(txt string) string {
	var parts []string
	for {
		n := min(len(txt), 255)
		s := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(txt[:n])
		parts = append(parts, `"`+s+`"`)
		if txt = txt[n:]; txt == "" {
			return strings.Join(parts, " ")
		}
	}
}

// unquoteTXT joins the strings of TXT data as quoteTXT writes it.
func unquoteTXT(data string) string {
	var b strings.Builder
	in, esc := false, false
	for _, r := range data {
		switch {
		case esc:
			b.WriteRune(r)
			esc = false
		case in && r == '\\':
			esc = true
		case r == '"':
			in = !in
		case in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkDNS compares the published records with what `bridge dns` prints,
// through the [dns] resolver, and reports each missing or different one
// by name. DNS trouble is reported once and ends the check: it is never
// a failure of the config.
func checkDNS(ctx context.Context, cfg *config.Config, warn func(format string, args ...any)) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r := newResolver(cfg.DNS.Resolver)
	for _, d := range cfg.Server.Domains {
		if cfg.DNS.Resolver == "" && reservedDomain(d) {
			continue // never published: nothing to ask the world's DNS
		}
		recs, err := domainRecords(cfg, d)
		if err != nil {
			warn("dns: %v", err)
			continue
		}
		for _, rec := range recs {
			problem, err := checkRecord(ctx, r, cfg, rec)
			if err != nil && !notFound(err) {
				warn("dns: cannot check the records of %s (%v); checked again by the next bridge check", d, err)
				return
			}
			if problem != "" {
				warn("dns: %s %s: %s; want: %s", strings.TrimSuffix(rec.Name, "."), rec.Type, problem, rec)
			}
		}
	}
}

// reservedDomain reports whether d is a name reserved for examples and
// tests (RFC 2606, RFC 6761), which no public DNS publishes: quickstart's
// and the tests' domains. With a [dns] resolver of its own, an admin can
// still have them checked.
func reservedDomain(d string) bool {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	for _, r := range []string{"example", "example.com", "example.net", "example.org", "test", "invalid", "localhost"} {
		if d == r || strings.HasSuffix(d, "."+r) {
			return true
		}
	}
	return false
}

// checkRecord returns what is wrong with one published record, or "".
// A lookup error that is not "no such record" is returned for the caller.
func checkRecord(ctx context.Context, r *net.Resolver, cfg *config.Config, rec dnsRecord) (string, error) {
	name := rec.Name
	switch rec.Type {
	case "MX":
		mxs, err := r.LookupMX(ctx, name)
		if err != nil {
			return "missing", err
		}
		for _, mx := range mxs {
			if strings.EqualFold(mx.Host, fqdn(cfg.Server.Hostname)) {
				return "", nil
			}
		}
		return fmt.Sprintf("does not name %s (found %s)", cfg.Server.Hostname, mxHosts(mxs)), nil
	case "SRV":
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		if err != nil {
			return "missing", err
		}
		for _, s := range srvs {
			if strings.EqualFold(s.Target, fqdn(cfg.Server.Hostname)) && strconv.Itoa(int(s.Port)) == portOf(cfg.Ticket.Listen, "8443") {
				return "", nil
			}
		}
		return "does not point at " + fqdn(cfg.Server.Hostname) + " port " + portOf(cfg.Ticket.Listen, "8443"), nil
	case "TXT":
		return checkTXT(ctx, r, rec)
	case "CNAME", "A", "AAAA":
		// autoconfig may be a CNAME or an A record: any address will do.
		if _, err := r.LookupHost(ctx, strings.TrimSuffix(name, ".")); err != nil {
			return "missing", err
		}
	}
	return "", nil
}

// checkTXT: a DKIM key must be the bridge's exactly; SPF and DMARC must
// exist once (their policy is the admin's choice).
func checkTXT(ctx context.Context, r *net.Resolver, rec dnsRecord) (string, error) {
	txts, err := r.LookupTXT(ctx, rec.Name)
	if err != nil && !notFound(err) {
		return "", err
	}
	want := unquoteTXT(rec.Data)
	prefix, _, _ := strings.Cut(want, ";")
	prefix, _, _ = strings.Cut(prefix, " ")
	var found []string
	for _, t := range txts {
		if strings.HasPrefix(strings.ToLower(t), strings.ToLower(prefix)) {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return "missing", nil
	case strings.HasPrefix(want, "v=DKIM1") && stripSpace(found[0]) != stripSpace(want):
		return "publishes another key (the bridge signs with the one below)", nil
	case len(found) > 1:
		return fmt.Sprintf("%d records start with %s: receivers then ignore them all", len(found), prefix), nil
	}
	return "", nil
}

func mxHosts(mxs []*net.MX) string {
	var hs []string
	for _, mx := range mxs {
		hs = append(hs, mx.Host)
	}
	return strings.Join(hs, ", ")
}

func stripSpace(s string) string { return strings.Join(strings.Fields(s), "") }

// notFound reports whether err is the resolver's definite "no such name
// or record", as opposed to a timeout or server failure.
func notFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound && !dnsErr.IsTemporary && !dnsErr.IsTimeout
}
