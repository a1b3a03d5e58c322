package imapout

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/keyring"
	"tollbridge/seal"
	"tollbridge/store"
	"tollbridge/translate"
)

// Options configure a Server. Unlocker should be the one SMTP submission
// uses too; without Seal, APPEND is refused. Zero values get the defaults
// noted.
type Options struct {
	// Store holds the users and their mail.
	Store *store.Store
	// Logger logs sessions' failures; nil discards.
	Logger *slog.Logger

	// Hostname names this bridge in Authentication-Results fields (the
	// system's host name when empty).
	Hostname string
	// TLS enables STARTTLS on plain listeners (and is what the caller wraps
	// implicit-TLS listeners with). Without TLS, or before STARTTLS, logins
	// are only accepted from loopback addresses (LOGINDISABLED elsewhere).
	TLS *tls.Config
	// Unlocker unlocks users' keys with their IMAP password and shares them
	// between sessions (a new one with 2 concurrent derivations when nil).
	Unlocker *keyring.Unlocker
	// SenderKeys returns the public key of a sender, to check catalog
	// signatures; an error means the key is not available (verdict none).
	SenderKeys func(ctx context.Context, address string) (*openpgp.Entity, error)
	// FreshSenderKey, when set, fetches a sender's key from its server
	// even when one is pinned, following a key transition (docs/protocol.md
	// §3.1.4). It is asked once per filing run for a sender whose pinned
	// key did not verify a signature: the sender may have rotated.
	FreshSenderKey func(ctx context.Context, address string) (*openpgp.Entity, error)
	// Seal seals a raw message to the user's own key for APPEND: it returns
	// a NewMessage with Header and Blobs filled in.
	Seal func(ctx context.Context, u *store.User, src io.ReaderAt, size int64) (*store.NewMessage, error)
	// AppendLimit is the largest message APPEND accepts (APPENDLIMIT);
	// 0 means 50 MiB.
	AppendLimit int64
	// SpoolDir holds encrypted temporary files for large messages; ""
	// means the system's temporary directory.
	SpoolDir string
	// Metrics receives session counts; nil fields are skipped.
	Metrics Metrics

	// Guard slows down and throttles failed logins per client address,
	// shared with SMTP submission; nil means a Guard of its own with the
	// defaults (one second per failure, 10 a minute, then 5 minutes off).
	Guard *keyring.Guard
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Linger is how long a user's unlocked key, session-key cache and
	// metadata caches stay in memory after their last session ends, so
	// that logging out and in again (clients that open a connection per
	// task, or reconnect) costs no key derivation: a login in that time
	// is checked against the held key's password verifier. 0 means
	// DefaultLinger; negative drops them with the last session.
	Linger time.Duration
}

// DefaultLinger is Config.Linger's default: Dovecot's clients reconnect
// within minutes, and the key stays no longer than a session would.
const DefaultLinger = 5 * time.Minute

// linger is Config.Linger with its default.
func (s *Server) linger() time.Duration {
	if s.cfg.Linger == 0 {
		return DefaultLinger
	}
	return s.cfg.Linger
}

// Metrics are optional hooks for monitoring.
type Metrics struct {
	SessionOpened func()
	SessionClosed func()
	LoginFailed   func(ip net.IP)
}

// Server serves IMAP to the users of a store.
type Server struct {
	st  *store.Store
	cfg Options
	log *slog.Logger

	ctx    context.Context // sessions' context, cancelled by Close
	cancel context.CancelFunc

	// Two go-imap servers: one that allows logins without TLS, for loopback
	// clients, and one that does not.
	local, remote     *imapserver.Server
	localLn, remoteLn *connListener
	startOnce         sync.Once
	closeOnce         sync.Once
	sessions          sync.WaitGroup

	// joiner renders messages, and partBufs decrypts their parts, with
	// buffers kept between fetches.
	joiner   translate.Joiner
	partBufs seal.PartBuffers

	mu       sync.Mutex
	closed   bool
	accounts map[int64]*account
	open     map[*session]struct{}
}

// caps are the capabilities advertised on top of what imapserver adds
// itself (IDLE, UNSELECT, ENABLE, SASL-IR, LITERAL-, UTF8=ACCEPT, STARTTLS,
// AUTH=PLAIN or LOGINDISABLED, APPENDLIMIT=n).
var caps = imap.CapSet{
	imap.CapIMAP4rev1:        {},
	imap.CapIMAP4rev2:        {},
	imap.CapNamespace:        {},
	imap.CapUIDPlus:          {},
	imap.CapESearch:          {},
	imap.CapSearchRes:        {},
	imap.CapListExtended:     {},
	imap.CapListStatus:       {},
	imap.CapMove:             {},
	imap.CapStatusSize:       {},
	imap.CapBinary:           {},
	imap.CapChildren:         {},
	imap.CapSpecialUse:       {},
	imap.CapCreateSpecialUse: {},
	imap.CapLiteralPlus:      {},
	imap.CapCondStore:        {},
	imap.CapQResync:          {},
}

// New returns a server for the users of cfg.Store.
func New(cfg Options) *Server {
	st, log := cfg.Store, cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Unlocker == nil {
		cfg.Unlocker = keyring.NewUnlocker(2)
	}
	if cfg.AppendLimit <= 0 {
		cfg.AppendLimit = 50 << 20
	}
	cfg.AppendLimit = min(cfg.AppendLimit, 1<<32-1)
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = os.TempDir()
	}
	if cfg.Guard == nil {
		cfg.Guard = &keyring.Guard{Now: cfg.Now}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		st: st, cfg: cfg, log: log,
		ctx: ctx, cancel: cancel,
		accounts: map[int64]*account{},
		open:     map[*session]struct{}{},
	}
	s.local = s.newIMAPServer(true)
	s.remote = s.newIMAPServer(false)
	return s
}

func (s *Server) newIMAPServer(insecureAuth bool) *imapserver.Server {
	return imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         caps,
		Logger:       imapLogger{s.log},
		TLSConfig:    s.cfg.TLS,
		InsecureAuth: insecureAuth,
	})
}

// imapLogger sends imapserver's messages to slog.
type imapLogger struct{ log *slog.Logger }

// Printf logs a go-imap message at a level that fits it.
func (l imapLogger) Printf(format string, args ...any) {
	msg := "imap: " + fmt.Sprintf(format, args...)
	switch {
	case strings.Contains(format, "panic"):
		l.log.Error(msg)
	case strings.HasPrefix(format, "failed to read command"):
		l.log.Debug(msg) // clients that just go away
	default:
		l.log.Warn(msg)
	}
}

func (s *Server) start() {
	s.startOnce.Do(func() {
		s.localLn = newConnListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		s.remoteLn = newConnListener(&net.TCPAddr{})
		go s.local.Serve(s.localLn)
		go s.remote.Serve(s.remoteLn)
	})
}

// Serve accepts IMAP connections on ln until ctx is done or Close is
// called, then closes ln and every session of the server and returns nil.
// ln is a plain listener (STARTTLS is offered when Options.TLS is set) or
// an implicit-TLS one (tls.NewListener; ServeTLS is better, it coalesces
// writes under TLS too). Serve may run on several listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, false)
}

// ServeTLS is Serve for implicit TLS (RFC 8314) on a plain listener ln,
// with Options.TLS.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, true)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, implicitTLS bool) error {
	s.start()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	go func() {
		<-s.ctx.Done()
		ln.Close()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("imap: accept: %w", err)
		}
		delay = 0
		_, isTLS := c.(*tls.Conn)
		if !isTLS {
			c = cork(c)
		}
		if implicitTLS {
			c, isTLS = tls.Server(c, s.cfg.TLS), true
		}
		if isLoopback(c) || isTLS {
			s.localLn.hand(c)
		} else {
			s.remoteLn.hand(c)
		}
	}
}

// maxRebuilt bounds the size of a rebuilt message: twice the largest
// message accepted (base64 bodies grow by a third when rebuilt from their
// decoded parts), plus room for headers.
func (s *Server) maxRebuilt() int64 { return 2*s.cfg.AppendLimit + 1<<20 }

// Close stops every listener and session and waits for the sessions to
// end. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		open := make([]*session, 0, len(s.open))
		for sess := range s.open {
			open = append(open, sess)
		}
		s.mu.Unlock()
		s.cancel()
		s.start()
		// The go-imap servers stop when their listeners close; their own
		// Close is not used, as it races with a Serve that just started.
		s.localLn.Close()
		s.remoteLn.Close()
		for _, sess := range open {
			sess.conn.NetConn().Close()
		}
	})
	s.sessions.Wait()
	s.expireAll()
	return nil
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	s.sessions.Add(1)
	sess := newSession(s, c)
	s.open[sess] = struct{}{}
	s.mu.Unlock()
	if f := s.cfg.Metrics.SessionOpened; f != nil {
		f()
	}
	return sess, nil, nil
}

func (s *Server) sessionClosed(sess *session) {
	s.mu.Lock()
	delete(s.open, sess)
	s.mu.Unlock()
	if f := s.cfg.Metrics.SessionClosed; f != nil {
		f()
	}
	s.sessions.Done()
}
