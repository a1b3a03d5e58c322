// Package outbox delivers accepted mail: a durable queue in the store, a
// pool of workers, and per recipient one of three routes — a local user
// (stored at once, still sealed), a ticketed domain (ticket, work, upload,
// complete) or a legacy domain (plain SMTP to a smarthost or the domain's
// MX). Temporary failures back off exponentially; permanent ones, and
// those that outlive retry_for, bounce to the sender as an RFC 3464 DSN.
package outbox

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/store"
	"tollbridge/ticketclient"
)

// Options configure an Outbox: what it works with and the delivery
// settings from the bridge's configuration. Zero values get the defaults
// noted.
type Options struct {
	// Store holds the queue and the sealed messages.
	Store *store.Store
	// OutboxKey opens the session keys of queued messages (docs/rules.md §4).
	OutboxKey *openpgp.Entity
	// Tickets is the ticket API client for ticketed domains.
	Tickets *ticketclient.Client
	// Keys looks up and pins recipients' keys.
	Keys *keyring.Remote
	// Plaintext rebuilds queued messages for legacy relay and bounces.
	Plaintext Plaintext
	// Bounce stores a DSN for a local sender.
	Bounce LocalDeliverer
	// Logger logs deliveries; nil discards.
	Logger *slog.Logger
	// Metrics counts deliveries; fields may be nil.
	Metrics Metrics
	// Now is the clock of retries, expiry and trace fields; Store.Now when
	// nil. The store's clock times ClaimDue's back-off, so a test gives
	// both the same one.
	Now func() time.Time

	Hostname string
	Domains  []string
	Workers  int
	RetryFor time.Duration
	// FirstRetry and MaxRetry shape the backoff: FirstRetry doubling up to
	// MaxRetry (docs/rules.md §4: 1 minute and 1 hour, the defaults).
	FirstRetry, MaxRetry time.Duration
	// AttemptTimeout bounds one delivery attempt; 0 means 30 minutes.
	AttemptTimeout time.Duration
	Smarthost      Smarthost
	// MXPort is the port of direct MX delivery; 0 means 25.
	MXPort int
	// LookupMX and LookupHost resolve legacy domains for direct MX
	// delivery; net.DefaultResolver's when nil. An error that is a
	// *net.DNSError with IsNotFound means the name does not exist (or has
	// no such records); any other error is temporary.
	LookupMX   func(ctx context.Context, name string) ([]*net.MX, error)
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// Resolver is the [dns] resolver: LookupMX and LookupHost default to
	// its methods, and MX host names are dialed through it. nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
	// ServerKey fetches a receiving domain's server key (the WKD key of
	// receipts@DOMAIN, pinned on first use) to verify its delivery
	// receipts (docs/protocol.md §3.3.3). Nil: receipts are kept unchecked.
	ServerKey func(ctx context.Context, domain string) (*openpgp.Entity, error)
	// DKIM holds the local domains' signing keys, by lower-case domain:
	// legacy mail whose From: domain has keys is signed with each of them
	// (docs/rules.md §4; see dkim.go).
	DKIM map[string][]DKIMKey
}

// Smarthost is the relay for legacy domains; Addr "" means direct MX.
type Smarthost struct {
	Addr     string // host:port
	TLS      string // "starttls", "tls" or "none"
	Username string // AUTH PLAIN when set
	Password string
	RootCAs  *x509.CertPool // nil: system roots
}

// Plaintext gives the outbox read access to a sealed message's plaintext,
// which package translate rebuilds; cmd/bridge wires it in.
type Plaintext interface {
	// Render writes the rebuilt message from its catalog plaintext and its
	// parts' plaintexts.
	Render(w io.Writer, catalog []byte, part func(id string) (io.ReadCloser, error)) error
	// Headers returns the message's top-level header section.
	Headers(catalog []byte) ([]byte, error)
}

// LocalDeliverer seals a raw message (a bounce) to a local user's key and
// stores it for their INBOX; package smtpin's Sealer does it, wired in.
type LocalDeliverer func(ctx context.Context, u *store.User, raw []byte) error

// Metrics counts what the outbox did; nil fields are skipped.
type Metrics struct {
	Delivered  func(route string)
	Bounced    func()
	WorkSecond func(seconds float64)
	// BadReceipt counts receipts that failed verification.
	BadReceipt func()
}

// Outbox is the delivery engine.
type Outbox struct {
	cfg      Options
	st       *store.Store
	key      *openpgp.Entity
	tickets  *ticketclient.Client
	keys     *keyring.Remote
	text     Plaintext
	bounceTo LocalDeliverer
	log      *slog.Logger
	metrics  Metrics

	wake chan struct{}
	mu   sync.Mutex
	busy map[int64]bool
}

// New returns an outbox; its Options.OutboxKey is the bridge's outbox key
// (private), to which queued messages' session keys are wrapped.
func New(cfg Options) *Outbox {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.FirstRetry <= 0 {
		cfg.FirstRetry = time.Minute
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = time.Hour
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Minute
	}
	if cfg.MXPort == 0 {
		cfg.MXPort = 25
	}
	resolver := cfg.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if cfg.LookupMX == nil {
		cfg.LookupMX = resolver.LookupMX
	}
	if cfg.LookupHost == nil {
		cfg.LookupHost = resolver.LookupHost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil && cfg.Store != nil {
		cfg.Now = cfg.Store.Now
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Outbox{
		cfg: cfg, st: cfg.Store, key: cfg.OutboxKey, tickets: cfg.Tickets, keys: cfg.Keys, text: cfg.Plaintext,
		bounceTo: cfg.Bounce, log: cfg.Logger, metrics: cfg.Metrics, wake: make(chan struct{}, 1), busy: map[int64]bool{},
	}
}

// now is the outbox's clock (Options.Now).
func (o *Outbox) now() time.Time { return o.cfg.Now() }

// Notify wakes the dispatcher: a message was queued.
func (o *Outbox) Notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// backoff is the wait before try n+1: FirstRetry doubling, capped.
func (o *Outbox) backoff(tries int) time.Duration {
	d := o.cfg.FirstRetry
	for i := 1; i < tries && d < o.cfg.MaxRetry; i++ {
		d *= 2
	}
	return min(d, o.cfg.MaxRetry)
}

// Run delivers until ctx is done, then lets attempts in flight finish for
// up to ten seconds (their state resumes after a restart anyway).
func (o *Outbox) Run(ctx context.Context) error {
	attempts, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopRenew := o.renewClaims(attempts)
	defer stopRenew()
	for ctx.Err() == nil {
		o.dispatch(ctx, attempts, &wg)
		select {
		case <-ctx.Done():
		case <-o.wake:
		case <-tick.C:
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-done
	}
	return nil
}

// dispatch claims due recipients for the free workers and starts them.
func (o *Outbox) dispatch(ctx, attempts context.Context, wg *sync.WaitGroup) {
	o.mu.Lock()
	free := o.cfg.Workers - len(o.busy)
	busy := make(map[int64]bool, len(o.busy))
	for id := range o.busy {
		busy[id] = true
	}
	o.mu.Unlock()
	if free <= 0 {
		return
	}
	due, err := o.st.ClaimDue(ctx, free, busy, o.backoff)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("outbox", "err", err)
		}
		return
	}
	for _, r := range due {
		o.mu.Lock()
		o.busy[r.ID] = true
		o.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.attempt(attempts, r)
			// Another node (or this one) may take the recipient at its
			// next attempt; until now the claim kept every node off it.
			if err := o.st.ReleaseClaim(context.WithoutCancel(attempts), r.ID); err != nil {
				o.log.Error("outbox", "err", err)
			}
			o.mu.Lock()
			delete(o.busy, r.ID)
			o.mu.Unlock()
			o.Notify()
		}()
	}
}

// renewClaims renews the claims of the attempts in flight three times per
// lease, so that other nodes sharing the store leave them alone while this
// node lives (and take them over when it dies), until the returned
// function is called.
func (o *Outbox) renewClaims(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(max(o.st.ClaimLease()/3, 100*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			o.mu.Lock()
			ids := make([]int64, 0, len(o.busy))
			for id := range o.busy {
				ids = append(ids, id)
			}
			o.mu.Unlock()
			if err := o.st.RenewClaims(ctx, ids); err != nil && ctx.Err() == nil {
				o.log.Error("outbox", "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// isLocal reports whether domain is one of the bridge's own.
func (o *Outbox) isLocal(domain string) bool {
	for _, d := range o.cfg.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
