package mtatest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// DovecotOptions says what a private Dovecot serves.
type DovecotOptions struct {
	// Bin is the dovecot command; "" looks it up (LookPath) and skips
	// the test where there is none.
	Bin string
	// Dir is the folder Dovecot keeps everything in: its config, run/,
	// state/, the log, the passwd file and the users' Maildirs (mail/).
	Dir string
	// Cert and Key are the PEM files of the TLS certificate IMAP's
	// STARTTLS (and LMTP's) offers; TLS is required.
	Cert, Key string
	// Users may log in with their passwords, stored as SHA512-CRYPT,
	// Dovecot's usual scheme; any address gets a Maildir.
	Users []User
	// LMTP adds an LMTP listener on another loopback port, delivering to
	// any address (allow_all_users).
	LMTP bool
	// AuthSocket, if set, names a unix listener of the auth service
	// under Dir/run, open to everyone, for Postfix's SASL
	// (smtpd_sasl_type = dovecot).
	AuthSocket string
}

// User is one Dovecot login.
type User struct{ Address, Password string }

// Dovecot is a running private Dovecot.
type Dovecot struct {
	IMAP string // host:port of IMAP with STARTTLS
	LMTP string // host:port of LMTP, "" without DovecotOptions.LMTP
}

// dovecotConf is a private Dovecot: everything under one folder, IMAP with
// STARTTLS on one loopback port, passwd-file users whose mail is a
// Maildir. Values: dir, addr host, port, cert, key, mail uid, gid, the
// internal and login users, then the extra protocols, userdb args and
// services (LMTP, auth socket) the options add.
const dovecotConf = `base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap%[10]s
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
  args = uid=%[6]s gid=%[7]s home=%[1]s/mail/%%u%[11]s
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
%[12]sservice stats {
  inet_listener http {
    port = 0
  }
}
`

// StartDovecot runs a private Dovecot as o says until the test ends, or
// skips the test where Dovecot is not installed.
func StartDovecot(tb testing.TB, o DovecotOptions) *Dovecot {
	tb.Helper()
	bin := o.Bin
	if bin == "" {
		if bin = LookPath("dovecot"); bin == "" {
			tb.Skip("dovecot is not installed (Debian: dovecot-imapd)")
		}
	}
	d := &Dovecot{IMAP: FreeAddr(tb)}
	if o.LMTP {
		d.LMTP = FreeAddr(tb)
	}
	uid, gid, internal, login := dovecotUsers(tb)
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, sub), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	os.Chmod(o.Dir, 0o755)
	os.Chown(filepath.Join(o.Dir, "mail"), atoi(uid), atoi(gid))
	var passwd strings.Builder
	for _, u := range o.Users {
		hash := strings.TrimSpace(Run(tb, "", "doveadm", "pw", "-s", "SHA512-CRYPT", "-p", u.Password))
		passwd.WriteString(u.Address + ":" + hash + "\n")
	}
	write(tb, filepath.Join(o.Dir, "passwd"), passwd.String())
	host, port, _ := net.SplitHostPort(d.IMAP)
	protocols, userdb, services := o.extras(host, d.LMTP)
	conf := filepath.Join(o.Dir, "dovecot.conf")
	write(tb, conf, fmt.Sprintf(dovecotConf, o.Dir, host, port, o.Cert, o.Key, uid, gid, internal, login,
		protocols, userdb, services))
	StartProcess(tb, exec.Command(bin, "-F", "-c", conf), d.IMAP, filepath.Join(o.Dir, "dovecot.log"))
	return d
}

// extras are the config's additions for LMTP on lmtpAddr and the auth
// socket: to protocols, to the userdb's args and the services.
func (o DovecotOptions) extras(host, lmtpAddr string) (protocols, userdb, services string) {
	if o.LMTP {
		_, port, _ := net.SplitHostPort(lmtpAddr)
		protocols, userdb = " lmtp", " allow_all_users=yes"
		services = fmt.Sprintf("service lmtp {\n  inet_listener lmtp {\n    address = %s\n    port = %s\n  }\n}\n", host, port)
	}
	if o.AuthSocket != "" {
		services += fmt.Sprintf("service auth {\n  unix_listener %s {\n    mode = 0666\n  }\n}\n", o.AuthSocket)
	}
	return protocols, userdb, services
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
