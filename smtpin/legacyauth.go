package smtpin

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// Resolver is the DNS the MX checks SPF, DKIM and DMARC with (docs/rules.md §4).
// *net.Resolver has these methods; so a bridge points every check at its
// configured resolver, and a test at its own DNS server.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

const (
	// checkTimeout bounds the DNS work for one message. Past it the
	// checks are temperror and the client is told to try again (451):
	// DNS trouble defers mail, it never loses it nor judges it on a guess.
	checkTimeout = 30 * time.Second
	// maxSignatures bounds the DKIM signatures verified per message: each
	// costs a DNS lookup and a pass over the body.
	maxSignatures = 5
	// maxFromDomains bounds the From: domains whose DMARC policy is looked
	// up. Mail with several is fail anyway (§3.7); each is still checked
	// so that a second address cannot hide a p=reject domain.
	maxFromDomains = 4
)

// legacyAuth is what the SPF, DKIM and DMARC checks found for one message
// that came over the MX.
type legacyAuth struct {
	spf       spf.Result
	spfProp   string // "smtp.mailfrom" or, for a null sender, "smtp.helo"
	spfValue  string // the address or HELO name checked
	spfDomain string // the domain SPF authorised (for DMARC alignment)
	dkim      []dkimResult
	dmarc     []dmarcResult
}

type dkimResult struct {
	result string // pass, fail, permerror, temperror (RFC 8601 §2.7.1)
	domain string // the signature's d=
}

type dmarcResult struct {
	result string       // pass, fail, none, permerror, temperror (RFC 7489 §11.2)
	from   string       // the From: domain evaluated
	policy dmarc.Policy // the policy that applies when result is fail
}

// client is what SPF needs to know of an SMTP client.
type client struct {
	ip   net.IP
	helo string
}

// checkLegacy runs the checks of docs/rules.md §4 on a message of size bytes
// from client c, with envelope sender from ("" for a bounce) and
// top-level header section hdr.
func (m *MX) checkLegacy(ctx context.Context, c client, from string, msg io.ReaderAt, size int64, hdr []byte) *legacyAuth {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	r := m.resolver()
	a := &legacyAuth{}
	a.checkSPF(ctx, r, c, from)
	a.checkDKIM(ctx, r, io.NewSectionReader(msg, 0, size))
	for _, d := range fromDomains(hdr) {
		a.dmarc = append(a.dmarc, a.checkDMARC(ctx, r, d))
	}
	return a
}

func (m *MX) resolver() Resolver {
	if m.Resolver != nil {
		return m.Resolver
	}
	return net.DefaultResolver
}

// checkSPF checks the client's IP against the SPF record of the envelope
// sender's domain, or of the HELO name for a null sender (RFC 7208 §2.4).
func (a *legacyAuth) checkSPF(ctx context.Context, r Resolver, c client, from string) {
	a.spfProp, a.spfValue, a.spfDomain = "smtp.mailfrom", from, domainOf(from)
	sender := from
	if from == "" {
		a.spfProp, a.spfValue, a.spfDomain = "smtp.helo", c.helo, strings.ToLower(c.helo)
		if !validDomain(c.helo) {
			a.spf = spf.None
			return
		}
		sender = "postmaster@" + c.helo
	}
	a.spf, _ = spf.CheckHostWithSender(c.ip, c.helo, sender, spf.WithContext(ctx), spf.WithResolver(r))
}

// checkDKIM verifies the message's first maxSignatures DKIM signatures.
func (a *legacyAuth) checkDKIM(ctx context.Context, r Resolver, msg io.Reader) {
	vs, err := dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return r.LookupTXT(ctx, name) },
		MaxVerifications: maxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// Only a header section go-msgauth cannot read gets here.
		a.dkim = []dkimResult{{result: "permerror"}}
		return
	}
	for _, v := range vs {
		res := "fail"
		switch {
		case v.Err == nil:
			res = "pass"
		case dkim.IsTempFail(v.Err):
			res = "temperror"
		case dkim.IsPermFail(v.Err):
			res = "permerror"
		}
		a.dkim = append(a.dkim, dkimResult{result: res, domain: strings.ToLower(v.Domain)})
	}
}

// checkDMARC evaluates the DMARC policy of the From: domain from (RFC
// 7489 §6.6): the message passes when SPF passed for an aligned domain or
// a DKIM signature by an aligned domain verified. A policy with pct below
// 100 is applied to every message, but reject becomes quarantine: the
// next milder policy (§6.6.4), so that mail is never refused by chance.
func (a *legacyAuth) checkDMARC(ctx context.Context, r Resolver, from string) dmarcResult {
	rec, policy, err := lookupDMARC(ctx, r, from)
	switch {
	case dmarc.IsTempFail(err):
		return dmarcResult{result: "temperror", from: from}
	case errors.Is(err, dmarc.ErrNoPolicy):
		return dmarcResult{result: "none", from: from}
	case err != nil:
		return dmarcResult{result: "permerror", from: from}
	}
	if a.spf == spf.Pass && aligned(a.spfDomain, from, rec.SPFAlignment) || a.dkimPass(from, rec.DKIMAlignment, nil) {
		return dmarcResult{result: "pass", from: from}
	}
	if rec.Percent != nil && *rec.Percent < 100 && policy == dmarc.PolicyReject {
		policy = dmarc.PolicyQuarantine
	}
	return dmarcResult{result: "fail", from: from, policy: policy}
}

// lookupDMARC finds the DMARC record of domain, or else of its
// organizational domain, whose sp= then applies (RFC 7489 §6.6.3).
func lookupDMARC(ctx context.Context, r Resolver, domain string) (*dmarc.Record, dmarc.Policy, error) {
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return r.LookupTXT(ctx, name) }}
	rec, err := dmarc.LookupWithOptions(domain, opts)
	if err == nil {
		return rec, rec.Policy, nil
	}
	org := orgDomain(domain)
	if !errors.Is(err, dmarc.ErrNoPolicy) || org == domain {
		return nil, "", err
	}
	if rec, err = dmarc.LookupWithOptions(org, opts); err != nil {
		return nil, "", err
	}
	if rec.SubdomainPolicy != "" {
		return rec, rec.SubdomainPolicy, nil
	}
	return rec, rec.Policy, nil
}

// dkimPass reports whether a signature by a domain aligned with domain
// verified; with signer set, only by a domain signer accepts.
func (a *legacyAuth) dkimPass(domain string, mode dmarc.AlignmentMode, signer func(string) bool) bool {
	return slices.ContainsFunc(a.dkim, func(d dkimResult) bool {
		return d.result == "pass" && aligned(d.domain, domain, mode) && (signer == nil || signer(d.domain))
	})
}

// temporary reports whether some check could not get an answer from DNS.
func (a *legacyAuth) temporary() bool {
	return a.spf == spf.TempError ||
		slices.ContainsFunc(a.dkim, func(d dkimResult) bool { return d.result == "temperror" }) ||
		slices.ContainsFunc(a.dmarc, func(d dmarcResult) bool { return d.result == "temperror" })
}

// failed returns the first From: domain that fails its DMARC policy p,
// "" if none.
func (a *legacyAuth) failed(p dmarc.Policy) string {
	for _, d := range a.dmarc {
		if d.result == "fail" && d.policy == p {
			return d.from
		}
	}
	return ""
}

// results are the resinfo entries for the bridge's Authentication-Results
// field (RFC 8601 §2.2), one a line, as store.NewMessage.AuthResults.
func (a *legacyAuth) results() string {
	out := []string{"spf=" + strings.ToLower(string(a.spf)) + " " + a.spfProp + "=" + pvalue(a.spfValue)}
	if len(a.dkim) == 0 {
		out = append(out, "dkim=none")
	}
	for _, d := range a.dkim {
		s := "dkim=" + d.result
		if d.domain != "" {
			s += " header.d=" + pvalue(d.domain)
		}
		out = append(out, s)
	}
	if len(a.dmarc) == 0 {
		out = append(out, "dmarc=none")
	}
	for _, d := range a.dmarc {
		out = append(out, "dmarc="+d.result+" header.from="+pvalue(d.from))
	}
	return strings.Join(out, "\n")
}

// summary is results on one line, for the log.
func (a *legacyAuth) summary() string { return strings.ReplaceAll(a.results(), "\n", "; ") }

// pvalue writes a property value (RFC 8601 §2.2): as is when it is made of
// the characters of a plain address or domain, else as a quoted-string.
// Control characters are dropped: a value must not end the field.
func pvalue(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-/^_`{|}~.@", c)) {
			plain = false
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c < ' ' || c == 0x7f:
			continue
		case c == '"' || c == '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}

// fromDomains are the distinct domains of the addresses in the From:
// fields of hdr, lower-cased, at most maxFromDomains.
func fromDomains(hdr []byte) []string {
	var out []string
	for _, addr := range fromAddresses(hdr) {
		d := domainOf(addr)
		if validDomain(d) && !slices.Contains(out, d) && len(out) < maxFromDomains {
			out = append(out, d)
		}
	}
	return out
}

// domainOf is the lower-cased domain of an address, "" if it has none.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(addr[i+1:]), ".")
}

// validDomain reports whether s is a DNS name worth a lookup: dot-separated
// labels of letters, digits and hyphens.
func validDomain(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// aligned reports whether the identifiers a and b are in DMARC alignment
// (RFC 7489 §3.1): the same name (strict) or the same organizational
// domain (relaxed).
func aligned(a, b string, mode dmarc.AlignmentMode) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == "" || b == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return a == b
	}
	return orgDomain(a) == orgDomain(b)
}

// orgDomain is the organizational domain of a name (RFC 7489 §3.2): one
// label below its public suffix.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}
