package imapbench

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/internal/mtatest"
)

// server is one IMAP server under test: where it listens and who logs in.
type server struct {
	name     string
	addr     string
	user     string
	password string
}

// dial opens a STARTTLS session and logs in.
func (s *server) dial(tb testing.TB) *imapclient.Client {
	tb.Helper()
	c, err := s.connect()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// connect is dial for goroutines other than the benchmark's own.
func (s *server) connect() (*imapclient.Client, error) {
	c, err := imapclient.DialStartTLS(s.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", s.name, err)
	}
	if err := c.Login(s.user, s.password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: login: %w", s.name, err)
	}
	return c, nil
}

// bridgeBinary builds cmd/bridge once.
var bridgeBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "imapbench-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bridge")
	out, err := exec.Command("go", "build", "-o", bin, "tollbridge/cmd/bridge").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startBridge creates a bridge (bridge init, bridge user add with a real
// key derivation) in dir and runs `bridge serve` until the benchmark ends.
// Its self-signed certificate is returned for Dovecot to use too.
func startBridge(tb testing.TB, dir string) (s *server, cert, key string) {
	tb.Helper()
	bin, err := bridgeBinary()
	if err != nil {
		tb.Fatal(err)
	}
	s = &server{name: "bridge", addr: mtatest.FreeAddr(tb), user: "bob@example.net", password: "yardstick-pw-1"}
	mtatest.Run(tb, "", bin, "init", "--dir", dir, "--domain", "example.net", "--hostname", "localhost",
		"--submission", mtatest.FreeAddr(tb), "--imap", s.addr, "--ticket", mtatest.FreeAddr(tb))
	cfg := filepath.Join(dir, "config.toml")
	mtatest.Run(tb, s.password+"\n", bin, "user", "add", "--config", cfg, "--password-file", "-",
		"--recovery-file", filepath.Join(dir, "recovery"), s.user)
	logf, err := os.Create(filepath.Join(dir, "bridge.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	mtatest.StartProcess(tb, cmd, s.addr, filepath.Join(dir, "bridge.log"))
	tls := filepath.Join(dir, "data", "tls")
	return s, filepath.Join(tls, "cert.pem"), filepath.Join(tls, "key.pem")
}

// startDovecot runs a private Dovecot in dir (IMAP with STARTTLS, one
// user), or skips without one.
func startDovecot(tb testing.TB, dir, cert, key string) *server {
	tb.Helper()
	s := &server{name: "dovecot", user: "bob@example.net", password: "yardstick-pw-1"}
	d := mtatest.StartDovecot(tb, mtatest.DovecotOptions{Dir: dir, Cert: cert, Key: key,
		Users: []mtatest.User{{Address: s.user, Password: s.password}}})
	s.addr = d.IMAP
	return s
}
