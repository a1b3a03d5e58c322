// Package mtatest gives tests and benchmarks the real mail servers that
// stand beside a bridge: a private Dovecot (IMAP with STARTTLS, and LMTP
// and an auth socket for Postfix where asked) and a private Postfix, each
// with its own folders under a temporary directory and its listeners on
// loopback ports, never /etc or the usual ports. It also holds what
// starting them needs (run a command, start a process and wait for its
// IMAP greeting) and the message size mix the benchmarks send.
//
// Missing servers skip the test: Debian's dovecot-imapd (dovecot-lmtpd
// for LMTP) and postfix. A private Postfix must be started as root (it
// drops to mail_owner); as root, Dovecot's mail runs as nobody.
package mtatest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Run runs a command with stdin and returns its combined output; it
// fails tb with that output when the command fails.
func Run(tb testing.TB, stdin string, name string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// StartProcess starts cmd, stops it (interrupt, then kill after 10 s)
// when the test ends and waits, 30 s at most, until addr answers with an
// IMAP greeting. If cmd exits first, tb fails with the file at logPath.
func StartProcess(tb testing.TB, cmd *exec.Cmd, addr, logPath string) {
	tb.Helper()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for i := 0; i < 300; i++ {
		if Greets(addr) {
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			tb.Fatalf("%s exited: %s", cmd.Path, b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	tb.Fatalf("%s: no IMAP greeting on %s within 30s", cmd.Path, addr)
}

// Greets reports whether an IMAP server greets ("* OK") on addr.
func Greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// LookPath finds the command name on PATH or in /usr/sbin or /sbin (where
// Debian puts dovecot and postfix, off an ordinary user's PATH), and
// returns "" where it is in none of them.
func LookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	return ""
}

// FreeAddr returns a 127.0.0.1 address with a port the kernel gave as
// free just now (port 0), for a server started after it.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func write(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
