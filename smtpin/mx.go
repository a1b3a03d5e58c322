package smtpin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"

	"github.com/emersion/go-smtp"

	"tollbridge/keyring"
	"tollbridge/store"
)

// MX accepts legacy SMTP mail for the local domains' users, never relays,
// and seals each message to its recipients' public keys before answering
// 250. Such mail carries no signature: it shows as tollbridge=none.
type MX struct {
	Config  Config
	Store   *store.Store
	Sealer  *Sealer
	Log     *slog.Logger
	Metrics Metrics

	ctx context.Context
}

// Serve runs the MX listener until ctx is done.
func (m *MX) Serve(ctx context.Context, ln net.Listener) error {
	m.ctx = ctx
	srv := newServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mxSession{m: m, c: c}, nil
	}), m.Config, m.Log)
	return serve(ctx, srv, ln, false)
}

type mxSession struct {
	m     *MX
	c     *smtp.Conn
	from  string
	rcpts []*store.User
}

func (s *mxSession) Mail(from string, opts *smtp.MailOptions) error {
	if opts != nil && opts.Size > s.m.Config.MaxMessageBytes {
		return smtpError(552, 5, 3, 4, "Message size exceeds fixed limit of %d bytes", s.m.Config.MaxMessageBytes)
	}
	s.from = ""
	if from != "" {
		addr, err := keyring.NormalizeAddress(from)
		if err != nil {
			return smtpError(501, 5, 1, 7, "Bad sender address syntax")
		}
		// Mail between this server's own users never comes in over the
		// MX: a local sender here is an impersonation.
		if _, domain := keyring.SplitAddress(addr); s.m.Config.isLocal(domain) {
			return smtpError(550, 5, 7, 1, "Mail from %s must be submitted with authentication", domain)
		}
		s.from = addr
	}
	return nil
}

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr, err := keyring.NormalizeAddress(to)
	if err != nil {
		return smtpError(501, 5, 1, 3, "Bad recipient address syntax")
	}
	_, domain := keyring.SplitAddress(addr)
	if !s.m.Config.isLocal(domain) {
		return smtpError(554, 5, 7, 1, "Relay access denied: %s is not a domain of this server", domain)
	}
	us, err := localUsers(s.m.ctx, s.m.Config, s.m.Store, s.m.Log, addr)
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
		return smtpError(554, 5, 5, 1, "No valid recipients")
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
	for i, m := range ms {
		m.Source, m.Received = store.SourceMX, now
		m.Trace = received(s.c, s.m.Config.Hostname, id, s.rcpts[i].Address, false, now)
	}
	if _, err := s.m.Store.DeliverMessages(s.m.ctx, ms); err != nil {
		sd.Abort()
		return internalError(s.m.Log, "store", err)
	}
	s.m.Metrics.accepted()
	s.m.Log.Info("legacy mail accepted", "id", id, "from", s.from, "recipients", len(s.rcpts), "bytes", sp.Size(), "ip", remoteIP(s.c))
	return nil
}

func (s *mxSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *mxSession) Logout() error { return nil }
