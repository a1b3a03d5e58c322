package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/config"
	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/store"
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
		return err
	}
	return b.run(ctx)
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
	cfg    *config.Config
	log    *slog.Logger
	st     *store.Store
	tls    *tls.Config
	works  *pow.Registry
	ticket *ticketserver.Server

	listeners map[string]net.Listener // bound by newBridge, served by run
	servers   []func(ctx context.Context) error
}

// newBridge opens the data directory, loads certificate and keys and binds
// every configured listener, so that its addresses are known (and port
// conflicts reported) before anything is served.
func newBridge(ctx context.Context, cfg *config.Config, log *slog.Logger) (*bridge, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w (run bridge init, or set tls.cert and tls.key in %s)", err, cfg.File)
	}
	st, err := store.Open(ctx, cfg.Server.DataDir, store.Options{})
	if err != nil {
		return nil, err
	}
	b := &bridge{
		cfg: cfg, log: log, st: st,
		tls:       &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		works:     pow.NewRegistry(pow.HashWork{}),
		listeners: map[string]net.Listener{},
	}
	if err := b.setup(); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bridge) setup() error {
	receipts, err := b.receiptKeys()
	if err != nil {
		return err
	}
	b.ticket = ticketserver.New(b.st, b.works, ticketserver.Config{
		Hostname: b.cfg.Server.Hostname, Domains: b.cfg.Server.Domains,
		Difficulty:      pow.Difficulty{Bits: b.cfg.Ticket.PowBits, Count: b.cfg.Ticket.PowCount},
		Expiry:          b.cfg.Ticket.Expiry.Duration,
		RatePerMinute:   b.cfg.Ticket.RatePerMinute,
		MaxMessageBytes: b.cfg.SMTP.MaxMessageBytes,
		ReceiptKeys:     receipts,
	}, b.log.With("listener", "ticket"), ticketserver.Metrics{})
	if b.cfg.Ticket.Listen != "" {
		ln, err := b.listen("ticket", b.cfg.Ticket.Listen)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, func(ctx context.Context) error { return b.ticket.Serve(ctx, ln, b.tls) })
	}
	return nil
}

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

// listen binds addr for the named listener, naming the config key at fault.
func (b *bridge) listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listener %s on %s: %w", b.cfg.File, name, addr, err)
	}
	b.listeners[name] = ln
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

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// maintain sweeps expired tickets and unreferenced blobs every minute.
func (b *bridge) maintain(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		if up, tk, err := b.st.SweepTickets(ctx, 24*time.Hour); err != nil {
			b.log.Warn("sweep tickets", "err", err)
		} else if up+tk > 0 {
			b.log.Debug("swept tickets", "uploads", up, "tickets", tk)
		}
		if n, err := b.st.SweepBlobs(ctx, time.Hour); err != nil {
			b.log.Warn("sweep blobs", "err", err)
		} else if n > 0 {
			b.log.Debug("swept blobs", "count", n)
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
	b.st.Close()
}

// notYet answers for commands whose issue has not landed.
func notYet(name string) func(context.Context, *env, []string) error {
	return func(context.Context, *env, []string) error {
		return usagef("%s is not yet available", name)
	}
}

var (
	runQuickstart       = notYet("quickstart")
	runCheck            = notYet("check")
	runQueue            = notYet("queue")
	runUserMobileconfig = notYet("user mobileconfig")
)

