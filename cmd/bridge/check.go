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
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

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

// runCheck validates a config and what it points at, one line per
// finding, each naming the config file as given. Problems fail the check;
// warnings (a peer not up yet) and listeners held by this very bridge,
// already running, do not.
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
	r := &checkReport{file: *cfgPath}
	checkTLS(cfg, r)
	if checkDataDir(cfg, r) {
		checkPorts(cfg, r)
	}
	checkFiles(cfg, r)
	checkSmarthost(ctx, cfg, r)
	checkRoutes(ctx, cfg, r)
	checkDNS(ctx, cfg, r.warn)
	for _, l := range r.lines {
		fmt.Fprintf(e.stdout, "%s: %s\n", r.file, l)
	}
	if r.problems > 0 {
		return fmt.Errorf("%s: %d problem(s) found", r.file, r.problems)
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", r.file)
	return nil
}

// checkReport collects bridge check's findings.
type checkReport struct {
	file     string // the config file as the admin named it
	lines    []string
	problems int
}

// add records a problem: the check fails.
func (r *checkReport) add(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.problems++
}

// warn records something worth knowing that does not fail the check.
func (r *checkReport) warn(format string, args ...any) {
	r.lines = append(r.lines, "warning: "+fmt.Sprintf(format, args...))
}

// note records a fact, such as a listener served by this bridge.
func (r *checkReport) note(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func checkTLS(cfg *config.Config, r *checkReport) {
	pair, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		r.add("tls.cert/tls.key: %v", err)
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		r.add("tls.cert: %v", err)
		return
	}
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		r.add("tls.cert: expired on %s", leaf.NotAfter.Format(time.DateOnly))
	case leaf.NotAfter.Sub(now) < 14*24*time.Hour:
		r.add("tls.cert: expires on %s, renew it", leaf.NotAfter.Format(time.DateOnly))
	}
	if err := leaf.VerifyHostname(cfg.Server.Hostname); err != nil {
		r.add("tls.cert: does not name server.hostname %s: %v", cfg.Server.Hostname, err)
	}
}

// checkDataDir reports whether the data dir exists and is writable.
func checkDataDir(cfg *config.Config, r *checkReport) bool {
	if err := requireDataDir(cfg); err != nil {
		r.add("server.data_dir: %s", strings.TrimPrefix(err.Error(), cfg.File+": server.data_dir: "))
		return false
	}
	f, err := os.CreateTemp(cfg.Server.DataDir, ".check-*")
	if err != nil {
		r.add("server.data_dir: not writable: %v", err)
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// checkPorts binds each listener's address. One already taken is fine
// when this bridge holds it (its data dir's running lock lists it).
func checkPorts(cfg *config.Config, r *checkReport) {
	running, runErr := readRunning(cfg.Server.DataDir)
	for _, name := range listenerNames {
		key, addr := listenerKeys[name], listenerAddr(cfg, name)
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			continue
		}
		switch {
		case running != nil && running.Listeners[name] == addr:
			r.note("%s: %s is served by this bridge, running (pid %d)", key, addr, running.PID)
		case running != nil:
			r.add("%s: cannot listen on %s: %v (this bridge runs, pid %d, with other addresses: restart it to apply the config)", key, addr, unwrapSyscall(err), running.PID)
		default:
			if runErr != nil {
				r.warn("server.data_dir: %v", runErr)
			}
			r.add("%s: cannot listen on %s: %v (another program holds it)", key, addr, unwrapSyscall(err))
		}
	}
}

// listenerNames are the listeners in config order; listenerKeys their keys.
var (
	listenerNames = []string{"submission", "submission_tls", "mx", "imap", "imap_tls", "ticket", "metrics"}
	listenerKeys  = map[string]string{
		"submission": "smtp.submission", "submission_tls": "smtp.submission_tls", "mx": "smtp.mx",
		"imap": "imap.listen", "imap_tls": "imap.listen_tls", "ticket": "ticket.listen", "metrics": "metrics.listen",
	}
)

func unwrapSyscall(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func checkFiles(cfg *config.Config, r *checkReport) {
	if f := cfg.Delivery.SmarthostPasswordFile; f != "" {
		if _, err := readSecret(f); err != nil {
			r.add("delivery.smarthost_password_file: %v", err)
		}
	}
	if f := cfg.Delivery.SmarthostCA; f != "" {
		if _, err := os.ReadFile(f); err != nil {
			r.add("delivery.smarthost_ca: %v", err)
		}
	}
}

// checkSmarthost does what delivery will do with the smarthost short of
// sending: connect, EHLO, STARTTLS or TLS as configured, AUTH when a user
// name is set, QUIT.
func checkSmarthost(ctx context.Context, cfg *config.Config, r *checkReport) {
	d := cfg.Delivery
	if d.Smarthost == "" {
		return
	}
	host, _, _ := net.SplitHostPort(d.Smarthost)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if d.SmarthostCA != "" {
		pool, err := routeRoots(d.SmarthostCA)
		if err != nil {
			return // reported by checkFiles
		}
		tc.RootCAs = pool
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := dialSmarthost(ctx, d.Smarthost, d.SmarthostTLS, cfg.Server.Hostname, tc)
	if err != nil {
		r.add("delivery.smarthost: %s (smarthost_tls = %q): %v", d.Smarthost, d.SmarthostTLS, err)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if d.SmarthostUsername != "" {
		pw, err := readSecret(d.SmarthostPasswordFile)
		if err != nil && d.SmarthostPasswordFile != "" {
			return // reported by checkFiles
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			r.add("delivery.smarthost_username: %s offers no AUTH", d.Smarthost)
			return
		}
		if err := c.Auth(sasl.NewPlainClient("", d.SmarthostUsername, pw)); err != nil {
			r.add("delivery.smarthost_username: %s refused AUTH as %s: %v", d.Smarthost, d.SmarthostUsername, err)
			return
		}
	}
	c.Quit()
}

// dialSmarthost connects and greets the way the outbox's relay does.
func dialSmarthost(ctx context.Context, addr, mode, hostname string, tc *tls.Config) (*smtp.Client, error) {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, unwrapSyscall(err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var c *smtp.Client
	switch mode {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tc))
	case "starttls":
		c = smtp.NewClient(conn)
		if err := c.Hello(hostname); err != nil {
			c.Close()
			return nil, err
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			c.Close()
			return nil, errors.New(`does not offer STARTTLS: set delivery.smarthost_tls to "tls" or, on a trusted network only, "none"`)
		}
		c.Close()
		if conn, err = dl.DialContext(ctx, "tcp", addr); err != nil {
			return nil, unwrapSyscall(err)
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		// The handshake happens with the first command after STARTTLS.
		if c, err = smtp.NewClientStartTLS(conn, tc); err == nil {
			if err = c.Hello(hostname); err != nil {
				c.Close()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
		return c, nil
	default:
		c = smtp.NewClient(conn)
	}
	if err := c.Hello(hostname); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkRoutes asks each route's ticket API for its WKD policy file. A
// peer that does not answer is a warning (it may simply not be started
// yet); one that answers wrongly, or with a certificate the route does not
// trust, is a problem.
func checkRoutes(ctx context.Context, cfg *config.Config, r *checkReport) {
	for i, rt := range cfg.Routes {
		key := fmt.Sprintf("route[%d]", i)
		roots, err := routeRoots(rt.CA)
		if err != nil {
			r.add("%s.ca: %v", key, err)
			continue
		}
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsprofile.Apply(&tls.Config{RootCAs: roots})}}
		u := strings.TrimRight(rt.URL, "/") + keyring.WKDPrefix + rt.Domain + "/policy"
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := client.Do(req)
		var oe *net.OpError
		switch {
		case err != nil && errors.As(err, &oe) && oe.Op == "dial":
			r.warn("%s: %s unreachable (not started yet?): %v", key, rt.URL, unwrapSyscall(err))
			continue
		case err != nil:
			r.add("%s: %s: %v", key, rt.URL, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.add("%s: %s answers %s for %s's WKD policy: not a tollbridge for that domain?", key, rt.URL, resp.Status, rt.Domain)
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
