package imapbench

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
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

// freeAddr returns a 127.0.0.1 address with a port free just now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// run runs a command and fails with its output.
func run(tb testing.TB, stdin string, name string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
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
	s = &server{name: "bridge", addr: freeAddr(tb), user: "bob@example.net", password: "yardstick-pw-1"}
	run(tb, "", bin, "init", "--dir", dir, "--domain", "example.net", "--hostname", "localhost",
		"--submission", freeAddr(tb), "--imap", s.addr, "--ticket", freeAddr(tb))
	cfg := filepath.Join(dir, "config.toml")
	run(tb, s.password+"\n", bin, "user", "add", "--config", cfg, "--password-file", "-",
		"--recovery-file", filepath.Join(dir, "recovery"), s.user)
	logf, err := os.Create(filepath.Join(dir, "bridge.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	startProcess(tb, cmd, s.addr, filepath.Join(dir, "bridge.log"))
	tls := filepath.Join(dir, "data", "tls")
	return s, filepath.Join(tls, "cert.pem"), filepath.Join(tls, "key.pem")
}

// startProcess starts cmd, stops it when the benchmark ends and waits
// until addr answers with an IMAP greeting.
func startProcess(tb testing.TB, cmd *exec.Cmd, addr, logPath string) {
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
		if greets(addr) {
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

// greets reports whether an IMAP server greets on addr.
func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// dovecotConf is a private Dovecot: everything under one folder, IMAP with
// STARTTLS on one loopback port, one passwd-file user whose mail is a
// Maildir. Values: dir, addr host, port, cert, key, mail uid, gid, the
// internal and login users.
const dovecotConf = `base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
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
  args = uid=%[6]s gid=%[7]s home=%[1]s/mail/%%u
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
service stats {
  inet_listener http {
    port = 0
  }
}
`

// startDovecot runs a private Dovecot in dir, or skips without one. The
// password is stored as SHA512-CRYPT, Dovecot's usual scheme.
func startDovecot(tb testing.TB, dir, cert, key string) *server {
	tb.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/dovecot"); err != nil {
			tb.Skip("dovecot is not installed (Debian: dovecot-imapd)")
		}
	}
	s := &server{name: "dovecot", addr: freeAddr(tb), user: "bob@example.net", password: "yardstick-pw-1"}
	uid, gid, internal, login := dovecotUsers(tb)
	for _, d := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	os.Chown(filepath.Join(dir, "mail"), atoi(uid), atoi(gid))
	hash := strings.TrimSpace(run(tb, "", "doveadm", "pw", "-s", "SHA512-CRYPT", "-p", s.password))
	write(tb, filepath.Join(dir, "passwd"), s.user+":"+hash+"\n")
	host, port, _ := net.SplitHostPort(s.addr)
	conf := filepath.Join(dir, "dovecot.conf")
	write(tb, conf, fmt.Sprintf(dovecotConf, dir, host, port, cert, key, uid, gid, internal, login))
	cmd := exec.Command(bin, "-F", "-c", conf)
	startProcess(tb, cmd, s.addr, filepath.Join(dir, "dovecot.log"))
	return s
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
