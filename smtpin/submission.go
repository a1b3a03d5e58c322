package smtpin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/keyring"
	"tollbridge/store"
	"tollbridge/translate"
)

// Submission is the mail clients' listener: AUTH required, a user sends
// only as their own address, and each message is sealed once (signed with
// the user's key, unlocked by the login password) and queued.
type Submission struct {
	Config    Config
	Store     *store.Store
	Sealer    *Sealer
	Unlocker  *keyring.Unlocker
	Guard     *keyring.Guard
	OutboxKey *openpgp.Entity // the session key is kept wrapped to it
	Notify    func()          // wakes the outbox after a message is queued
	Log       *slog.Logger
	Metrics   Metrics

	ctx context.Context
}

// Serve runs the listener until ctx is done. implicitTLS wraps ln in TLS
// (RFC 8314); otherwise STARTTLS is offered.
func (s *Submission) Serve(ctx context.Context, ln net.Listener, implicitTLS bool) error {
	s.ctx = ctx
	srv := newServer(smtp.BackendFunc(s.newSession), s.Config, s.Log)
	return serve(ctx, srv, ln, implicitTLS)
}

func (s *Submission) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &subSession{s: s, c: c, ip: remoteIP(c)}, nil
}

type subSession struct {
	s       *Submission
	c       *smtp.Conn
	ip      string
	user    *store.User
	key     *keyring.Unlocked
	release func()
	from    string
	rcpts   []string
}

var (
	errAuthRequired = smtpError(530, 5, 7, 0, "Authentication required")
	errEncryptFirst = smtpError(538, 5, 7, 11, "Encryption required: use STARTTLS before AUTH")
)

// AuthMechanisms offers AUTH only where it is allowed: over TLS, or on a
// loopback connection. Elsewhere it is not advertised, so clients do not
// send a password in the clear.
func (ss *subSession) AuthMechanisms() []string {
	if !isTLS(ss.c) && !isLoopback(ss.ip) {
		return nil
	}
	return []string{"PLAIN", "LOGIN"}
}

func (ss *subSession) Auth(mech string) (sasl.Server, error) {
	if !isTLS(ss.c) && !isLoopback(ss.ip) {
		return nil, errEncryptFirst
	}
	if ss.user != nil {
		return nil, smtpError(503, 5, 5, 1, "Already authenticated")
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return smtpError(535, 5, 7, 8, "Authorization identity must match the user name")
			}
			return ss.login(username, password)
		}), nil
	case "LOGIN":
		return &loginServer{check: ss.login}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// login checks the password by unlocking the user's key, which then signs
// what the user sends in this session.
func (ss *subSession) login(username, password string) error {
	done, err := ss.s.Guard.Begin(ss.ip)
	if err != nil {
		return smtpError(454, 4, 7, 0, "Too many failed logins from your address, try again later")
	}
	ctx := ss.s.ctx
	err = ss.unlock(username, password)
	done(ctx, errors.Is(err, smtp.ErrAuthFailed))
	return err
}

func (ss *subSession) unlock(username, password string) error {
	ctx := ss.s.ctx
	addr, err := keyring.NormalizeAddress(username)
	if err != nil {
		return smtp.ErrAuthFailed
	}
	u, err := storeUser(ctx, ss.s.Store, addr)
	if err != nil {
		return internalError(ss.s.Log, "smtp auth", err)
	}
	if u == nil {
		return smtp.ErrAuthFailed
	}
	key, release, err := ss.s.Unlocker.Acquire(ctx, u.Address, u.PrivateKey, []byte(password))
	if errors.Is(err, keyring.ErrBadPassword) {
		return smtp.ErrAuthFailed
	}
	if err != nil {
		return internalError(ss.s.Log, "smtp auth", err)
	}
	ss.user, ss.key, ss.release = u, key, release
	ss.s.Log.Debug("smtp login", "user", u.Address, "ip", ss.ip)
	return nil
}

func (ss *subSession) Mail(from string, opts *smtp.MailOptions) error {
	if ss.user == nil {
		return errAuthRequired
	}
	addr, err := keyring.NormalizeAddress(from)
	if err != nil || addr != ss.user.Address {
		return smtpError(553, 5, 7, 1, "Sender address rejected: you may only send as %s", ss.user.Address)
	}
	if opts != nil && opts.Size > ss.s.Config.MaxMessageBytes {
		return smtpError(552, 5, 3, 4, "Message size exceeds fixed limit of %d bytes", ss.s.Config.MaxMessageBytes)
	}
	ss.from = addr
	return nil
}

func (ss *subSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.user == nil {
		return errAuthRequired
	}
	addr, err := keyring.NormalizeAddress(to)
	if err != nil {
		return smtpError(501, 5, 1, 3, "Bad recipient address syntax")
	}
	rcpts := []string{addr}
	if _, domain := keyring.SplitAddress(addr); ss.s.Config.isLocal(domain) {
		us, err := localUsers(ss.s.ctx, ss.s.Config, ss.s.Store, ss.s.Log, addr)
		if err != nil {
			return err
		}
		// Expanded here, as Postfix's cleanup does before the queue: the
		// outbox delivers to each user, sealed to that user's key.
		rcpts = rcpts[:0]
		for _, u := range us {
			rcpts = append(rcpts, u.Address)
		}
	}
	for _, r := range rcpts {
		if !slices.Contains(ss.rcpts, r) {
			ss.rcpts = append(ss.rcpts, r)
		}
	}
	return nil
}

func (ss *subSession) Data(r io.Reader) error {
	if ss.user == nil {
		return errAuthRequired
	}
	sp := store.NewSpool("", ss.s.Config.spoolMemory())
	defer sp.Close()
	if err := readData(sp, r); err != nil {
		return err
	}
	if err := checkFrom(sp, ss.user.Address); err != nil {
		return err
	}
	id, err := ss.queue(sp)
	if err != nil {
		return err
	}
	ss.s.Metrics.accepted()
	ss.s.Log.Info("message accepted", "id", id, "user", ss.user.Address, "recipients", len(ss.rcpts), "bytes", sp.Size())
	if ss.s.Notify != nil {
		ss.s.Notify()
	}
	return nil
}

// readData spools DATA and refuses what must not be relayed.
func readData(sp *store.Spool, r io.Reader) error {
	eol := &eolCheck{w: sp}
	if _, err := io.Copy(eol, r); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // go-smtp's 552 for oversize messages
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			return smtpError(500, 5, 5, 2, "Line longer than %d bytes", maxLineLength)
		}
		return smtpError(451, 4, 3, 0, "Error reading message: %v", err)
	}
	if eol.bareEOL() {
		return smtpError(554, 5, 6, 0, "Message contains a bare CR or LF; lines must end in CRLF (RFC 5321 2.3.8)")
	}
	return nil
}

// eolCheck passes bytes through and notes a bare CR or LF (RFC 5321
// §2.3.8 allows only CRLF line ends; bare ones are how SMTP smuggling
// hides a second message).
type eolCheck struct {
	w            io.Writer
	lastCR, bare bool
}

func (e *eolCheck) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' && !e.lastCR || c != '\n' && e.lastCR {
			e.bare = true
		}
		e.lastCR = c == '\r'
	}
	return e.w.Write(p)
}

func (e *eolCheck) bareEOL() bool { return e.bare || e.lastCR }

// checkFrom requires every From: address to be the user's own.
func checkFrom(sp *store.Spool, user string) error {
	h, err := textproto.ReadHeader(bufio.NewReader(io.NewSectionReader(sp, 0, min(sp.Size(), 1<<20))))
	if err != nil {
		return smtpError(550, 5, 6, 0, "Message header cannot be parsed: %v", err)
	}
	if n := len(h.Values("From")); n != 1 {
		return smtpError(550, 5, 6, 0, "Message needs exactly one From: field, it has %d", n)
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	list, err := mh.AddressList("From")
	if err != nil || len(list) == 0 {
		return smtpError(550, 5, 6, 0, "Message needs a From: field with your address")
	}
	for _, a := range list {
		if n, err := keyring.NormalizeAddress(a.Address); err != nil || n != user {
			return smtpError(550, 5, 7, 1, "From: %s is not your address (%s)", a.Address, user)
		}
	}
	return nil
}

// queue seals the message once and commits it with one outbox entry per
// recipient; the caller's 250 follows only a nil error.
func (ss *subSession) queue(sp *store.Spool) (int64, error) {
	sd, err := ss.s.Sealer.Seal(sp, sp.Size(), ss.from, ss.key.Entity, translate.Options{StripBcc: true})
	if err != nil {
		return 0, internalError(ss.s.Log, "seal", err)
	}
	pkesk, err := sd.Key.Wrap(ss.s.OutboxKey)
	if err != nil {
		sd.Abort()
		return 0, internalError(ss.s.Log, "wrap to outbox key", err)
	}
	m := &store.OutboxMessage{
		UserID: ss.user.ID, Sender: ss.from, SessionKey: pkesk, Parts: sd.PartsJSON(),
		Size: sd.Size, ClientIP: ss.ip, Blobs: sd.Blobs,
	}
	// Signed replies from the people this user writes to need no work.
	for _, r := range ss.rcpts {
		m.Peers = append(m.Peers, store.Correspondent{Hash: keyring.HashNormalized(r), Address: r})
	}
	if err := ss.s.Store.EnqueueOutbox(ss.s.ctx, m, ss.rcpts); err != nil {
		sd.Abort()
		return 0, internalError(ss.s.Log, "queue", err)
	}
	return m.ID, nil
}

func (ss *subSession) Reset() {
	ss.from, ss.rcpts = "", nil
}

func (ss *subSession) Logout() error {
	if ss.release != nil {
		ss.release()
		ss.release = nil
	}
	return nil
}

// loginServer is the server side of AUTH LOGIN (draft-murchison-sasl-login),
// which go-sasl does not provide and Outlook and older clients still use.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case l.finished:
		return nil, true, errors.New("unexpected response")
	case !l.gotUser && response == nil:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	}
	l.finished = true
	return nil, true, l.check(l.user, string(response))
}
