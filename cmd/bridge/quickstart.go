package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"tollbridge/config"
	"tollbridge/keyring"
)

// qsSite is one of the two quickstart bridges.
type qsSite struct {
	Name     string `json:"name"` // folder under DIR
	Domain   string `json:"domain"`
	User     string `json:"user"`
	Password string `json:"password"`
	// Ports: the preferred ones, then (in credentials.json too) the ones
	// the configs use, which differ when a preferred one was taken.
	Submission int `json:"smtp_port"`
	IMAP       int `json:"imap_port"`
	Ticket     int `json:"ticket_port"`
}

// qsSites are alice's and bob's bridges.
func qsSites() []*qsSite {
	return []*qsSite{
		{Name: "example.org", Domain: "example.org", User: "alice@example.org", Submission: 1587, IMAP: 1143, Ticket: 8443},
		{Name: "example.net", Domain: "example.net", User: "bob@example.net", Submission: 2587, IMAP: 2143, Ticket: 9443},
	}
}

// qsLayout is a quickstart folder: two configs that route to each other.
type qsLayout struct {
	Dir   string
	Sites []*qsSite
	// Smarthost, when set, relays legacy domains (plain SMTP, for tests).
	Smarthost string
	// RatePerMinute is written as ticket.rate_per_minute (-1: no limit).
	RatePerMinute int
	// Ports picks the listeners' ports; nil is a picker of its own.
	// Layouts built side by side in one process (tests) share one, so
	// that a port handed to one is never handed to another while its
	// bridge is down or not yet bound.
	Ports *portPicker
}

func (l *qsLayout) configPath(s *qsSite) string { return filepath.Join(l.Dir, s.Name, "config.toml") }

func (l *qsLayout) credentialsPath() string { return filepath.Join(l.Dir, "credentials.json") }

// setupQuickstart creates the layout in dir, or reuses the one there: a
// second run keeps the users, their passwords and their mail.
func setupQuickstart(ctx context.Context, dir string, sites []*qsSite, powBits, powCount int, prot keyring.Protection) (*qsLayout, error) {
	l := &qsLayout{Dir: dir, Sites: sites}
	if b, err := os.ReadFile(l.credentialsPath()); err == nil {
		var saved []*qsSite
		if err := json.Unmarshal(b, &saved); err != nil || len(saved) != len(l.Sites) {
			return nil, fmt.Errorf("%s: unreadable; remove %s to start afresh", l.credentialsPath(), dir)
		}
		for i := range saved {
			l.Sites[i].Password = saved[i].Password
		}
		return l, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := l.writeConfigs(powBits, powCount); err != nil {
		return nil, err
	}
	if err := l.createUsers(ctx, prot); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(l.Sites, "", "  ")
	return l, os.WriteFile(l.credentialsPath(), b, 0o600)
}

// writeConfigs picks ports (the preferred ones when free) and writes both
// configs, each routing the other's domain to its ticket API and trusting
// its self-signed certificate.
func (l *qsLayout) writeConfigs(powBits, powCount int) error {
	ports := l.Ports
	if ports == nil {
		ports = &portPicker{}
	}
	opts := make([]initOptions, len(l.Sites))
	for i, s := range l.Sites {
		opts[i] = initOptions{
			Dir: filepath.Join(l.Dir, s.Name), Domain: s.Domain, Hostname: "localhost",
			Submission: ports.pick(s.Submission), IMAP: ports.pick(s.IMAP), Ticket: ports.pick(s.Ticket),
			PowBits: powBits, PowCount: powCount, RatePerMinute: l.RatePerMinute,
		}
	}
	for i := range l.Sites {
		for j, peer := range l.Sites {
			if j == i {
				continue
			}
			opts[i].Routes = append(opts[i].Routes, config.Route{
				Domain: peer.Domain,
				URL:    "https://" + opts[j].Ticket,
				CA:     filepath.Join("..", peer.Name, "data", "tls", "cert.pem"),
			})
		}
	}
	for i, o := range opts {
		o.Smarthost, o.SmarthostTLS = l.Smarthost, "none"
		opts[i] = o
	}
	for i, o := range opts {
		if _, err := writeInit(o); err != nil {
			return err
		}
		s := l.Sites[i]
		s.Submission, s.IMAP, s.Ticket = addrPort(o.Submission), addrPort(o.IMAP), addrPort(o.Ticket)
	}
	return nil
}

// addrPort is the port of host:port, 0 if there is none.
func addrPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Free ports are picked in [pickLow, pickHigh), below the kernel's
// ephemeral range (Linux's ip_local_port_range starts at 32768, the BSDs'
// at 49152): the kernel hands out ports in that range to every outgoing
// connection and every listener on port 0, and one of those could take a
// port between this pick and the bridge's bind ("address already in use").
const pickLow, pickHigh = 20000, 32768

// portPicker hands out free loopback ports, each at most once.
type portPicker struct {
	mu     sync.Mutex
	handed map[int]bool
}

// pick returns 127.0.0.1:port when the port is free (and not 0), else
// a free port below the ephemeral range, else any free one; never one
// it handed out before.
func (p *portPicker) pick(port int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handed == nil {
		p.handed = map[int]bool{}
	}
	try := func(port int) (string, bool) {
		if p.handed[port] && port != 0 {
			return "", false
		}
		a, ok := tryAddr(port)
		if ok {
			p.handed[addrPort(a)] = true
		}
		return a, ok
	}
	if port != 0 {
		if a, ok := try(port); ok {
			return a
		}
	}
	for range 64 {
		n, err := rand.Int(rand.Reader, big.NewInt(pickHigh-pickLow))
		if err != nil {
			break
		}
		if a, ok := try(pickLow + int(n.Int64())); ok {
			return a
		}
	}
	if a, ok := try(0); ok {
		return a
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// tryAddr reports whether 127.0.0.1:port can be bound now, and its address.
func tryAddr(port int) (string, bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return "", false
	}
	defer ln.Close()
	return ln.Addr().String(), true
}

func (l *qsLayout) createUsers(ctx context.Context, prot keyring.Protection) error {
	for _, s := range l.Sites {
		cfg, err := config.Load(l.configPath(s))
		if err != nil {
			return err
		}
		st, err := openConfigStore(ctx, cfg)
		if err != nil {
			return err
		}
		if s.Password == "" {
			s.Password = newPassword()
		}
		_, err = addUser(ctx, cfg, st, s.User, []byte(s.Password), prot)
		st.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// newPassword is 16 characters from an alphabet without look-alikes.
func newPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// qsUser is one line of the settings a mail client needs.
type qsUser struct {
	Address  string `json:"address"`
	Password string `json:"password"`
	IMAP     string `json:"imap"`
	SMTP     string `json:"smtp"`
	Security string `json:"security"`
}

func runQuickstart(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	dir := fs.String("dir", "tollbridge-quickstart", "folder for both bridges (reused by later runs)")
	asJSON := fs.Bool("json", false, "print the settings as one JSON line")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default: warnings and one line per delivered message)")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		return errors.Join(err, usagef("unexpected arguments"))
	}
	log, err := quickstartLogger(e.stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	l, err := setupQuickstart(ctx, *dir, qsSites(), 20, 4, keyring.Protection{})
	if err != nil {
		return interrupted(ctx, err)
	}
	bridges, err := l.open(ctx, log, options{})
	if err != nil {
		return interrupted(ctx, err)
	}
	users := l.settings(bridges)
	if *asJSON {
		json.NewEncoder(e.stdout).Encode(map[string]any{"users": users})
	} else {
		printSettings(e.stdout, l, users)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go stopOnEnter(e.stdin, stop)
	return runAll(ctx, bridges)
}

// stopOnEnter calls stop when a line (Enter) is read from stdin. `go run`
// reports exit status 1 whenever it was interrupted itself, however its
// child ends, so Ctrl-C cannot end a `go run` cleanly; Enter can. An
// input that ends without a line (/dev/null, a closed pipe) stops nothing.
func stopOnEnter(stdin io.Reader, stop func()) {
	if stdin == nil {
		return
	}
	if _, err := bufio.NewReader(stdin).ReadString('\n'); err == nil {
		stop()
	}
}

// open starts both bridges' listeners.
func (l *qsLayout) open(ctx context.Context, log *slog.Logger, opts options) ([]*bridge, error) {
	var bs []*bridge
	for _, s := range l.Sites {
		cfg, err := config.Load(l.configPath(s))
		if err != nil {
			return nil, err
		}
		b, err := newBridgeWith(ctx, cfg, log.With("bridge", s.Domain), opts)
		if err != nil {
			for _, b := range bs {
				b.close()
			}
			return nil, err
		}
		bs = append(bs, b)
	}
	return bs, nil
}

func (l *qsLayout) settings(bs []*bridge) []qsUser {
	var us []qsUser
	for i, s := range l.Sites {
		us = append(us, qsUser{Address: s.User, Password: s.Password, IMAP: bs[i].addr("imap"), SMTP: bs[i].addr("submission"), Security: "starttls"})
	}
	return us
}

func printSettings(w io.Writer, l *qsLayout, us []qsUser) {
	fmt.Fprintf(w, "tollbridge quickstart: two bridges on loopback, data in %s\n\n", l.Dir)
	for _, u := range us {
		host, imapPort, _ := net.SplitHostPort(u.IMAP)
		_, smtpPort, _ := net.SplitHostPort(u.SMTP)
		fmt.Fprintf(w, "  %s\n    password:  %s\n    IMAP:      %s port %s, STARTTLS, normal password\n    SMTP:      %s port %s, STARTTLS, normal password\n\n",
			u.Address, u.Password, host, imapPort, host, smtpPort)
	}
	fmt.Fprintln(w, "The certificates are self-signed: accept them once in your mail client. They")
	fmt.Fprintln(w, "name 127.0.0.1 and localhost; clients that check names only (mbsync) need localhost.")
	fmt.Fprintf(w, "These settings are in %s too.\n", l.credentialsPath())
	fmt.Fprintln(w, "Mail between the two addresses takes the ticketed path, proof-of-work included.")
	fmt.Fprintln(w, "Press Enter (or Ctrl-C) to stop both bridges.")
}

// runAll runs bridges until ctx is done.
func runAll(ctx context.Context, bs []*bridge) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(bs))
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.run(ctx)
			cancel()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
