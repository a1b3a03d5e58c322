// Package ticketserver serves the ticketed protocol's HTTPS API (docs/protocol.md
// §3.2–3.3) and the Web Key Directory of the bridge's local users (§3.1):
// remote servers ask for a ticket, do the work it demands, upload a sealed
// message's header, catalog and parts, and complete it into the
// recipient's store.
package ticketserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/protocol"
	"tollbridge/store"
)

// Options configure a Server: what it works with and the settings from
// the bridge's configuration. Zero values get the defaults noted.
type Options struct {
	// Store holds users, tickets and uploads.
	Store *store.Store
	// Works is the registry of worktypes offered (docs/protocol.md §3.8).
	Works *pow.Registry
	// Logger logs requests' failures; nil discards.
	Logger *slog.Logger
	// Metrics counts what the server did; fields may be nil.
	Metrics Metrics

	// Hostname names this server; Domains are the local domains.
	Hostname string
	Domains  []string
	// Difficulty of the work asked of untrusted senders.
	Difficulty pow.Difficulty
	// Expiry is a ticket's lifetime, restarted when it becomes valid.
	Expiry time.Duration
	// RatePerMinute caps ticket requests per client IP and per sender hash;
	// 0 disables the limit.
	RatePerMinute int
	// MaxMessageBytes bounds a message's announced and uploaded size.
	MaxMessageBytes int64
	// ReceiptKeys sign delivery receipts, one per local domain (the key of
	// receipts@DOMAIN, published by WKD).
	ReceiptKeys map[string]*openpgp.Entity
	// Clients, when set, is served as Thunderbird's autoconfig file.
	Clients *Clients
	// MaxPendingBytesPerClient and MaxPendingBytes bound the bytes
	// uploaded to tickets that have not completed, from one client (an
	// IPv4 address, an IPv6 /64) and in all; beyond them an upload gets
	// 429 with Retry-After. 0: no bound.
	MaxPendingBytesPerClient int64
	MaxPendingBytes          int64
	// MinUploadRate (bytes a second) is the slowest an upload body may
	// arrive, averaged over each UploadRateWindow after the first; a
	// slower upload is cut off (408, connection closed, nothing stored).
	// 0: no minimum.
	MinUploadRate    int64
	UploadRateWindow time.Duration
	// ServerKey fetches the server key of a sending domain (WKD key of
	// receipts@DOMAIN, pinned on first use) to check a signed ticket
	// request (docs/protocol.md §3.7). Nil: no request is trusted.
	ServerKey func(ctx context.Context, domain string) (*openpgp.Entity, error)
	// Recipients finds the user behind an alias, a postmaster address or
	// (in WKD, by its ?l=) a subaddress; nil: users' own addresses only.
	// An address with several users has no key here (404).
	Recipients *keyring.Resolver
	// DomainAllow returns the senders every user of a local domain trusts
	// ([[allow]] in the config): addresses, and "@domain" for all senders
	// whose requests that domain's server signs. Nil: none.
	DomainAllow func(domain string) []string
}

// Server is the ticket API.
type Server struct {
	cfg     Options
	store   *store.Store
	works   *pow.Registry
	log     *slog.Logger
	byIP    *limiter
	bySend  *limiter
	pending *reservations
	metrics Metrics
}

// Metrics counts what the server did; fields may be nil.
type Metrics struct {
	TicketsIssued    func()
	TicketsValidated func()
	// TicketsWorked, when set, is also called when work makes a ticket
	// valid, with the ticket's worktype.
	TicketsWorked    func(worktype string)
	MessagesReceived func()
}

// New returns a ticket API server over opts.Store offering the worktypes
// in opts.Works.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, st := opts, opts.Store
	return &Server{
		cfg: cfg, store: st, works: opts.Works, log: opts.Logger, metrics: opts.Metrics,
		byIP:   newLimiter(cfg.RatePerMinute, st.Now),
		bySend: newLimiter(cfg.RatePerMinute, st.Now),
		pending: newReservations(st, store.UploadQuota{
			PerClient: cfg.MaxPendingBytesPerClient, Total: cfg.MaxPendingBytes,
		}),
	}
}

// Serve accepts HTTPS connections on ln until ctx is done, then shuts down
// gracefully (in-flight requests get up to 10 seconds).
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	err := srv.ServeTLS(ln, "", "")
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// apiError is an HTTP error answered as JSON {"error": …} (plus extras).
type apiError struct {
	status int
	msg    string
	extra  map[string]any
	header http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP routes a request. Paths are matched by hand so that wrong
// methods and unknown paths get the protocol's JSON errors.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == protocol.TicketsPath || strings.HasPrefix(path, protocol.TicketsPath+"/"):
		s.routeTickets(w, r, strings.Split(strings.TrimPrefix(path, protocol.TicketsPath), "/")[1:])
	case strings.HasPrefix(path, "/.well-known/openpgpkey/"):
		s.serveWKD(w, r)
	case s.cfg.Clients != nil && (path == "/mail/config-v1.1.xml" || path == "/.well-known/autoconfig/mail/config-v1.1.xml"):
		s.serveAutoconfig(w, r)
	default:
		s.fail(w, r, errorf(http.StatusNotFound, "no such endpoint: %s", path))
	}
}

// routeTickets dispatches /v1/tickets[/{id}[/…]]; segs are the path
// segments after /v1/tickets.
func (s *Server) routeTickets(w http.ResponseWriter, r *http.Request, segs []string) {
	method := func(m string, h func(http.ResponseWriter, *http.Request, []string)) {
		if r.Method != m {
			w.Header().Set("Allow", m)
			s.fail(w, r, errorf(http.StatusMethodNotAllowed, "method %s not allowed, use %s", r.Method, m))
			return
		}
		h(w, r, segs)
	}
	switch {
	case len(segs) == 0:
		method(http.MethodPost, s.handleRequest)
	case len(segs) == 1 && segs[0] != "":
		method(http.MethodPost, s.handleWork)
	case len(segs) == 2 && segs[1] == protocol.CompleteName:
		method(http.MethodPost, s.handleComplete)
	case len(segs) == 2 && (segs[1] == protocol.UploadHeader || segs[1] == protocol.UploadCatalog),
		len(segs) == 3 && (segs[1] == protocol.BlocksDir || segs[1] == protocol.AttachmentsDir):
		method(http.MethodPut, s.handleUpload)
	default:
		s.fail(w, r, errorf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path))
	}
}

// reply writes v as a JSON answer.
func reply(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// fail answers err: an *apiError as itself, a store ticket state as its
// status, anything else as a logged 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, store.ErrNotFound):
		ae = errorf(http.StatusNotFound, "unknown ticket")
	case errors.Is(err, store.ErrTicketCompleted):
		ae = errorf(http.StatusConflict, "ticket already completed")
	case errors.Is(err, store.ErrTicketExpired):
		ae = errorf(http.StatusGone, "ticket expired")
	case errors.Is(err, store.ErrTicketNotValid):
		ae = errorf(http.StatusForbidden, "ticket not yet valid: do the work first")
	default:
		id := newID("e_")
		s.log.Error("ticket api", "method", r.Method, "path", r.URL.Path, "err", err, "id", id)
		ae = errorf(http.StatusInternalServerError, "internal error (id %s)", id)
	}
	for k, v := range ae.header {
		w.Header()[k] = v
	}
	body := map[string]any{}
	for k, v := range ae.extra {
		body[k] = v
	}
	body["error"] = ae.msg
	reply(w, ae.status, body)
}

// limitKey groups clients for rate limiting as the store groups them for
// the pending-bytes quota: an IPv4 address, or an IPv6 /64.
func limitKey(ip string) string { return store.ClientKey(ip) }

// clientIP is the remote address without port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// deadline bounds the rest of a request's reading and writing.
func deadline(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	t := time.Now().Add(d)
	rc.SetReadDeadline(t)
	rc.SetWriteDeadline(t)
}
