package mailbench

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"tollbridge/internal/mtatest"
)

// needMTAs skips the benchmark where Postfix or Dovecot is missing or
// Postfix cannot run (it must be started as root), and returns both
// commands.
func needMTAs(tb testing.TB) (postfix, dovecot string) {
	tb.Helper()
	postfix, dovecot = mtatest.LookPath("postfix"), mtatest.LookPath("dovecot")
	if postfix == "" {
		tb.Skip("postfix is not installed (Debian: apt-get install postfix)")
	}
	if dovecot == "" || !hasLMTP() {
		tb.Skip("dovecot with LMTP is not installed (Debian: dovecot-imapd dovecot-lmtpd)")
	}
	if os.Geteuid() != 0 {
		tb.Skip("a private Postfix must be started as root (it drops to mail_owner)")
	}
	return postfix, dovecot
}

// hasLMTP reports whether Dovecot's LMTP server is installed where Debian
// or Fedora puts it.
func hasLMTP() bool {
	for _, p := range []string{"/usr/lib/dovecot/lmtp", "/usr/libexec/dovecot/lmtp"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// mtaServices are the master.cf services the benchmark's Postfixes add to
// mtatest's: the LMTP client and tlsmgr.
var mtaServices = []string{
	"tlsmgr unix - - n 1000? 1 tlsmgr",
	"lmtp unix - - n - - lmtp",
}

// startPostfix runs a private Postfix in dir on addr ("" picks a port)
// that relays example.net to transport and whose smtpd and smtp use TLS
// as tls (main.cf lines) says; it stops when the benchmark ends.
func startPostfix(tb testing.TB, bin, dir, addr, hostname, transport string, tls []string) *mtatest.Postfix {
	tb.Helper()
	return mtatest.StartPostfix(tb, mtatest.PostfixOptions{Bin: bin, Dir: dir, Addr: addr, Hostname: hostname,
		Routes: map[string]string{"example.net": transport},
		Main:   append([]string{"lmtp_host_lookup = native"}, tls...), Master: mtaServices})
}

// startMTAs runs alice's Postfix (submission: STARTTLS and AUTH required,
// the passwords in bob's Dovecot), which
// relays example.net with mandatory STARTTLS to bob's Postfix, which
// delivers by LMTP to bob's Dovecot. cert and key serve every TLS hop.
func startMTAs(tb testing.TB, dir, cert, key string) *side {
	tb.Helper()
	postfix, dovecot := needMTAs(tb)
	mtatest.OpenDir(tb, dir)
	tlsDir := filepath.Join(dir, "tls")
	os.MkdirAll(tlsDir, 0o755)
	cert, key = copyFile(tb, cert, tlsDir, 0o644), copyFile(tb, key, tlsDir, 0o600)
	s := &side{name: "postfix", submission: mtatest.FreeAddr(tb), auth: true,
		from: "alice@example.org", fromPassword: "pw-alice@example.org",
		to: "bob@example.net", toPassword: "pw-bob@example.net"}
	dovecotDir := filepath.Join(dir, "dovecot")
	dc := mtatest.StartDovecot(tb, mtatest.DovecotOptions{Bin: dovecot, Dir: dovecotDir, Cert: cert, Key: key,
		Users: []mtatest.User{{Address: s.from, Password: s.fromPassword}, {Address: s.to, Password: s.toPassword}},
		LMTP:  true, AuthSocket: "auth-postfix"})
	s.imap = dc.IMAP
	host, port, _ := net.SplitHostPort(dc.LMTP)
	bob := startPostfix(tb, postfix, filepath.Join(dir, "bob"), "", "mta.example.net",
		fmt.Sprintf("lmtp:[%s]:%s", host, port), []string{
			"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
			"smtpd_tls_security_level = may",
			"smtpd_tls_cert_file = " + cert,
			"smtpd_tls_key_file = " + key,
		})
	host, port, _ = net.SplitHostPort(bob.Addr)
	startPostfix(tb, postfix, filepath.Join(dir, "alice"), s.submission, "mta.example.org",
		fmt.Sprintf("smtp:[%s]:%s", host, port), []string{
			"smtpd_tls_security_level = encrypt",
			"smtpd_tls_cert_file = " + cert,
			"smtpd_tls_key_file = " + key,
			"smtp_tls_security_level = encrypt",
			// Submission as users run it: AUTH (checked by Dovecot) over
			// TLS, and only authenticated clients may relay.
			"smtpd_sasl_auth_enable = yes",
			"smtpd_sasl_type = dovecot",
			"smtpd_sasl_path = " + filepath.Join(dovecotDir, "run", "auth-postfix"),
			"smtpd_tls_auth_only = yes",
			"smtpd_relay_restrictions = permit_sasl_authenticated, reject",
		})
	return s
}

// copyFile copies src into dir with mode and returns the copy's path.
func copyFile(tb testing.TB, src, dir string, mode os.FileMode) string {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, mode); err != nil {
		tb.Fatal(err)
	}
	return dst
}
