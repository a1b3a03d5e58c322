// Package gpgtest runs GnuPG in a throwaway home directory for tests that
// check interoperability with it. Tests skip when gpg is not installed;
// CI installs Debian's gnupg 2.2.
package gpgtest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// GnuPG is one throwaway GnuPG home.
type GnuPG struct {
	t    testing.TB
	home string
}

// New makes a GnuPG home removed (and its agent stopped) when t ends.
func New(t testing.TB) *GnuPG {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	// A short path: gpg-agent's socket lives in the home directory and
	// Unix socket paths are limited to ~107 bytes.
	home, err := os.MkdirTemp("", "sg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &GnuPG{t: t, home: home}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = g.env()
		kill.Run() // best effort: no agent may have started
		os.RemoveAll(home)
	})
	return g
}

func (g *GnuPG) env() []string {
	return append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C")
}

// Run runs gpg with stdin and returns stdout and stderr, which carries the
// status lines ([GNUPG:] ...).
func (g *GnuPG) Run(stdin []byte, args ...string) (stdout []byte, stderr string, err error) {
	base := []string{"--batch", "--no-tty", "--yes", "--pinentry-mode", "loopback",
		"--trust-model", "always", "--status-fd", "2", "--no-auto-key-locate"}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Env = g.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.String(), err
}

// MustRun is Run failing the test on error.
func (g *GnuPG) MustRun(stdin []byte, args ...string) ([]byte, string) {
	g.t.Helper()
	out, status, err := g.Run(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, status)
	}
	return out, status
}

// ImportSecret imports e's unlocked secret key.
func (g *GnuPG) ImportSecret(e *openpgp.Entity) {
	g.t.Helper()
	var buf bytes.Buffer
	if err := e.SerializePrivate(&buf, nil); err != nil {
		g.t.Fatal(err)
	}
	g.MustRun(buf.Bytes(), "--import")
}

// ImportPublic imports e's public key.
func (g *GnuPG) ImportPublic(e *openpgp.Entity) {
	g.t.Helper()
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		g.t.Fatal(err)
	}
	g.MustRun(buf.Bytes(), "--import")
}

// WantStatus fails t unless status has every line ("GOODSIG …").
func WantStatus(t testing.TB, status string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(status, "[GNUPG:] "+l) {
			t.Errorf("status lacks %q:\n%s", l, status)
		}
	}
}
