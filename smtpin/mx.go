package smtpin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"github.com/emersion/go-smtp"

	"tollbridge/intake"
	"tollbridge/keyring"
	"tollbridge/store"
)

// MX accepts legacy SMTP mail for the local domains' users, never relays,
// and seals each message to its recipients' public keys before answering
// 250. Such mail carries no signature: it shows as tollbridge=none, or
// tollbridge=fail (filed under Junk) when its From: field claims a sender
// whose mail would come signed (docs/protocol.md §3.7) or it fails a DMARC
// quarantine policy. Its SPF, DKIM and DMARC results (docs/rules.md §4) are
// stored with it and shown beside tollbridge=; a DMARC reject failure is
// refused at the end of DATA, and a DNS failure during the checks is a
// 451, so the sender tries again.
type MX struct {
	Config  Config
	Store   *store.Store
	Sealer  *intake.Sealer
	Log     *slog.Logger
	Metrics Metrics
	// Resolver answers the SPF, DKIM and DMARC lookups;
	// net.DefaultResolver when nil.
	Resolver Resolver
}

// Serve runs the MX listener until ctx is done.
func (m *MX) Serve(ctx context.Context, ln net.Listener) error {
	srv := newServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mxSession{ctx: ctx, m: m, c: c}, nil
	}), m.Config, m.Log)
	return serve(ctx, srv, ln, false)
}

// mxSession is one MX connection. ctx is Serve's: go-smtp's session
// methods take none, so the connection carries the listener's.
type mxSession struct {
	ctx   context.Context
	m     *MX
	c     *smtp.Conn
	from  string
	rcpts []*store.User
}

func (s *mxSession) Mail(from string, opts *smtp.MailOptions) error {
	if opts != nil && opts.Size > s.m.Config.MaxMessageBytes {
		return replyTooBig.err("Message size exceeds fixed limit of %d bytes", s.m.Config.MaxMessageBytes)
	}
	s.from = ""
	if from != "" {
		addr, err := keyring.NormalizeAddress(from)
		if err != nil {
			return replyBadSender.err("Bad sender address syntax")
		}
		// Mail between this server's own users never comes in over the
		// MX: a local sender here is an impersonation.
		if _, domain := keyring.SplitAddress(addr); s.m.Config.isLocal(domain) {
			return replyNotAllowed.err("Mail from %s must be submitted with authentication", domain)
		}
		s.from = addr
	}
	return nil
}

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr, err := keyring.NormalizeAddress(to)
	if err != nil {
		return replyBadRecipient.err("Bad recipient address syntax")
	}
	_, domain := keyring.SplitAddress(addr)
	if !s.m.Config.isLocal(domain) {
		return replyRelayDenied.err("Relay access denied: %s is not a domain of this server", domain)
	}
	us, err := localUsers(s.ctx, s.m.Config, s.m.Store, s.m.Log, addr)
	if err != nil {
		return err
	}
	// An alias's users each get one copy, sealed to their own key.
	for _, u := range us {
		if !slices.ContainsFunc(s.rcpts, func(x *store.User) bool { return x.ID == u.ID }) {
			s.rcpts = append(s.rcpts, u)
		}
	}
	return nil
}

func (s *mxSession) Data(r io.Reader) error {
	if len(s.rcpts) == 0 {
		return replyNoRecipients.err("No valid recipients")
	}
	sp := store.NewSpool("", s.m.Config.spoolMemory())
	defer sp.Close()
	if err := readData(sp, r); err != nil {
		return err
	}
	ms, sd, err := s.m.Sealer.SealFor(sp, sp.Size(), s.from, s.rcpts)
	if err != nil {
		return internalError(s.m.Log, "seal", err)
	}
	id, now := newID(), s.m.Store.Now()
	hdr := sd.Catalog.MIME.Header.Bytes
	auth := s.m.checkLegacy(s.ctx, client{net.ParseIP(remoteIP(s.c)), s.c.Hostname()}, s.from, sp, sp.Size(), hdr)
	if err := s.m.refuse(auth, id, s.from); err != nil {
		sd.Abort()
		return err
	}
	verdict, why, err := s.m.verdict(s.ctx, hdr, auth)
	if err != nil {
		sd.Abort()
		return internalError(s.m.Log, "mx verdict", err)
	}
	for i, m := range ms {
		m.Source, m.Received, m.Auth, m.AuthResults = store.SourceMX, now, verdict.String(), auth.results()
		m.Trace = received(s.c, s.m.Config.Hostname, id, s.rcpts[i].Address, false, now)
	}
	if _, err := s.m.Store.DeliverMessages(s.ctx, ms); err != nil {
		sd.Abort()
		return internalError(s.m.Log, "store", err)
	}
	s.m.Metrics.accepted()
	s.m.Log.Info("legacy mail accepted", "id", id, "from", s.from, "recipients", len(s.rcpts), "bytes", sp.Size(), "ip", remoteIP(s.c), "tollbridge", verdict.String(),
		"auth", auth.summary())
	if verdict == intake.VerdictFail {
		s.m.Log.Warn("legacy mail is tollbridge=fail, filed under Junk", "id", id, "reason", why)
	}
	return nil
}

// refuse is the answer for a message that must not be accepted after
// the checks of docs/rules.md §4, nil for one that may: 451 while DNS could not
// answer (the sender keeps the message and tries again), 550 when it fails
// the DMARC policy reject of its From: domain (the sender bounces it;
// nothing is stored and the bridge sends no bounce of its own).
func (m *MX) refuse(auth *legacyAuth, id, from string) error {
	if auth.temporary() {
		m.Log.Warn("legacy mail deferred: DNS lookup failed during SPF, DKIM or DMARC checks", "id", id, "from", from, "auth", auth.summary())
		return replyDNSTrouble.err("Temporary DNS failure checking SPF, DKIM or DMARC, try again later (id %s)", id)
	}
	if d := auth.failed(dmarc.PolicyReject); d != "" {
		m.Log.Warn("legacy mail refused: it fails the DMARC policy reject of its From: domain", "id", id, "from", from, "domain", d)
		return replyNotAllowed.err("Message fails the DMARC policy of %s (p=reject)", d)
	}
	return nil
}

func (s *mxSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *mxSession) Logout() error { return nil }

// verdict is the tollbridge= verdict on a legacy message, from its
// top-level header section hdr and the results of its legacy checks
// (docs/protocol.md §3.7 and docs/rules.md §4). Mail over the MX carries no signature, so it is
// none, unless its From: field claims a sender whose mail would come
// signed: an address in a local domain or of a local user (who submits
// with authentication, never over the MX), or an address with a pinned
// key (a ticketed sender). Then it is fail, and so when From: names no
// address, several, or one that cannot be checked (a mail client shows one
// sender, and it must not be one the checks could not see), and when the
// message fails the DMARC policy quarantine of its From: domain. why says
// which rule decided, for the log.
//
// A local From: address is let through only with a DKIM signature that
// verified by one of the local domains, aligned with the From: domain as
// DMARC's relaxed mode wants: this bridge's own legacy mail, DKIM-signed
// on the way out (docs/rules.md §4), coming back through a mailing list or a
// forwarder. Nothing else can show that a local user wrote it.
func (m *MX) verdict(ctx context.Context, hdr []byte, auth *legacyAuth) (v intake.Verdict, why string, err error) {
	from := fromAddresses(hdr)
	switch {
	case len(from) == 0:
		return intake.VerdictFail, "From: names no address", nil
	case len(from) > 1:
		return intake.VerdictFail, fmt.Sprintf("From: names %d addresses", len(from)), nil
	}
	addr, err := keyring.NormalizeAddress(from[0])
	if err != nil {
		return intake.VerdictFail, fmt.Sprintf("From: address %q is not valid", from[0]), nil
	}
	_, domain := keyring.SplitAddress(addr)
	ours := auth.dkimPass(domain, dmarc.AlignmentRelaxed, m.Config.isLocal)
	if u, err := storeUser(ctx, m.Store, addr); err != nil || u != nil && !ours {
		return intake.VerdictFail, "From: address " + addr + " is a local user without a DKIM signature of ours", err
	}
	if m.Config.isLocal(domain) && !ours {
		return intake.VerdictFail, "From: address " + addr + " is in a local domain without a DKIM signature of ours", nil
	}
	if d := auth.failed(dmarc.PolicyQuarantine); d != "" {
		return intake.VerdictFail, "message fails the DMARC policy quarantine of " + d, nil
	}
	switch _, err := m.Store.PinnedKey(ctx, addr); {
	case err == nil:
		return intake.VerdictFail, "From: address " + addr + " has a pinned key", nil
	case !errors.Is(err, store.ErrNotFound):
		return intake.VerdictFail, "", err
	}
	return intake.VerdictNone, "", nil
}

// fromAddresses returns the addr-specs of every From: field of a header
// section, as written. A list net/mail refuses is read leniently, as mail
// clients do: the part in angle brackets of each entry, or the entry
// itself when it holds an @.
func fromAddresses(hdr []byte) []string {
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: keepCharset}}
	var out []string
	for _, v := range fieldValues(hdr, "From") {
		if list, err := p.ParseList(v); err == nil {
			for _, a := range list {
				out = append(out, a.Address)
			}
			continue
		}
		for _, entry := range intake.FromAddresses(v) {
			if i := strings.LastIndexByte(entry, '<'); i >= 0 {
				if j := strings.IndexByte(entry[i:], '>'); j > 0 {
					entry = entry[i+1 : i+j]
				}
			}
			if entry = strings.Trim(entry, " \t;"); strings.Contains(entry, "@") {
				out = append(out, entry)
			}
		}
	}
	return out
}

// keepCharset lets net/mail accept display names in any charset: only the
// addresses are used.
func keepCharset(_ string, r io.Reader) (io.Reader, error) { return r, nil }

// fieldValues returns the unfolded values of every field called name in a
// header section, in order.
func fieldValues(hdr []byte, name string) []string {
	var out []string
	in := false // the last field seen is one of ours
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line = hdr[:i+1]
		}
		hdr = hdr[len(line):]
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if in {
				out[len(out)-1] += string(line)
			}
			continue
		}
		n, v, ok := bytes.Cut(line, []byte(":"))
		in = ok && strings.EqualFold(string(bytes.TrimRight(n, " \t")), name)
		if in {
			out = append(out, string(v))
		}
	}
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}
