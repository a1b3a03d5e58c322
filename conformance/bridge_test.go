package conformance_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tollbridge/internal/dnstest"
	"tollbridge/internal/testkit"
)

// A whole bridge, driven only through the CLI contract of docs/rules.md §5
// (`bridge init`, `bridge user add`, `bridge serve`) and its listeners.

// bridgeProc is one `bridge serve` process.
type bridgeProc struct {
	t          *testing.T
	dir        string
	config     string
	domain     string
	ticket     *api // its ticket API + WKD
	imap       string
	submission string
	mx         string // legacy inbound SMTP
	cmd        *exec.Cmd
	done       chan error
	mu         sync.Mutex
	logs       bytes.Buffer
}

// route is a [[route]] of the config.
type route struct{ domain, url, ca string }

// freeAddr is a free loopback address for a bridge's config, below the
// ephemeral port range (testkit.FreeAddr says why).
func freeAddr(t *testing.T) string { return testkit.FreeAddr(t) }

// buildBridge compiles cmd/bridge into dir.
func buildBridge(t *testing.T, _ string) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "tollbridge-conformance-")
		if err != nil {
			built.err = err
			return
		}
		built.dir, built.bin = dir, filepath.Join(dir, "bridge")
		if out, err := exec.Command("go", "build", "-o", built.bin, "tollbridge/cmd/bridge").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// built is the bridge binary, built once for all the tests of a run (a
// build takes seconds; a run starts several bridges) and removed by
// TestMain.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
}

// TestMain removes the bridge binary built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func runCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("bridge %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startBridge sets up a bridge for domain with the given users (password
// "pw-" + address), proof-of-work difficulty and routes, and serves it.
func startBridge(t *testing.T, bin, domain string, users []string, bits, count int, routes []route, smarthost string) *bridgeProc {
	t.Helper()
	return startBridgeWith(t, bin, domain, users, bits, count, routes, smarthost, bridgeExtra{})
}

// bridgeExtra is what startBridgeWith adds to startBridge's setup.
type bridgeExtra struct {
	config string   // appended to config.toml (whole tables)
	env    []string // added to the environment of `bridge serve`
}

// startBridgeWith is startBridge with more config and environment.
func startBridgeWith(t *testing.T, bin, domain string, users []string, bits, count int, routes []route, smarthost string, extra bridgeExtra) *bridgeProc {
	t.Helper()
	dir := filepath.Join(t.TempDir(), domain)
	b := &bridgeProc{t: t, dir: dir, domain: domain, done: make(chan error, 1)}
	runCLI(t, bin, "init", "--dir", dir, "--domain", domain)
	b.config = filepath.Join(dir, "config.toml")
	raw, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	ticket := freeAddr(t)
	b.imap, b.submission, b.mx = freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := string(raw)
	for _, r := range [][2]string{
		{`"127.0.0.1:1587"`, `"` + b.submission + `"`}, {`"127.0.0.1:1143"`, `"` + b.imap + `"`},
		{`"127.0.0.1:8443"`, `"` + ticket + `"`}, {`mx = ""`, `mx = "` + b.mx + `"`},
		{"pow_bits = 20", fmt.Sprintf("pow_bits = %d", bits)}, {"pow_count = 4", fmt.Sprintf("pow_count = %d", count)},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("bridge init's config has no %s:\n%s", r[0], cfg)
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	if smarthost != "" {
		cfg = strings.Replace(cfg, `smarthost = ""`, `smarthost = "`+smarthost+`"`+"\nsmarthost_tls = \"none\"", 1)
	}
	for _, r := range routes {
		cfg += fmt.Sprintf("\n[[route]]\ndomain = %q\nurl = %q\nca = %q\n", r.domain, r.url, r.ca)
	}
	if !strings.Contains(extra.config, "[dns]") {
		// DNS from a loopback test zone that has no records, never the
		// machine's resolver, whose answers (or silence) depend on the
		// network: SPF, DKIM and DMARC checks see "none" everywhere.
		cfg += fmt.Sprintf("\n[dns]\nresolver = %q\n", dnstest.New(t).Addr())
	}
	cfg += extra.config
	if err := os.WriteFile(b.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		pw := filepath.Join(dir, "pw-"+u)
		if err := os.WriteFile(pw, []byte("pw-"+u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		runCLI(t, bin, "user", "add", "--config", b.config, "--password-file", pw, u)
	}
	b.ticket = &api{t: t, base: "https://" + ticket, hc: trusting(t, filepath.Join(dir, "data", "tls", "cert.pem"))}

	b.cmd = exec.Command(bin, "serve", "--config", b.config)
	if extra.env != nil {
		b.cmd.Env = append(os.Environ(), extra.env...)
	}
	b.cmd.Stdout, b.cmd.Stderr = &lockedWriter{b}, &lockedWriter{b}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(b.stop)
	for _, addr := range []string{ticket, b.imap, b.submission, b.mx} {
		if err := b.waitListening(addr); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

type lockedWriter struct{ b *bridgeProc }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.b.logs.Write(p)
}

func (b *bridgeProc) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logs.String()
}

// waitListening waits until addr accepts connections, or says why not.
// A process that exited leaves its status in b.done for stop.
func (b *bridgeProc) waitListening(addr string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-b.done:
			b.done <- err // stop waits for it too
			return fmt.Errorf("bridge serve exited: %v\n%s", err, b.log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bridge not listening on %s:\n%s", addr, b.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process this test started (by its own handle) and shows
// its log when the test failed.
func (b *bridgeProc) stop() {
	b.cmd.Process.Kill()
	<-b.done
	if b.t.Failed() {
		b.t.Logf("log of the %s bridge:\n%s", b.domain, b.log())
	}
}

// trusting is an HTTPS client that trusts the PEM certificate in file.
func trusting(t *testing.T, file string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s: no certificate", file)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
