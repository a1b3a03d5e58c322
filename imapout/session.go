package imapout

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/keyring"
	"tollbridge/store"
)

// session is one IMAP connection.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	ip     net.IP
	ctx    context.Context
	cancel context.CancelFunc

	user    *store.User
	acct    *account
	release func() // of the unlocked key

	sel *selected // the selected mailbox, nil when none
	// fetchState is the selected mailbox's state as a FETCH just read it,
	// after every change the FETCH made: the Poll that follows takes it
	// instead of reading it again (a client opening mail one FETCH at a
	// time would otherwise read it twice a message).
	fetchState *store.MailboxState
	readState  *store.MailboxState // the last that flagRows read
	cached     *renderedMessage
	buf        []byte // for copies
}

// copyBuf is the session's buffer for io.CopyBuffer.
func (s *session) copyBuf() []byte {
	if s.buf == nil {
		s.buf = make([]byte, 32<<10)
	}
	return s.buf
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

func newSession(s *Server, c *imapserver.Conn) *session {
	ctx, cancel := context.WithCancel(s.ctx)
	return &session{srv: s, conn: c, ip: remoteIP(c.NetConn()), ctx: ctx, cancel: cancel}
}

// Close ends the session. The user's key is dropped when it was the last
// one, after Config.Linger.
func (s *session) Close() error {
	s.cancel()
	s.dropCache()
	s.sel = nil
	if s.acct != nil {
		s.srv.detach(s.acct, s.release)
		s.acct, s.release = nil, nil
	}
	if s.release != nil {
		s.release()
		s.release = nil
	}
	s.srv.sessionClosed(s)
	return nil
}

var errThrottled = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnavailable,
	Text: "Too many failed logins from your address, try again later",
}

// loginFilingBudget is how long LOGIN may spend filing waiting mail.
const loginFilingBudget = 2 * time.Second

// Login checks the password by unlocking the user's key, then files the
// mail that waited for it before answering.
func (s *session) Login(username, password string) error {
	if s.user != nil {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Already logged in"}
	}
	done, err := s.srv.cfg.Guard.BeginLogin(s.ip.String(), username, password)
	if err != nil {
		keyring.LogLoginFailed(s.srv.log, "imap", s.ip.String(), username, keyring.LoginThrottled)
		return errThrottled
	}
	user, unlocked, release, err := s.unlock(username, password)
	if err != nil {
		wrong := errors.Is(err, store.ErrNotFound) || errors.Is(err, keyring.ErrBadPassword) || errors.Is(err, keyring.ErrBadAddress)
		if wrong {
			s.loginFailed(username)
		}
		done(s.ctx, wrong)
		if wrong {
			return imapserver.ErrAuthFailed
		}
		return err
	}
	done(s.ctx, false)
	acct, err := s.srv.attach(user, unlocked)
	if err != nil {
		release()
		return err
	}
	s.user, s.acct, s.release = user, acct, release
	// Mail that waited for the key is filed before LOGIN answers, so the
	// client sees it at once; but a login never waits long for it (a
	// sender's key server may stall): what is left is filed in the
	// background and shows up as new mail.
	fctx, cancel := context.WithTimeout(s.ctx, loginFilingBudget)
	err = acct.fileAll(fctx)
	cancel()
	switch {
	case fctx.Err() != nil && s.ctx.Err() == nil:
		acct.fileLater()
	case err != nil:
		s.srv.log.Warn("imap: filing at login", "user", user.Address, "err", err)
	}
	s.srv.log.Info("imap: login", "user", user.Address, "ip", s.ip)
	return nil
}

func (s *session) unlock(username, password string) (*store.User, *keyring.Unlocked, func(), error) {
	user, err := s.lookupUser(username)
	wrong := errors.Is(err, store.ErrNotFound) || errors.Is(err, keyring.ErrBadAddress)
	if err != nil && !wrong {
		return nil, nil, nil, err
	}
	// An unknown user costs a derivation (against a decoy key) too, so
	// the answer's timing does not tell which users exist.
	var address string
	var private []byte
	if !wrong {
		address, private = user.Address, user.PrivateKey
	}
	var retired []byte
	if !wrong {
		retired = user.RetiredKeys
	}
	unlocked, release, err := s.srv.cfg.Unlocker.AcquireUser(s.ctx, s.ip.String(), address, private, retired, []byte(password))
	if err != nil {
		return nil, nil, nil, err
	}
	return user, unlocked, release, nil
}

func (s *session) lookupUser(username string) (*store.User, error) {
	addr, err := keyring.NormalizeAddress(username)
	if err != nil {
		return nil, err
	}
	return s.srv.st.UserByAddress(s.ctx, addr)
}

// loginFailed reports a failed login (the Guard counts it and slows the
// answer down).
func (s *session) loginFailed(username string) {
	if f := s.srv.cfg.Metrics.LoginFailed; f != nil {
		f(s.ip)
	}
	keyring.LogLoginFailed(s.srv.log, "imap", s.ip.String(), username, keyring.LoginBadCredentials)
}

// Namespace implements imapserver.SessionNamespace: one personal
// namespace, "/" as hierarchy delimiter.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

// AppendLimit implements imapserver.SessionAppendLimit.
func (s *session) AppendLimit() uint32 { return uint32(s.srv.cfg.AppendLimit) }

// errKeyChanged ends a session whose user's stored key changed since it
// logged in (a new password, a recovery, a rotation or the user's
// removal, possibly by the CLI in another process).
var errKeyChanged = errors.New("imap: credentials changed")

// checkKey ends the session with BYE when the user's key generation is no
// longer the one it logged in with: the old password must not keep a
// session open. It runs before every command's answer (Poll) and while
// IDLE.
func (s *session) checkKey() error {
	if s.user == nil {
		return nil
	}
	gen, err := s.srv.st.KeyGeneration(s.ctx, s.user.ID)
	if err == nil && gen == s.user.Generation {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.srv.log.Info("imap: session ended, credentials changed", "user", s.user.Address, "ip", s.ip)
	s.conn.Bye("Credentials changed: log in again")
	return errKeyChanged
}
