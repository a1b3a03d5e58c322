// Package smtpin is the bridge's SMTP side (go-smtp backends): submission
// from local users' mail clients, which seals each message once and puts
// it in the outbox, and MX for legacy mail to local users, which seals it
// to each recipient's key on arrival. Nothing accepted is acknowledged
// before it is on disk.
package smtpin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"tollbridge/keyring"
	"tollbridge/store"
)

// Config is what the SMTP listeners need from the bridge's configuration.
type Config struct {
	Hostname        string
	Domains         []string
	MaxMessageBytes int64
	MaxRecipients   int
	Timeout         time.Duration // per command and per DATA
	TLS             *tls.Config
	// SpoolMemory is how much of a message is held in memory before the
	// rest goes to an encrypted temporary file; 0 means 1 MiB.
	SpoolMemory int
	// Recipients maps a local recipient (alias, subaddress, postmaster,
	// catch-all) to its users; nil: only users' own addresses.
	Recipients *keyring.Resolver
}

// Metrics counts what the listeners did; nil fields are skipped.
type Metrics struct {
	Accepted func() // a message got its 250
}

func (m Metrics) accepted() {
	if m.Accepted != nil {
		m.Accepted()
	}
}

func (cfg Config) spoolMemory() int {
	if cfg.SpoolMemory > 0 {
		return cfg.SpoolMemory
	}
	return 1 << 20
}

// maxLineLength bounds one line of a command or of DATA.
const maxLineLength = 256 << 10

// newServer makes a go-smtp server with the bridge's limits: go-smtp's own
// defaults are unlimited.
func newServer(be smtp.Backend, cfg Config, log *slog.Logger) *smtp.Server {
	s := smtp.NewServer(be)
	s.Domain = cfg.Hostname
	s.MaxMessageBytes = cfg.MaxMessageBytes
	s.MaxRecipients = cfg.MaxRecipients
	// Command lines are short, but message lines longer than RFC 5322's
	// 998 characters exist in real mail and must arrive unchanged.
	s.MaxLineLength = maxLineLength
	s.ReadTimeout = cfg.Timeout
	s.WriteTimeout = cfg.Timeout
	s.TLSConfig = cfg.TLS
	// AUTH before TLS is refused by the session itself except on loopback,
	// which a server-wide switch cannot express.
	s.AllowInsecureAuth = true
	s.ErrorLog = slogLogger{log}
	return s
}

// serve runs s on ln until ctx is done, then stops accepting and gives
// sessions in flight ten seconds to finish.
func serve(ctx context.Context, s *smtp.Server, ln net.Listener, implicitTLS bool) error {
	if implicitTLS {
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if s.Shutdown(shut) != nil {
			s.Close()
		}
	}()
	err := s.Serve(ln)
	<-done
	if errors.Is(err, smtp.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.log.Warn(fmt.Sprintln(v...)) }

// internalError logs err under an id the user can quote and answers a
// temporary failure: the client keeps the message and tries again.
func internalError(log *slog.Logger, what string, err error) *smtp.SMTPError {
	id := newID()
	log.Error(what, "err", err, "id", id)
	return replyTryLater.err("Temporary local problem, try again later (id %s)", id)
}

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// remoteIP is the client's address without port.
func remoteIP(c *smtp.Conn) string {
	host, _, err := net.SplitHostPort(c.Conn().RemoteAddr().String())
	if err != nil {
		return c.Conn().RemoteAddr().String()
	}
	return host
}

func isLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}

func isTLS(c *smtp.Conn) bool {
	_, ok := c.TLSConnectionState()
	return ok
}

func (cfg Config) isLocal(domain string) bool {
	for _, d := range cfg.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// received is the trace field for mail accepted from a client (RFC 5321
// §4.4), with the protocol keyword of RFC 3848.
func received(c *smtp.Conn, hostname, id, rcpt string, authed bool, now time.Time) []byte {
	proto := "ESMTP"
	if isTLS(c) {
		proto += "S"
	}
	if authed {
		proto += "A"
	}
	ip := remoteIP(c)
	if strings.Contains(ip, ":") {
		ip = "IPv6:" + ip
	}
	helo := c.Hostname()
	if !plausibleHelo(helo) {
		helo = "unknown"
	}
	return fmt.Appendf(nil, "Received: from %s ([%s])\r\n\tby %s with %s id %s\r\n\tfor <%s>; %s\r\n",
		helo, ip, hostname, proto, id, rcpt, now.UTC().Format(time.RFC1123Z))
}

// plausibleHelo reports whether an EHLO argument can go into a trace field
// as is: a domain or an address literal. Anything else (control
// characters, a forged field after a bare CR) is written as "unknown".
func plausibleHelo(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_:[]", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// storeUser finds a local user by normalised address, nil if none.
func storeUser(ctx context.Context, st *store.Store, addr string) (*store.User, error) {
	u, err := st.UserByAddress(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

// localUsers resolves a recipient in a local domain to the users who get
// the mail, or answers why not in SMTP's terms.
func localUsers(ctx context.Context, cfg Config, st *store.Store, log *slog.Logger, addr string) ([]*store.User, error) {
	if cfg.Recipients == nil {
		u, err := storeUser(ctx, st, addr)
		if err != nil {
			return nil, internalError(log, "rcpt", err)
		}
		if local, _ := keyring.SplitAddress(addr); u == nil || local == keyring.ReservedLocal {
			return nil, replyNoSuchUser.err("No such user here: %s", addr)
		}
		return []*store.User{u}, nil
	}
	addrs, err := cfg.Recipients.Resolve(ctx, addr)
	switch {
	case errors.Is(err, keyring.ErrNoSuchUser):
		return nil, replyNoSuchUser.err("No such user here: %s", addr)
	case errors.Is(err, keyring.ErrAliasLoop):
		log.Warn("alias loop", "recipient", addr, "err", err)
		return nil, replyAliasLoop.err("Alias loop for %s", addr)
	case err != nil:
		return nil, internalError(log, "rcpt", err)
	}
	var us []*store.User
	for _, a := range addrs {
		u, err := storeUser(ctx, st, a)
		if err != nil {
			return nil, internalError(log, "rcpt", err)
		}
		if u != nil { // removed since it was resolved
			us = append(us, u)
		}
	}
	if len(us) == 0 {
		return nil, replyNoSuchUser.err("No such user here: %s", addr)
	}
	return us, nil
}
