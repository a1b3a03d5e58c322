package smtpin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/intake"
	"tollbridge/keyring"
	"tollbridge/store"
)

// Submission is the mail clients' listener: AUTH required, a user sends
// only as their own address, and each message is sealed once (signed with
// the user's key, unlocked by the login password) and queued.
type Submission struct {
	Config    Config
	Store     *store.Store
	Sealer    *intake.Sealer
	Unlocker  *keyring.Unlocker
	Guard     *keyring.Guard
	OutboxKey *openpgp.Entity // the session key is kept wrapped to it
	Notify    func()          // wakes the outbox after a message is queued
	Log       *slog.Logger
	Metrics   Metrics
}

// Serve runs the listener until ctx is done. implicitTLS wraps ln in TLS
// (RFC 8314); otherwise STARTTLS is offered.
func (s *Submission) Serve(ctx context.Context, ln net.Listener, implicitTLS bool) error {
	srv := newServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &subSession{ctx: ctx, s: s, c: c, ip: remoteIP(c)}, nil
	}), s.Config, s.Log)
	// DSN (RFC 3461) on submission only: success notices go to the
	// authenticated sender's INBOX. The MX does not offer it, so no
	// stranger can make this bridge send notices elsewhere.
	srv.EnableDSN = true
	return serve(ctx, srv, ln, implicitTLS)
}

// subSession is one submission connection. ctx is Serve's: go-smtp's
// session methods take none, so the connection carries the listener's.
type subSession struct {
	ctx     context.Context
	s       *Submission
	c       *smtp.Conn
	ip      string
	user    *store.User
	key     *keyring.Unlocked
	release func()
	from    string
	rcpts   []string
	// envid, ret and dsn are the RFC 3461 parameters of this transaction.
	envid, ret string
	dsn        map[string]store.RecipientDSN
}

var (
	errAuthRequired = replyAuthRequired.err("Authentication required")
	errEncryptFirst = replyEncryptFirst.err("Encryption required: use STARTTLS before AUTH")
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
		return nil, replyBadSequence.err("Already authenticated")
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return replyBadCredentials.err("Authorization identity must match the user name")
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
	done, err := ss.s.Guard.BeginLogin(ss.ip, username, password)
	if err != nil {
		keyring.LogLoginFailed(ss.s.Log, "smtp", ss.ip, username, keyring.LoginThrottled)
		return replyAuthThrottled.err("Too many failed logins from your address, try again later")
	}
	ctx := ss.ctx
	err = ss.unlock(username, password)
	failed := errors.Is(err, smtp.ErrAuthFailed)
	if failed {
		keyring.LogLoginFailed(ss.s.Log, "smtp", ss.ip, username, keyring.LoginBadCredentials)
	}
	done(ctx, failed)
	return err
}

func (ss *subSession) unlock(username, password string) error {
	ctx := ss.ctx
	u, err := ss.lookupUser(username)
	if err != nil {
		return internalError(ss.s.Log, "smtp auth", err)
	}
	// An unknown user costs a derivation too, so the answer's timing
	// does not tell which users exist.
	var address string
	var private, retired []byte
	if u != nil {
		address, private, retired = u.Address, u.PrivateKey, u.RetiredKeys
	}
	key, release, err := ss.s.Unlocker.AcquireUser(ctx, ss.ip, address, private, retired, []byte(password))
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

// lookupUser finds the local user named username; nil when there is none.
func (ss *subSession) lookupUser(username string) (*store.User, error) {
	addr, err := keyring.NormalizeAddress(username)
	if err != nil {
		return nil, nil
	}
	return storeUser(ss.ctx, ss.s.Store, addr)
}

func (ss *subSession) Mail(from string, opts *smtp.MailOptions) error {
	if ss.user == nil {
		return errAuthRequired
	}
	if err := ss.checkKey(); err != nil {
		return err
	}
	addr, err := keyring.NormalizeAddress(from)
	if err != nil || addr != ss.user.Address {
		return replySenderNotYours.err("Sender address rejected: you may only send as %s", ss.user.Address)
	}
	if opts != nil && opts.Size > ss.s.Config.MaxMessageBytes {
		return replyTooBig.err("Message size exceeds fixed limit of %d bytes", ss.s.Config.MaxMessageBytes)
	}
	ss.from = addr
	if opts != nil {
		ss.envid, ss.ret = opts.EnvelopeID, string(opts.Return)
	}
	return nil
}

func (ss *subSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if ss.user == nil {
		return errAuthRequired
	}
	addr, err := keyring.NormalizeAddress(to)
	if err != nil {
		return replyBadRecipient.err("Bad recipient address syntax")
	}
	rcpts := []string{addr}
	if _, domain := keyring.SplitAddress(addr); ss.s.Config.isLocal(domain) {
		us, err := localUsers(ss.ctx, ss.s.Config, ss.s.Store, ss.s.Log, addr)
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
	ss.noteDSN(rcpts, opts)
	return nil
}

// noteDSN keeps a RCPT's NOTIFY and ORCPT (RFC 3461 §4) for every address
// it expanded to.
func (ss *subSession) noteDSN(rcpts []string, opts *smtp.RcptOptions) {
	if opts == nil || len(opts.Notify) == 0 && opts.OriginalRecipient == "" {
		return
	}
	var d store.RecipientDSN
	for i, n := range opts.Notify {
		if i > 0 {
			d.Notify += ","
		}
		d.Notify += string(n)
	}
	if opts.OriginalRecipient != "" {
		// RFC 3464 writes the type in lower case ("rfc822;addr").
		d.ORCPT = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	if ss.dsn == nil {
		ss.dsn = map[string]store.RecipientDSN{}
	}
	for _, r := range rcpts {
		ss.dsn[r] = d
	}
}

func (ss *subSession) Data(r io.Reader) error {
	if ss.user == nil {
		return errAuthRequired
	}
	if err := ss.checkKey(); err != nil {
		return err
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
			return replyLineTooLong.err("Line longer than %d bytes", maxLineLength)
		}
		return replyTryLater.err("Error reading message: %v", err)
	}
	if eol.bareEOL() {
		return replyBadLineEndings.err("Message contains a bare CR or LF; lines must end in CRLF (RFC 5321 2.3.8)")
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

// maxHeaderBytes bounds a submitted message's header section. Beyond it
// the message is refused rather than checked in part: a From: hidden
// after the bound would go out unchecked.
const maxHeaderBytes = 1 << 20

// senderFields name the message's author or sender; each must name only
// the user (RFC 5322 §3.6.2, §3.6.6). From: is also required, once.
var senderFields = []string{"From", "Sender", "Resent-From", "Resent-Sender"}

// checkFrom requires every From:, Sender:, Resent-From: and
// Resent-Sender: address to be the user's own, looking at the whole
// header section.
func checkFrom(sp *store.Spool, user string) error {
	h, err := readHeaderSection(sp)
	if err != nil {
		return err
	}
	if n := len(h.Values("From")); n != 1 {
		return replyBadMessage.err("Message needs exactly one From: field, it has %d", n)
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	for _, f := range senderFields {
		if err := checkSenderField(mh, f, user); err != nil {
			return err
		}
	}
	return nil
}

// checkSenderField checks every instance of field f: present, it must
// parse and name user and no one else.
func checkSenderField(mh mail.Header, f, user string) error {
	if !mh.Has(f) {
		return nil
	}
	for _, v := range mh.Values(f) {
		list, err := mail.ParseAddressList(v)
		if err != nil || len(list) == 0 {
			return replyBadMessage.err("Message needs a %s: field with your address", f)
		}
		for _, a := range list {
			if n, err := keyring.NormalizeAddress(a.Address); err != nil || n != user {
				return replyNotAllowed.err("%s: %s is not your address (%s)", f, a.Address, user)
			}
		}
	}
	return nil
}

// readHeaderSection parses the message's whole header section, refusing
// one longer than maxHeaderBytes. readData has made sure every line ends
// in CRLF, so the section ends at the first empty line.
func readHeaderSection(sp *store.Spool) (textproto.Header, error) {
	buf := make([]byte, min(sp.Size(), maxHeaderBytes))
	if _, err := io.ReadFull(io.NewSectionReader(sp, 0, int64(len(buf))), buf); err != nil {
		return textproto.Header{}, replyTryLater.err("Error reading message: %v", err)
	}
	end := headerEnd(buf)
	if end < 0 && sp.Size() > maxHeaderBytes {
		return textproto.Header{}, replyTooBig.err("Message header section exceeds the limit of %d bytes", maxHeaderBytes)
	}
	if end < 0 {
		end = len(buf) // a message without a body
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(buf[:end])))
	if err != nil {
		return textproto.Header{}, replyBadMessage.err("Message header cannot be parsed: %v", err)
	}
	return h, nil
}

// headerEnd is the length of the header section in b, up to and
// including the empty line, or -1 when b holds no empty line.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// queue seals the message once and commits it with one outbox entry per
// recipient; the caller's 250 follows only a nil error.
func (ss *subSession) queue(sp *store.Spool) (int64, error) {
	sd, err := ss.s.Sealer.Seal(sp, sp.Size(), ss.from, ss.key.Entity, intake.Options{StripBcc: true})
	if err != nil {
		return 0, internalError(ss.s.Log, "seal", err)
	}
	pkesk, err := sd.Key.Wrap(ss.s.OutboxKey)
	if err != nil {
		sd.Abort()
		return 0, internalError(ss.s.Log, "wrap to outbox key", err)
	}
	m := &store.OutboxMessage{
		UserID: ss.user.ID, Sender: ss.from, SessionKey: pkesk, Parts: sd.Parts,
		Size: sd.Size, ClientIP: ss.ip, Blobs: sd.Blobs,
		EnvID: ss.envid, Ret: ss.ret, DSN: ss.dsn,
	}
	// Signed replies from the people this user writes to need no work.
	for _, r := range ss.rcpts {
		m.Peers = append(m.Peers, store.Correspondent{Hash: keyring.HashNormalized(r), Address: r})
	}
	if err := ss.s.Store.EnqueueOutbox(ss.ctx, m, ss.rcpts); err != nil {
		sd.Abort()
		return 0, internalError(ss.s.Log, "queue", err)
	}
	return m.ID, nil
}

func (ss *subSession) Reset() {
	ss.from, ss.rcpts = "", nil
	ss.envid, ss.ret, ss.dsn = "", "", nil
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

// checkKey refuses to go on once the user's stored key changed since the
// login (a new password, a recovery, a rotation, a removal; possibly by the
// CLI in another process): 421, after which the connection is no longer
// logged in. Checked at each MAIL FROM and DATA.
func (ss *subSession) checkKey() error {
	gen, err := ss.s.Store.KeyGeneration(ss.ctx, ss.user.ID)
	if err == nil && gen == ss.user.Generation {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return internalError(ss.s.Log, "smtp key check", err)
	}
	ss.s.Log.Info("smtp: login ended, credentials changed", "user", ss.user.Address, "ip", ss.ip)
	// The login ends here: the key goes, and anything further on this
	// connection needs AUTH with the new password.
	ss.Logout()
	ss.user, ss.key = nil, nil
	ss.Reset()
	return replyClosing.err("Credentials changed: log in again")
}
