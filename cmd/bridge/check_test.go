package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestCheckTwoBridges: two bridges that route to each other pass check
// before serve (the peer not up yet is a warning) and while running (the
// ports they hold themselves are "running", not taken).
func TestCheckTwoBridges(t *testing.T) {
	t.Parallel()
	l := processLayout(t, 8, 1)
	org, nett := l.configPath(l.Sites[0]), l.configPath(l.Sites[1])
	code, out, errs := runBinary(t, "check", "--config", org)
	if code != 0 || !strings.Contains(out, org+": warning: route[0]: https://") || !strings.HasSuffix(out, org+": ok\n") {
		t.Fatalf("check before serve: %d\n%s%s", code, out, errs)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, org+": ") {
			t.Errorf("line does not name the config as given: %q", line)
		}
	}
	p := serveProcess(t, org)
	serveProcess(t, nett)
	code, out, errs = runBinary(t, "check", "--config", org)
	// The test zone publishes nothing, so the DNS records are warned
	// about (TestDNSCommandAndCheck covers them); no other warning.
	if code != 0 || strings.Contains(regexp.MustCompile(`(?m)^.*: warning: dns: .*$`).ReplaceAllString(out, ""), "warning") ||
		!strings.Contains(out, fmt.Sprintf("%s: smtp.submission: %s is served by this bridge, running (pid %d)", org, p.cfg.SMTP.Submission, p.cmd.Process.Pid)) ||
		!strings.Contains(out, "ticket.listen: "+p.cfg.Ticket.Listen+" is served by this bridge, running") {
		t.Fatalf("check while running: %d\n%s%s", code, out, errs)
	}
	// Once stopped, the lock is gone: the ports are free again.
	p.stop()
	if code, out, _ := runBinary(t, "check", "--config", org); code != 0 || strings.Contains(out, "running") {
		t.Fatalf("check after stop: %d\n%s", code, out)
	}
}

// TestCheckSmarthost: check talks to the smarthost as delivery will:
// STARTTLS when configured (a relay without it fails the check, where it
// used to pass and delivery then failed), the certificate against
// smarthost_ca, and AUTH with the configured password.
func TestCheckSmarthost(t *testing.T) {
	t.Parallel()
	plain := startSink(t, nil)
	certDir := t.TempDir()
	cert, key := filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem")
	if err := selfSigned(cert, key, "localhost"); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	secure := startSink(t, &tls.Config{Certificates: []tls.Certificate{pair}})
	pw := filepath.Join(certDir, "pw")
	os.WriteFile(pw, []byte("right\n"), 0o600)
	wrong := filepath.Join(certDir, "wrong")
	os.WriteFile(wrong, []byte("wrong\n"), 0o600)

	for _, tc := range []struct {
		name, delivery, want string
		code                 int
	}{
		{"no STARTTLS", `smarthost = "` + plain + `"` + "\nsmarthost_tls = \"starttls\"", ": delivery.smarthost: " + plain + ` (smarthost_tls = "starttls"): does not offer STARTTLS`, 1},
		{"plain on purpose", `smarthost = "` + plain + `"` + "\nsmarthost_tls = \"none\"", ": ok", 0},
		{"untrusted certificate", `smarthost = "` + secure + `"`, "(smarthost_tls = \"starttls\"): STARTTLS: tls: failed to verify certificate", 1},
		{"STARTTLS and AUTH", `smarthost = "` + secure + `"` + "\nsmarthost_ca = \"" + cert + "\"\nsmarthost_username = \"relay\"\nsmarthost_password_file = \"" + pw + "\"", ": ok", 0},
		{"wrong password", `smarthost = "` + secure + `"` + "\nsmarthost_ca = \"" + cert + "\"\nsmarthost_username = \"relay\"\nsmarthost_password_file = \"" + wrong + "\"", ": delivery.smarthost_username: " + secure + " refused AUTH as relay", 1},
	} {
		cfg := checkConfig(t, tc.delivery)
		code, out, errs := runBinary(t, "check", "--config", cfg)
		if code != tc.code || !strings.Contains(out, tc.want) || !strings.HasPrefix(out, cfg+": ") {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", tc.name, code, tc.code, tc.want, out, errs)
		}
	}
}

// startSink runs a go-smtp server that accepts AUTH PLAIN relay/right
// and offers STARTTLS when tc is set.
func startSink(t *testing.T, tc *tls.Config) string {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{}, nil }))
	srv.Domain = "sink.test"
	srv.TLSConfig = tc
	srv.AllowInsecureAuth = tc == nil
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients hang up after a failed handshake
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type sinkSession struct{}

func (sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "relay" || pass != "right" {
			return errors.New("wrong password")
		}
		return nil
	}), nil
}
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
