package outbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/internal/tlsprofile"
	"tollbridge/keyring"
	"tollbridge/seal"
	"tollbridge/store"
)

// maxCatalog bounds a decrypted catalog.
const maxCatalog = 64 << 20

// relay sends the message unchanged over SMTP to a legacy domain: to the
// smarthost when one is configured, else to the domain's MX hosts.
func (o *Outbox) relay(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient) (*success, error) {
	o.st.UpdateRecipient(ctx, r.ID, store.RecipientUpdate{Route: ptr("legacy"), State: ptr("relaying")})
	targets, err := o.relayTargets(ctx, r.Recipient)
	if err != nil {
		return nil, err
	}
	msg, err := o.legacyMessage(m)
	if err != nil {
		return nil, temporary("outbox %d: %v", m.ID, err)
	}
	var last error
	for _, t := range targets {
		id, err := o.sendTo(ctx, t, msg, r)
		if err == nil {
			return &success{route: "legacy", remoteID: t.addr + " " + id}, nil
		}
		var f *failure
		if errors.As(err, &f) && !f.Temporary {
			return nil, err // a definite answer: no other MX will say otherwise
		}
		last = err
	}
	return nil, last
}

type relayTarget struct {
	addr         string // host:port
	host         string // for TLS verification
	mode         string // starttls (required), tls, none, or opportunistic
	viaSmarthost bool
}

func (o *Outbox) relayTargets(ctx context.Context, rcpt string) ([]relayTarget, error) {
	if sh := o.cfg.Smarthost; sh.Addr != "" {
		host, _, _ := net.SplitHostPort(sh.Addr)
		return []relayTarget{{addr: sh.Addr, host: host, mode: sh.TLS, viaSmarthost: true}}, nil
	}
	_, domain := keyring.SplitAddress(rcpt)
	mxs, err := o.cfg.LookupMX(ctx, domain)
	if notFound(err) {
		return o.implicitMX(ctx, domain) // no MX: the domain itself (RFC 5321 §5.1)
	}
	if err != nil {
		return nil, temporary("MX of %s: %v", domain, err)
	}
	sort.Slice(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	port := strconv.Itoa(o.cfg.MXPort)
	var ts []relayTarget
	for _, mx := range mxs {
		host := strings.TrimSuffix(mx.Host, ".")
		if host == "" {
			return nil, permanent("5.1.10", "%s accepts no mail (null MX)", domain)
		}
		ts = append(ts, relayTarget{addr: net.JoinHostPort(host, port), host: host, mode: "opportunistic"})
	}
	if len(ts) == 0 {
		return o.implicitMX(ctx, domain)
	}
	return ts, nil
}

// implicitMX is the domain's own addresses, for a domain without MX
// records. A domain with neither MX nor address records, above all one
// that does not exist (NXDOMAIN), cannot receive mail: that is a
// permanent failure at once, as Postfix makes it, not two days of
// retries. A resolver that times out or fails (SERVFAIL) says nothing
// about the domain: temporary.
func (o *Outbox) implicitMX(ctx context.Context, domain string) ([]relayTarget, error) {
	addrs, err := o.cfg.LookupHost(ctx, domain)
	if notFound(err) || err == nil && len(addrs) == 0 {
		return nil, permanent("5.1.2", "%s has no MX and no address: the domain does not exist or takes no mail", domain)
	}
	if err != nil {
		return nil, temporary("address of %s: %v", domain, err)
	}
	port := strconv.Itoa(o.cfg.MXPort)
	ts := make([]relayTarget, 0, len(addrs))
	for _, a := range addrs {
		ts = append(ts, relayTarget{addr: net.JoinHostPort(a, port), host: domain, mode: "opportunistic"})
	}
	return ts, nil
}

// notFound reports whether err is the resolver's definite "no such name"
// or "no such records", as opposed to a timeout or server failure.
func notFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound && !dnsErr.IsTimeout && !dnsErr.IsTemporary
}

// dial connects to t with the TLS the target asks for and returns a
// client that has said EHLO as the bridge's host name (over TLS, when TLS
// is used).
func (o *Outbox) dial(ctx context.Context, t relayTarget) (*smtp.Client, error) {
	d := net.Dialer{Timeout: 30 * time.Second, Resolver: o.cfg.Resolver}
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	tc := tlsprofile.Apply(&tls.Config{ServerName: t.host, RootCAs: o.cfg.Smarthost.RootCAs})
	if !t.viaSmarthost {
		// Opportunistic TLS to an MX: encrypt, but (without DANE or
		// MTA-STS) do not insist on a verified certificate, as MTAs do.
		tc.InsecureSkipVerify = true
	}
	var c *smtp.Client
	switch t.mode {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tc))
	case "none":
		c = smtp.NewClient(conn)
	case "starttls":
		if c, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			return nil, err
		}
	default: // opportunistic
		return o.dialOpportunistic(ctx, &d, conn, t, tc)
	}
	if err := c.Hello(o.cfg.Hostname); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dialOpportunistic greets an MX on conn and uses STARTTLS when the MX
// offers it, falling back to plaintext only when it does not: a failed
// handshake is a failed attempt, never a silent downgrade. go-smtp cannot
// start TLS on a client that has greeted, so an MX that offers STARTTLS
// is dialed a second time for it.
func (o *Outbox) dialOpportunistic(ctx context.Context, d *net.Dialer, conn net.Conn, t relayTarget, tc *tls.Config) (*smtp.Client, error) {
	c := smtp.NewClient(conn)
	if err := c.Hello(o.cfg.Hostname); err != nil {
		c.Close()
		return nil, err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return c, nil // greeted already: sendTo must not say EHLO again
	}
	c.Quit()
	if conn, err := d.DialContext(ctx, "tcp", t.addr); err != nil {
		return nil, err
	} else if c, err = smtp.NewClientStartTLS(conn, tc); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	if err := c.Hello(o.cfg.Hostname); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sendTo makes one SMTP transaction for one recipient.
func (o *Outbox) sendTo(ctx context.Context, t relayTarget, msg *legacyMessage, r *store.OutboxRecipient) (string, error) {
	m := msg.m
	c, err := o.dial(ctx, t)
	if err != nil {
		return "", smtpFailure(t, fmt.Errorf("connect: %w", err))
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if sh := o.cfg.Smarthost; t.viaSmarthost && sh.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", sh.Username, sh.Password)); err != nil {
			return "", smtpFailure(t, err)
		}
	}
	if err := c.Mail(m.Sender, &smtp.MailOptions{Size: m.Size}); err != nil {
		return "", smtpFailure(t, err)
	}
	if err := c.Rcpt(r.Recipient, nil); err != nil {
		return "", smtpFailure(t, err)
	}
	w, err := c.Data()
	if err != nil {
		return "", smtpFailure(t, err)
	}
	if err := msg.writeTo(w); err != nil {
		return "", temporary("render outbox %d: %v", m.ID, err)
	}
	if err := w.Close(); err != nil {
		return "", smtpFailure(t, err)
	}
	c.Quit()
	return "ok", nil
}

// smtpFailure classifies an SMTP client error: 5xx permanent, the rest
// temporary.
func smtpFailure(t relayTarget, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		status := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		if se.EnhancedCode == smtp.NoEnhancedCode || se.EnhancedCode[0] == 0 {
			status = fmt.Sprintf("%d.0.0", se.Code/100)
		}
		f := &failure{Status: status, Temporary: se.Code < 500, Err: fmt.Errorf("%s said: %d %s", t.addr, se.Code, se.Message)}
		return f
	}
	return temporary("%s: %v", t.addr, err)
}

// renderCatalog writes the rebuilt plaintext of a queued message from its
// opened catalog.
func (o *Outbox) renderCatalog(w io.Writer, m *store.OutboxMessage, k *seal.SessionKey, cat []byte) error {
	return o.text.Render(w, cat, func(id string) (io.ReadCloser, error) {
		ref, ok := m.Blobs[id]
		if !ok {
			return nil, fmt.Errorf("part %s missing", id)
		}
		f, err := o.st.Blobs().Open(ref.Hash)
		if err != nil {
			return nil, err
		}
		return k.OpenPart(f)
	})
}

// openCatalog decrypts a queued message's catalog with the outbox key.
func (o *Outbox) openCatalog(m *store.OutboxMessage) (*seal.SessionKey, []byte, error) {
	k, err := o.sessionKey(m)
	if err != nil {
		return nil, nil, err
	}
	f, err := o.st.Blobs().Open(m.Blobs["catalog"].Hash)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	c, err := k.OpenCatalog(f, maxCatalog)
	if err != nil {
		return nil, nil, err
	}
	return k, c.Plaintext, nil
}
