package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tollbridge/config"
	"tollbridge/internal/tlsprofile"
	"tollbridge/keyring"
	"tollbridge/store"
	"tollbridge/ticketserver"
)

func runUserMobileconfig(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user mobileconfig", flag.ContinueOnError)
	out := fs.String("out", "", "file to write (default ADDRESS.mobileconfig)")
	return storeCmd(ctx, fs, args, 1, "need exactly one ADDRESS", func(cfg *config.Config, st *store.Store, pos []string) error {
		u, err := lookupUser(ctx, st, pos[0])
		if err != nil {
			return err
		}
		clients := clientSettings(cfg, func(name string) string { return listenerAddr(cfg, name) })
		cert, _ := selfSignedCert(cfg.TLS.Cert)
		b, err := clients.MobileConfig(u.Address, cert)
		if err != nil {
			return err
		}
		path := *out
		if path == "" {
			path = u.Address + ".mobileconfig"
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s: open it on the Mac or iPhone to set up Mail for %s\n", path, u.Address)
		return nil
	})
}

// listenerAddr is the configured address of a named listener.
func listenerAddr(cfg *config.Config, name string) string {
	return map[string]string{
		"submission": cfg.SMTP.Submission, "submission_tls": cfg.SMTP.SubmissionTLS, "mx": cfg.SMTP.MX,
		"imap": cfg.IMAP.Listen, "imap_tls": cfg.IMAP.ListenTLS, "ticket": cfg.Ticket.Listen, "metrics": cfg.Metrics.Listen,
	}[name]
}

// clientSettings says how mail clients reach the bridge, with listener
// addresses from addr (bound ones when running, configured ones otherwise).
func clientSettings(cfg *config.Config, addr func(string) string) *ticketserver.Clients {
	port := func(name string) int {
		var p int
		if _, s, err := net.SplitHostPort(addr(name)); err == nil {
			fmt.Sscan(s, &p)
		}
		return p
	}
	return &ticketserver.Clients{
		Hostname: cfg.Server.Hostname, Domains: cfg.Server.Domains,
		IMAP: port("imap"), IMAPTLS: port("imap_tls"), Submission: port("submission"), SubmissionTLS: port("submission_tls"),
	}
}

// selfSignedCert returns the DER of the certificate in file when it is
// self-signed (so a client must be told to trust it), else nil.
func selfSignedCert(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if c.CheckSignatureFrom(c) != nil {
		return nil, nil
	}
	return block.Bytes, nil
}

// runCheck validates a config and what it points at, one line per problem.
func runCheck(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err // every config problem, one per line
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, check := range []func(*config.Config, func(string, ...any)){checkTLS, checkDataDir, checkPorts, checkFiles} {
		check(cfg, add)
	}
	checkRoutes(ctx, cfg, add)
	name := filepath.Base(cfg.File)
	checkDNS(ctx, cfg, func(f string, a ...any) { fmt.Fprintf(e.stdout, "%s: warning: %s\n", name, fmt.Sprintf(f, a...)) })
	for _, p := range problems {
		fmt.Fprintf(e.stdout, "%s: %s\n", name, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) found", len(problems))
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", cfg.File)
	return nil
}

func checkTLS(cfg *config.Config, add func(string, ...any)) {
	pair, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		add("tls.cert/tls.key: %v", err)
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		add("tls.cert: %v", err)
		return
	}
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		add("tls.cert: expired on %s", leaf.NotAfter.Format(time.DateOnly))
	case leaf.NotAfter.Sub(now) < 14*24*time.Hour:
		add("tls.cert: expires on %s, renew it", leaf.NotAfter.Format(time.DateOnly))
	}
	if err := leaf.VerifyHostname(cfg.Server.Hostname); err != nil {
		add("tls.cert: does not name server.hostname %s: %v", cfg.Server.Hostname, err)
	}
}

func checkDataDir(cfg *config.Config, add func(string, ...any)) {
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		add("server.data_dir: %v", err)
		return
	}
	f, err := os.CreateTemp(cfg.Server.DataDir, ".check-*")
	if err != nil {
		add("server.data_dir: not writable: %v", err)
		return
	}
	f.Close()
	os.Remove(f.Name())
}

func checkPorts(cfg *config.Config, add func(string, ...any)) {
	keys := map[string]string{
		"submission": "smtp.submission", "submission_tls": "smtp.submission_tls", "mx": "smtp.mx",
		"imap": "imap.listen", "imap_tls": "imap.listen_tls", "ticket": "ticket.listen", "metrics": "metrics.listen",
	}
	for name, key := range keys {
		addr := listenerAddr(cfg, name)
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			add("%s: cannot listen on %s (is the bridge already running?): %v", key, addr, unwrapSyscall(err))
			continue
		}
		ln.Close()
	}
}

func unwrapSyscall(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func checkFiles(cfg *config.Config, add func(string, ...any)) {
	if f := cfg.Delivery.SmarthostPasswordFile; f != "" {
		if _, err := readSecret(f); err != nil {
			add("delivery.smarthost_password_file: %v", err)
		}
	}
	if f := cfg.Delivery.SmarthostCA; f != "" {
		if _, err := os.ReadFile(f); err != nil {
			add("delivery.smarthost_ca: %v", err)
		}
	}
}

// checkRoutes asks each route's ticket API for its WKD policy file.
func checkRoutes(ctx context.Context, cfg *config.Config, add func(string, ...any)) {
	for i, r := range cfg.Routes {
		key := fmt.Sprintf("route[%d]", i)
		roots, err := routeRoots(r.CA)
		if err != nil {
			add("%s.ca: %v", key, err)
			continue
		}
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsprofile.Apply(&tls.Config{RootCAs: roots})}}
		u := strings.TrimRight(r.URL, "/") + keyring.WKDPrefix + r.Domain + "/policy"
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := client.Do(req)
		if err != nil {
			add("%s: %s unreachable: %v", key, r.URL, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			add("%s: %s answers %s for %s's WKD policy: not a tollbridge for that domain?", key, r.URL, resp.Status, r.Domain)
		}
	}
}

func routeRoots(ca string) (*x509.CertPool, error) {
	if ca == "" {
		return nil, nil
	}
	b, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", ca)
	}
	return pool, nil
}
