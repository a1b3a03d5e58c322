package mailbench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needMTAs skips the benchmark where Postfix or Dovecot is missing or
// Postfix cannot run (it must be started as root), and returns both
// commands.
func needMTAs(tb testing.TB) (postfix, dovecot string) {
	tb.Helper()
	postfix, dovecot = lookPath("postfix"), lookPath("dovecot")
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

// lookPath finds name on PATH or in the sbin folders, "" if nowhere.
func lookPath(name string) string {
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

// postfixMaster is cmd/bridge's private Postfix master.cf (no chroot:
// the daemons see the private folders as they are) with the LMTP client
// and tlsmgr added. %s is the smtpd's host:port.
const postfixMaster = `%s inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
lmtp unix - - n - - lmtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`

// startPostfix runs a private Postfix in dir (etc/, queue/, data/, as in
// cmd/bridge's postfix_test.go) on addr that relays example.net to
// transport and whose smtpd and smtp use TLS as tls (main.cf lines) says;
// it stops when the benchmark ends.
func startPostfix(tb testing.TB, bin, dir, addr, hostname, transport string, tls []string) {
	tb.Helper()
	mainCF := append([]string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"myhostname = " + hostname,
		"mydomain = " + hostname,
		"mydestination =",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"relay_domains = example.net",
		"transport_maps = inline:{ example.net=" + transport + " }",
		"smtputf8_enable = no",
		"alias_maps =",
		"alias_database =",
		"biff = no",
		"smtp_host_lookup = native",
		"lmtp_host_lookup = native",
		"smtpd_peername_lookup = no",
		"maillog_file = " + filepath.Join(dir, "maillog"),
		"maillog_file_prefixes = " + dir,
	}, tls...)
	for _, d := range []string{"etc", "queue"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write(tb, filepath.Join(dir, "etc", "main.cf"), strings.Join(mainCF, "\n")+"\n")
	write(tb, filepath.Join(dir, "etc", "master.cf"), fmt.Sprintf(postfixMaster, addr))
	if out, err := postfixCmd(bin, dir, "start"); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		tb.Fatalf("postfix start: %v\n%s\n%s", err, out, b)
	}
	tb.Cleanup(func() { stopPostfix(tb, bin, dir) })
}

// stopPostfix runs `postfix stop` and waits (bounded) until the master
// has exited.
func stopPostfix(tb testing.TB, bin, dir string) {
	if out, err := postfixCmd(bin, dir, "stop"); err != nil {
		tb.Errorf("postfix stop: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
	if err != nil {
		tb.Errorf("postfix master pid: %v", err)
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; pid > 0 && syscall.Kill(pid, 0) == nil; i++ {
		if i == 100 {
			tb.Errorf("postfix master (pid %d) still running 5 s after stop", pid)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postfixCmd runs `postfix -c DIR/etc cmd`, bounded in time.
func postfixCmd(bin, dir, cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, bin, "-c", filepath.Join(dir, "etc"), cmd).CombinedOutput()
}

// startMTAs runs alice's Postfix (submission: STARTTLS and AUTH required,
// the passwords in bob's Dovecot), which
// relays example.net with mandatory STARTTLS to bob's Postfix, which
// delivers by LMTP to bob's Dovecot. cert and key serve every TLS hop.
func startMTAs(tb testing.TB, dir, cert, key string) *side {
	tb.Helper()
	postfix, dovecot := needMTAs(tb)
	// Postfix's and Dovecot's daemons drop root and must reach their
	// folders: the temporary folders are made for root only.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.MkdirAll(d, 0o755)
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	tlsDir := filepath.Join(dir, "tls")
	os.MkdirAll(tlsDir, 0o755)
	cert, key = copyFile(tb, cert, tlsDir, 0o644), copyFile(tb, key, tlsDir, 0o600)
	s := &side{name: "postfix", submission: freeAddr(tb), auth: true,
		from: "alice@example.org", fromPassword: "pw-alice@example.org",
		to: "bob@example.net", toPassword: "pw-bob@example.net"}
	var lmtp string
	dovecotDir := filepath.Join(dir, "dovecot")
	s.imap, lmtp = startDovecot(tb, dovecot, dovecotDir, cert, key, s.from, s.to)
	bobMTA := freeAddr(tb)
	host, port, _ := net.SplitHostPort(lmtp)
	startPostfix(tb, postfix, filepath.Join(dir, "bob"), bobMTA, "mta.example.net",
		fmt.Sprintf("lmtp:[%s]:%s", host, port), []string{
			"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
			"smtpd_tls_security_level = may",
			"smtpd_tls_cert_file = " + cert,
			"smtpd_tls_key_file = " + key,
		})
	host, port, _ = net.SplitHostPort(bobMTA)
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

// dovecotConf is internal/imapbench's private Dovecot with LMTP added on
// a loopback port and an auth socket for Postfix's SASL. Values: dir, host, IMAP port, cert, key, mail uid,
// gid, internal and login users, LMTP port.
const dovecotConf = `base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap lmtp
listen = %[2]s
ssl = required
ssl_cert = <%[4]s
ssl_key = <%[5]s
auth_mechanisms = plain login
default_internal_user = %[8]s
default_login_user = %[9]s
first_valid_uid = %[6]s
mail_location = maildir:%[1]s/mail/%%u
mail_uid = %[6]s
mail_gid = %[7]s
passdb {
  driver = passwd-file
  args = %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[6]s gid=%[7]s home=%[1]s/mail/%%u allow_all_users=yes
}
service imap-login {
  inet_listener imap {
    address = %[2]s
    port = %[3]s
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = %[2]s
    port = %[10]s
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
service stats {
  inet_listener http {
    port = 0
  }
}
`

// startDovecot runs a private Dovecot in dir with passwd-file users
// (password "pw-" and the address, SHA512-CRYPT: Dovecot's usual scheme)
// and returns its IMAP and LMTP addresses.
func startDovecot(tb testing.TB, bin, dir, cert, key string, users ...string) (imapAddr, lmtpAddr string) {
	tb.Helper()
	imapAddr, lmtpAddr = freeAddr(tb), freeAddr(tb)
	uid, gid, internal, login := dovecotUsers(tb)
	for _, d := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	os.Chown(filepath.Join(dir, "mail"), atoi(uid), atoi(gid))
	var passwd strings.Builder
	for _, u := range users {
		hash := strings.TrimSpace(run(tb, "", "doveadm", "pw", "-s", "SHA512-CRYPT", "-p", "pw-"+u))
		passwd.WriteString(u + ":" + hash + "\n")
	}
	write(tb, filepath.Join(dir, "passwd"), passwd.String())
	host, port, _ := net.SplitHostPort(imapAddr)
	_, lmtpPort, _ := net.SplitHostPort(lmtpAddr)
	conf := filepath.Join(dir, "dovecot.conf")
	write(tb, conf, fmt.Sprintf(dovecotConf, dir, host, port, cert, key, uid, gid, internal, login, lmtpPort))
	startProcess(tb, exec.Command(bin, "-F", "-c", conf), imapAddr, filepath.Join(dir, "dovecot.log"))
	return imapAddr, lmtpAddr
}

// dovecotUsers picks who Dovecot's mail, internal and login processes run
// as: as root, nobody for the mail and Debian's dovecot and dovenull
// users; otherwise everything runs as the current user.
func dovecotUsers(tb testing.TB) (uid, gid, internal, login string) {
	me, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	if me.Uid != "0" {
		return me.Uid, me.Gid, me.Username, me.Username
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		tb.Skip("running as root without a nobody user")
	}
	return nobody.Uid, nobody.Gid, "dovecot", "dovenull"
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func write(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
