package mailbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"tollbridge/internal/mtatest"
)

// bridgeBinary builds cmd/bridge once; with TOLLBRIDGE_MAILBENCH_PPROF set
// it adds pprofOverlay to package main through a build overlay.
var bridgeBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mailbench-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bridge")
	args := []string{"build", "-o", bin}
	if os.Getenv("TOLLBRIDGE_MAILBENCH_PPROF") != "" {
		overlay, err := writeOverlay(dir)
		if err != nil {
			return "", err
		}
		args = append(args, "-overlay", overlay)
	}
	out, err := exec.Command("go", append(args, "tollbridge/cmd/bridge")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// pprofOverlay serves net/http/pprof on TOLLBRIDGE_MAILBENCH_PPROF_LISTEN.
// It exists only in the profiled benchmark's build, never in the repo.
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("TOLLBRIDGE_MAILBENCH_PPROF_LISTEN"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// writeOverlay writes pprofOverlay and the overlay file naming it as a
// new file of cmd/bridge, and returns the overlay file's path.
func writeOverlay(dir string) (string, error) {
	src := filepath.Join(dir, "pprof.go")
	if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
		return "", err
	}
	pkg, err := filepath.Abs(filepath.Join("..", "..", "cmd", "bridge"))
	if err != nil {
		return "", err
	}
	target := filepath.Join(pkg, "zz_mailbench_pprof.go")
	overlay := filepath.Join(dir, "overlay.json")
	return overlay, os.WriteFile(overlay, []byte(fmt.Sprintf(`{"Replace":{%q:%q}}`, target, src)), 0o644)
}

// bridgeSite is one `bridge serve` process and its addresses.
type bridgeSite struct {
	domain, user, password   string
	dir                      string
	submission, imap, ticket string
	metrics, pprof           string
	cmd                      *exec.Cmd
}

// newBridgeSite runs `bridge init` for domain in dir with a metrics and a
// pprof address picked, and adds user (a real key derivation).
func newBridgeSite(tb testing.TB, bin, dir, domain, user string) *bridgeSite {
	tb.Helper()
	s := &bridgeSite{domain: domain, user: user, password: "pw-" + user, dir: dir,
		submission: mtatest.FreeAddr(tb), imap: mtatest.FreeAddr(tb), ticket: mtatest.FreeAddr(tb), metrics: mtatest.FreeAddr(tb), pprof: mtatest.FreeAddr(tb)}
	mtatest.Run(tb, "", bin, "init", "--dir", dir, "--domain", domain, "--hostname", "localhost",
		"--submission", s.submission, "--imap", s.imap, "--ticket", s.ticket)
	mtatest.Run(tb, s.password+"\n", bin, "user", "add", "--config", s.config(), "--password-file", "-",
		"--recovery-file", filepath.Join(dir, "recovery"), user)
	return s
}

func (s *bridgeSite) config() string { return filepath.Join(s.dir, "config.toml") }
func (s *bridgeSite) cert() string   { return filepath.Join(s.dir, "data", "tls", "cert.pem") }
func (s *bridgeSite) key() string    { return filepath.Join(s.dir, "data", "tls", "key.pem") }

// routeTo edits the config as cmd/bridge's processLayout writes it: the
// peer's domain goes to its ticket API, trusting its self-signed
// certificate, and ticket requests are not rate-limited (one sender at
// full speed). It also turns /metrics on.
func (s *bridgeSite) routeTo(tb testing.TB, peer *bridgeSite) {
	tb.Helper()
	b, err := os.ReadFile(s.config())
	if err != nil {
		tb.Fatal(err)
	}
	conf := strings.Replace(string(b), "\nexpiry = ", "\nrate_per_minute = 0\nexpiry = ", 1)
	conf = withWork(tb, conf)
	conf += fmt.Sprintf("\n[[route]]\ndomain = %q\nurl = %q\nca = %q\n\n[metrics]\nlisten = %q\n",
		peer.domain, "https://"+peer.ticket, peer.cert(), s.metrics)
	if err := os.WriteFile(s.config(), []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// serve starts `bridge serve` and waits for its IMAP greeting; it is
// stopped when the benchmark ends.
func (s *bridgeSite) serve(tb testing.TB, bin string) {
	tb.Helper()
	logPath := filepath.Join(s.dir, "bridge.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve", "--config", s.config())
	s.cmd.Env = append(os.Environ(), "TOLLBRIDGE_MAILBENCH_PPROF_LISTEN="+s.pprof)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	mtatest.StartProcess(tb, s.cmd, s.imap, logPath)
}

// cpuSeconds is the user plus system CPU time the process has used, from
// /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ); 0 where
// there is no /proc.
func (s *bridgeSite) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is
	// the first, utime the 12th and stime the 13th.
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// metric reads one unlabelled value from the bridge's /metrics; 0 when
// it is missing.
func (s *bridgeSite) metric(name string) float64 {
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// profile fetches a CPU profile of seconds from the pprof overlay into
// path; the returned channel gives its error when it is written.
func (s *bridgeSite) profile(ctx context.Context, seconds int, path string) <-chan error {
	done := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.pprof, seconds)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- fmt.Errorf("%s pprof: %w", s.domain, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
		done <- err
	}()
	return done
}

// bridgePair is alice's and bob's bridges, routed to each other.
type bridgePair struct{ alice, bob *bridgeSite }

// startBridges builds cmd/bridge and runs the two bridges in dir.
func startBridges(tb testing.TB, dir string) *bridgePair {
	tb.Helper()
	bin, err := bridgeBinary()
	if err != nil {
		tb.Fatal(err)
	}
	p := &bridgePair{
		alice: newBridgeSite(tb, bin, filepath.Join(dir, "example.org"), "example.org", "alice@example.org"),
		bob:   newBridgeSite(tb, bin, filepath.Join(dir, "example.net"), "example.net", "bob@example.net"),
	}
	p.alice.routeTo(tb, p.bob)
	p.bob.routeTo(tb, p.alice)
	p.alice.serve(tb, bin)
	p.bob.serve(tb, bin)
	return p
}

// side is the bridges as the benchmark sees a mail system.
func (p *bridgePair) side() *side {
	return &side{name: "bridge", submission: p.alice.submission, auth: true,
		from: p.alice.user, fromPassword: p.alice.password,
		imap: p.bob.imap, to: p.bob.user, toPassword: p.bob.password}
}

// withWork sets the proof-of-work each bridge asks of senders to
// TOLLBRIDGE_MAILBENCH_POW ("BITS,COUNT", e.g. "8,1" to time the mail
// path without the work); unset, conf keeps bridge init's default.
func withWork(tb testing.TB, conf string) string {
	tb.Helper()
	v := os.Getenv("TOLLBRIDGE_MAILBENCH_POW")
	if v == "" {
		return conf
	}
	var bits, count int
	if _, err := fmt.Sscanf(v, "%d,%d", &bits, &count); err != nil {
		tb.Fatalf("TOLLBRIDGE_MAILBENCH_POW=%q: want BITS,COUNT: %v", v, err)
	}
	conf = regexp.MustCompile(`(?m)^pow_bits = \d+$`).ReplaceAllString(conf, fmt.Sprintf("pow_bits = %d", bits))
	return regexp.MustCompile(`(?m)^pow_count = \d+$`).ReplaceAllString(conf, fmt.Sprintf("pow_count = %d", count))
}
