package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/config"
	"tollbridge/imapout"
	"tollbridge/intake"
	"tollbridge/internal/tlsprofile"
	"tollbridge/keyring"
	"tollbridge/outbox"
	"tollbridge/pow"
	"tollbridge/smtpin"
	"tollbridge/store"
	"tollbridge/ticketclient"
	"tollbridge/ticketserver"
)

func runServe(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	b, err := newBridge(ctx, cfg, log)
	if err != nil {
		return interrupted(ctx, err)
	}
	return b.run(ctx)
}

// interrupted is err, or nil when err only says that SIGINT/SIGTERM
// stopped a starting bridge: the signal path exits 0.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format must be text or json, got %q", format)
}

// bridge is one running bridge: its store, keys and listeners.
type bridge struct {
	cfg       *config.Config
	log       *slog.Logger
	st        *store.Store
	tls       *tls.Config
	works     *pow.Registry
	unlocker  *keyring.Unlocker
	guard     *keyring.Guard
	sealer    *intake.Sealer
	remote    *keyring.Remote
	tickets   *ticketclient.Client
	outbox    *outbox.Outbox
	ticket    *ticketserver.Server
	outboxKey *openpgp.Entity
	// recipients resolves aliases, subaddresses, postmaster, catch-alls.
	recipients *keyring.Resolver
	// serverKeys are the server keys, one per local domain: the key of
	// receipts@DOMAIN, which signs receipts and ticket requests (§3.7).
	serverKeys map[string]*openpgp.Entity
	metrics    *metrics
	imapOpen   atomic.Int64 // IMAP sessions open now
	// resolver answers every DNS lookup, through the [dns] resolver when
	// set: ticket API SRV, MX delivery, and SPF/DKIM/DMARC checks of
	// incoming mail (give it to smtpin).
	resolver *net.Resolver

	listeners map[string]net.Listener // bound by newBridge, served by run
	running   *runningLock            // held while this process serves data_dir
	servers   []func(ctx context.Context) error
}

// options are what tests change in a bridge; the zero value is production.
type options struct {
	lookupSRV  func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	firstRetry time.Duration // outbox backoff start (1 minute)
	maxRetry   time.Duration
	mxPort     int // port of direct MX delivery (25)
}

// newBridge opens the data directory, loads certificate and keys and binds
// every configured listener, so that its addresses are known (and port
// conflicts reported) before anything is served.
func newBridge(ctx context.Context, cfg *config.Config, log *slog.Logger) (*bridge, error) {
	return newBridgeWith(ctx, cfg, log, options{})
}

func newBridgeWith(ctx context.Context, cfg *config.Config, log *slog.Logger, opts options) (*bridge, error) {
	if err := requireDataDir(cfg); err != nil {
		return nil, err
	}
	certs, err := newCertReloader(cfg.TLS.Cert, cfg.TLS.Key, log)
	if err != nil {
		return nil, fmt.Errorf("tls: %w (run bridge init, or set tls.cert and tls.key in %s)", err, cfg.File)
	}
	st, err := openConfigStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b := &bridge{
		cfg: cfg, log: log, st: st,
		tls:       tlsprofile.Apply(&tls.Config{GetCertificate: certs.GetCertificate}),
		works:     worktypes(cfg.Ticket),
		listeners: map[string]net.Listener{},
		metrics:   newMetrics(),
	}
	if err := b.setup(opts); err != nil {
		b.close()
		return nil, err
	}
	b.lockDataDir()
	return b, nil
}

func (b *bridge) setup(opts options) error {
	for _, step := range []func() error{
		b.setupRecipients, func() error { return b.setupDelivery(opts) },
		b.setupSMTP, b.setupIMAP, b.setupTicketAPI, b.setupMetrics,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// setupMetrics serves /metrics when [metrics] listen is set.
func (b *bridge) setupMetrics() error {
	b.metrics.gauge("tollbridge_queue_depth", "Outbox recipients waiting for delivery.", func() float64 {
		n, _ := b.st.QueueDepth(context.Background())
		return float64(n)
	})
	b.metrics.gauge("tollbridge_imap_sessions_open", "IMAP sessions open now.", func() float64 {
		return float64(b.imapOpen.Load())
	})
	if b.cfg.Metrics.Listen == "" {
		return nil
	}
	ln, err := b.listen("metrics", b.cfg.Metrics.Listen)
	if err != nil {
		return err
	}
	b.servers = append(b.servers, func(ctx context.Context) error { return b.metrics.serve(ctx, ln) })
	return nil
}

// setupDelivery makes the keys, the ticket client and the outbox.
func (b *bridge) setupDelivery(opts options) error {
	outboxKey, err := keyring.LoadOrCreateServiceKey(filepath.Join(b.cfg.Server.DataDir, "keys", "outbox.key"), "outbox@"+b.cfg.Server.Hostname)
	if err != nil {
		return err
	}
	if b.serverKeys, err = b.receiptKeys(); err != nil {
		return err
	}
	b.unlocker = keyring.NewUnlocker(2)
	b.unlocker.Idle = debug.FreeOSMemory
	b.guard = &keyring.Guard{}
	b.sealer = &intake.Sealer{Store: b.st}
	b.remote = &keyring.Remote{Pins: pinStore{b.st}}
	b.resolver = newResolver(b.cfg.DNS.Resolver)
	dkimKeys, err := loadOrCreateDKIM(b.cfg.Server.DataDir, b.cfg.Server.Domains)
	if err != nil {
		return err
	}
	b.tickets, err = ticketclient.New(b.routes(), b.works, ticketclient.Options{
		LookupSRV: opts.lookupSRV, Resolver: b.resolver, Logger: b.log, Signer: b.signRequest, Now: b.st.Now,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", b.cfg.File, err)
	}
	sh, err := b.smarthost()
	if err != nil {
		return err
	}
	b.outbox = outbox.New(outbox.Options{
		Store: b.st, OutboxKey: outboxKey, Tickets: b.tickets, Keys: b.remote,
		Plaintext: plaintext{}, Bounce: deliverBounce(b.st, b.sealer), Logger: b.log.With("part", "outbox"),
		Hostname: b.cfg.Server.Hostname, Domains: b.cfg.Server.Domains,
		Workers: b.cfg.Delivery.Workers, RetryFor: b.cfg.Delivery.RetryFor.Duration,
		FirstRetry: opts.firstRetry, MaxRetry: opts.maxRetry, Smarthost: sh,
		Resolver: b.resolver, DKIM: dkimKeys, MXPort: opts.mxPort, ServerKey: b.remoteServerKey,
		Metrics: outbox.Metrics{
			BadReceipt: b.metrics.inc("tollbridge_receipts_bad_total", ""),
			Delivered:  func(route string) { b.metrics.add("tollbridge_messages_delivered_total", `route="`+route+`"`, 1) },
			Bounced:    b.metrics.inc("tollbridge_messages_bounced_total", ""),
			WorkSecond: func(s float64) { b.metrics.add("tollbridge_pow_seconds_total", "", s) },
		},
	})
	b.servers = append(b.servers, b.outbox.Run)
	b.outboxKey = outboxKey
	return nil
}

// smarthost reads the [delivery] smarthost settings.
func (b *bridge) smarthost() (outbox.Smarthost, error) {
	d := b.cfg.Delivery
	sh := outbox.Smarthost{Addr: d.Smarthost, TLS: d.SmarthostTLS, Username: d.SmarthostUsername}
	if d.SmarthostPasswordFile != "" {
		pw, err := readSecret(d.SmarthostPasswordFile)
		if err != nil {
			return sh, fmt.Errorf("%s: delivery.smarthost_password_file: %w", b.cfg.File, err)
		}
		sh.Password = pw
	}
	if d.SmarthostCA != "" {
		pem, err := os.ReadFile(d.SmarthostCA)
		if err != nil {
			return sh, fmt.Errorf("%s: delivery.smarthost_ca: %w", b.cfg.File, err)
		}
		sh.RootCAs = x509.NewCertPool()
		if !sh.RootCAs.AppendCertsFromPEM(pem) {
			return sh, fmt.Errorf("%s: delivery.smarthost_ca: no PEM certificate in %s", b.cfg.File, d.SmarthostCA)
		}
	}
	return sh, nil
}

func (b *bridge) setupTicketAPI() error {
	b.ticket = ticketserver.New(ticketserver.Options{
		Store: b.st, Works: b.works, Logger: b.log.With("listener", "ticket"),
		Hostname: b.cfg.Server.Hostname, Domains: b.cfg.Server.Domains,
		Difficulty:               pow.Difficulty{Bits: b.cfg.Ticket.PowBits, Count: b.cfg.Ticket.PowCount},
		Expiry:                   b.cfg.Ticket.Expiry.Duration,
		RatePerMinute:            b.cfg.Ticket.RatePerMinute,
		MaxMessageBytes:          b.cfg.SMTP.MaxMessageBytes,
		MaxPendingBytesPerClient: b.cfg.Ticket.MaxPendingBytesPerClient,
		MaxPendingBytes:          b.cfg.Ticket.MaxPendingBytes,
		MinUploadRate:            b.cfg.Ticket.MinUploadRate,
		UploadRateWindow:         b.cfg.Ticket.UploadRateWindow.Duration,
		ReceiptKeys:              b.serverKeys,
		ServerKey:                b.remoteServerKey,
		Clients:                  b.clients(),
		Recipients:               b.recipients,
		DomainAllow:              b.cfg.AllowedSenders,
		Metrics: ticketserver.Metrics{
			TicketsIssued:    b.metrics.inc("tollbridge_tickets_issued_total", ""),
			TicketsValidated: b.metrics.inc("tollbridge_tickets_validated_total", ""),
			TicketsWorked:    b.workedMetric(),
			MessagesReceived: b.metrics.inc("tollbridge_messages_received_total", ""),
		},
	})
	if b.cfg.Ticket.Listen != "" {
		ln, err := b.listen("ticket", b.cfg.Ticket.Listen)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, func(ctx context.Context) error { return b.ticket.Serve(ctx, ln, b.tls) })
	}
	return nil
}

// setupSMTP binds submission (plain with STARTTLS, implicit TLS) and MX.
func (b *bridge) setupSMTP() error {
	c := b.cfg.SMTP
	sc := smtpin.Config{
		Hostname: b.cfg.Server.Hostname, Domains: b.cfg.Server.Domains,
		MaxMessageBytes: c.MaxMessageBytes, MaxRecipients: c.MaxRecipients, Timeout: c.Timeout.Duration, TLS: b.tls,
		Recipients: b.recipients,
	}
	sub := &smtpin.Submission{Config: sc, Store: b.st, Sealer: b.sealer, Unlocker: b.unlocker, Guard: b.guard,
		OutboxKey: b.outboxKey, Notify: b.outbox.Notify, Log: b.log.With("listener", "submission"),
		Metrics: smtpin.Metrics{Accepted: b.metrics.inc("tollbridge_messages_accepted_total", `listener="submission"`)}}
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"submission", c.Submission, false}, {"submission_tls", c.SubmissionTLS, true}} {
		if l.addr == "" {
			continue
		}
		ln, err := b.listen(l.name, l.addr)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, func(ctx context.Context) error { return sub.Serve(ctx, ln, l.tls) })
	}
	if c.MX != "" {
		ln, err := b.listen("mx", c.MX)
		if err != nil {
			return err
		}
		mx := &smtpin.MX{Config: sc, Store: b.st, Sealer: b.sealer, Log: b.log.With("listener", "mx"), Resolver: b.resolver,
			Metrics: smtpin.Metrics{Accepted: b.metrics.inc("tollbridge_messages_accepted_total", `listener="mx"`)}}
		b.servers = append(b.servers, func(ctx context.Context) error { return mx.Serve(ctx, ln) })
	}
	return nil
}

// clients says how mail clients reach this bridge (autoconfig and Apple
// profiles), from the bound listeners.
func (b *bridge) clients() *ticketserver.Clients { return clientSettings(b.cfg, b.addr) }

// receiptKeys loads (creating on first start) one receipt key per domain.
func (b *bridge) receiptKeys() (map[string]*openpgp.Entity, error) {
	keys := map[string]*openpgp.Entity{}
	for _, d := range b.cfg.Server.Domains {
		addr := "receipts@" + d
		k, err := keyring.LoadOrCreateServiceKey(filepath.Join(b.cfg.Server.DataDir, "keys", addr+".key"), addr)
		if err != nil {
			return nil, err
		}
		keys[d] = k
	}
	return keys, nil
}

// connLimit gives a listener's limits: connections per client (IPv4
// address or IPv6 /64), in all, and the line a refused client gets (none on
// implicit TLS, where it could not be read). IMAP allows many per client:
// offices share an address and each mail client opens several.
func connLimit(name string) (perClient, total int, refusal string, ok bool) {
	const smtpBusy = "421 4.7.0 Too many connections from your address, try again later\r\n"
	switch name {
	case "submission":
		return 50, 1000, smtpBusy, true
	case "submission_tls":
		return 50, 1000, "", true
	case "mx":
		return 20, 1000, smtpBusy, true
	case "imap":
		return 200, 4000, "* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n", true
	case "imap_tls":
		return 200, 4000, "", true
	case "ticket":
		return 100, 2000, "", true
	}
	return 0, 0, "", false
}

// listen binds addr for the named listener, naming the config key at
// fault, with the listener's connection limits.
func (b *bridge) listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listener %s on %s: %w", b.cfg.File, name, addr, err)
	}
	b.listeners[name] = ln
	if perClient, total, refusal, ok := connLimit(name); ok {
		return limitConns(ln, perClient, total, refusal), nil
	}
	return ln, nil
}

// addr is the bound address of a listener, "" if it is not enabled.
func (b *bridge) addr(name string) string {
	if ln, ok := b.listeners[name]; ok {
		return ln.Addr().String()
	}
	return ""
}

// run serves every listener and the maintenance loop until ctx is done,
// then drains: listeners stop accepting, sessions finish, the store closes.
func (b *bridge) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for name, ln := range b.listeners {
		b.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	}
	b.warnNoUsers(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(b.servers)+1)
	for _, serve := range b.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(ctx); err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); b.maintain(ctx) }()
	wg.Wait()
	b.close()
	close(errs)
	err := errors.Join(collect(errs)...)
	if err == nil {
		b.log.Info("stopped")
	}
	return err
}

// warnNoUsers says when nobody can log in yet: a bridge started on the
// wrong data dir looks just like this.
func (b *bridge) warnNoUsers(ctx context.Context) {
	users, err := b.st.Users(ctx)
	if err == nil && len(users) == 0 {
		b.log.Warn("no users yet: add one with bridge user add", "config", b.cfg.File, "data_dir", b.cfg.Server.DataDir)
	}
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// maintain sweeps expired tickets and unreferenced blobs every minute, and
// orphaned blob files, old delivery records and old expunge records every
// six hours.
func (b *bridge) maintain(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for i := 0; ; i++ {
		if up, tk, err := b.st.SweepTickets(ctx, 24*time.Hour); err != nil && ctx.Err() == nil {
			b.log.Warn("sweep tickets", "err", err)
		} else if up+tk > 0 {
			b.log.Debug("swept tickets", "uploads", up, "tickets", tk)
		}
		if _, err := b.st.SweepSeenRequests(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("sweep seen ticket requests", "err", err)
		}
		if n, err := b.st.SweepBlobs(ctx, time.Hour); err != nil && ctx.Err() == nil {
			b.log.Warn("sweep blobs", "err", err)
		} else if n > 0 {
			b.log.Debug("swept blobs", "count", n)
		}
		if i%360 == 0 {
			if n, err := b.st.SweepOrphanBlobs(ctx, 24*time.Hour); err != nil && ctx.Err() == nil {
				b.log.Warn("sweep orphan blobs", "err", err)
			} else if n > 0 {
				b.log.Info("removed orphan blob files", "count", n)
			}
			if err := b.st.PruneDeliveries(ctx, 90*24*time.Hour); err != nil && ctx.Err() == nil {
				b.log.Warn("prune deliveries", "err", err)
			}
			// A QRESYNC client away longer than this resynchronizes from
			// the UIDs that exist (docs/architecture.md, modseqs).
			if _, err := b.st.PruneExpunged(ctx, 90*24*time.Hour); err != nil && ctx.Err() == nil {
				b.log.Warn("prune expunge records", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (b *bridge) close() {
	for _, ln := range b.listeners {
		ln.Close()
	}
	b.running.release()
	b.st.Close()
}

// lockDataDir records, for bridge check, that this process serves the data
// dir and on which addresses. Another bridge holding it is only worth a
// warning: the listeners, bound already, are what must not clash.
func (b *bridge) lockDataDir() {
	r := running{PID: os.Getpid(), Config: b.cfg.File, Listeners: map[string]string{}}
	for name := range b.listeners {
		r.Listeners[name] = listenerAddr(b.cfg, name)
	}
	lock, err := lockRunning(b.cfg.Server.DataDir, r)
	if err != nil {
		b.log.Warn("another bridge may serve this data dir", "data_dir", b.cfg.Server.DataDir, "err", err)
		return
	}
	b.running = lock
	b.releaseDeadClaims(context.Background())
}

// releaseDeadClaims retries at once the deliveries a crashed predecessor
// left claimed. Only with SQLite: there the lock just taken proves no
// other process serves the store, while on PostgreSQL other nodes may be
// mid-attempt and their claims run out by lease.
func (b *bridge) releaseDeadClaims(ctx context.Context) {
	if b.cfg.Store.Postgres != "" {
		return
	}
	n, err := b.st.ReleaseOthersClaims(ctx)
	if err != nil {
		b.log.Warn("outbox claims of a previous process", "err", err)
		return
	}
	if n > 0 {
		b.log.Info("retrying deliveries cut off by the previous process", "recipients", n)
	}
}

// setupIMAP binds the IMAP listeners (STARTTLS and implicit TLS).
func (b *bridge) setupIMAP() error {
	srv := imapout.New(imapout.Options{
		Store: b.st, Logger: b.log.With("listener", "imap"),
		Hostname: b.cfg.Server.Hostname, TLS: b.tls, Unlocker: b.unlocker, Guard: b.guard,
		SenderKeys: b.senderKeys, FreshSenderKey: b.freshSenderKey, Seal: b.sealer.ForUser, AppendLimit: b.cfg.SMTP.MaxMessageBytes,
		Metrics: imapout.Metrics{
			SessionOpened: func() { b.metrics.add("tollbridge_imap_sessions_total", "", 1); b.imapOpen.Add(1) },
			SessionClosed: func() { b.imapOpen.Add(-1) },
		},
	})
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"imap", b.cfg.IMAP.Listen, false}, {"imap_tls", b.cfg.IMAP.ListenTLS, true}} {
		if l.addr == "" {
			continue
		}
		ln, err := b.listen(l.name, l.addr)
		if err != nil {
			return err
		}
		serve := srv.Serve
		if l.tls {
			serve = srv.ServeTLS
		}
		b.servers = append(b.servers, func(ctx context.Context) error { return serve(ctx, ln) })
	}
	return nil
}
