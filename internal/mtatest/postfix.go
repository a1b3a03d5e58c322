package mtatest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostfixOptions says what a private Postfix relays and how.
type PostfixOptions struct {
	// Bin is the postfix command; "" looks it up (LookPath) and skips the
	// test where there is none.
	Bin string
	// Dir holds etc/ (config_directory), queue/, data/ and the log
	// (maillog); "" is a new temporary folder. Dir and its parents up
	// to the temporary directory are opened to the daemons (OpenDir).
	Dir string
	// Addr is the smtpd's 127.0.0.1 host:port; "" picks a free port.
	Addr string
	// Hostname is myhostname and mydomain.
	Hostname string
	// Routes maps each domain Postfix relays to its transport, such as
	// "smtp:[127.0.0.1]:2525" or "lmtp:[127.0.0.1]:2424".
	Routes map[string]string
	// Main are more main.cf lines: relay restrictions, TLS, SASL, timing.
	Main []string
	// Master are more master.cf lines: services beyond the base set
	// (smtpd, the queue, smtp, the bounces), such as lmtp or tlsmgr.
	Master []string
}

// Postfix is a running private Postfix.
type Postfix struct {
	Bin  string // the postfix command
	Dir  string // etc/, queue/, data/ and maillog
	Addr string // its smtpd
}

// postfixMaster is the base master.cf: no chroot (the last "n" of the
// fifth column), so the daemons see the private folders as they are.
var postfixMaster = []string{
	"pickup unix n - n 60 1 pickup",
	"cleanup unix n - n - 0 cleanup",
	"qmgr unix n - n 300 1 qmgr",
	"rewrite unix - - n - - trivial-rewrite",
	"bounce unix - - n - 0 bounce",
	"defer unix - - n - 0 bounce",
	"trace unix - - n - 0 bounce",
	"verify unix - - n - 1 verify",
	"flush unix n - n 1000? 0 flush",
	"proxymap unix - - n - - proxymap",
	"smtp unix - - n - - smtp",
	"relay unix - - n - - smtp",
	"showq unix n - n - - showq",
	"error unix - - n - - error",
	"retry unix - - n - - error",
	"discard unix - - n - - discard",
	"anvil unix - - n - 1 anvil",
	"scache unix - - n - 1 scache",
	"postlog unix-dgram n - n - 1 postlogd",
}

// StartPostfix runs a private Postfix on 127.0.0.1 that accepts mail from
// loopback and relays o.Routes, and stops it when the test ends. It skips
// the test where Postfix is not installed or cannot run (not root).
func StartPostfix(tb testing.TB, o PostfixOptions) *Postfix {
	tb.Helper()
	pf := &Postfix{Bin: o.Bin, Dir: o.Dir, Addr: o.Addr}
	if pf.Bin == "" {
		if pf.Bin = LookPath("postfix"); pf.Bin == "" {
			tb.Skip("postfix is not installed (Debian: apt-get install postfix)")
		}
	}
	if os.Geteuid() != 0 {
		tb.Skip("a private Postfix must be started as root (it drops to mail_owner)")
	}
	if pf.Dir == "" {
		pf.Dir = tb.TempDir()
	}
	if pf.Addr == "" {
		pf.Addr = FreeAddr(tb)
	}
	OpenDir(tb, pf.Dir)
	// Postfix makes what is inside the queue folder, not the folder.
	for _, d := range []string{"etc", "queue"} {
		if err := os.MkdirAll(filepath.Join(pf.Dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write(tb, filepath.Join(pf.Dir, "etc", "main.cf"), strings.Join(append(pf.mainCF(o), o.Main...), "\n")+"\n")
	master := append([]string{pf.Addr + " inet n - n - - smtpd"}, postfixMaster...)
	write(tb, filepath.Join(pf.Dir, "etc", "master.cf"), strings.Join(append(master, o.Master...), "\n")+"\n")
	if out, err := pf.run("start"); err != nil {
		tb.Fatalf("postfix start: %v\n%s\n%s", err, out, pf.Log())
	}
	tb.Cleanup(func() { pf.stop(tb) })
	return pf
}

// mainCF is the base main.cf: private folders, loopback only, the routes
// as the only relay domains, no DNS and no local aliases.
func (pf *Postfix) mainCF(o PostfixOptions) []string {
	var domains, transport []string
	for domain := range o.Routes {
		domains = append(domains, domain)
	}
	sort.Strings(domains)
	for _, domain := range domains {
		transport = append(transport, domain+"="+o.Routes[domain])
	}
	return []string{
		"compatibility_level = 3.6",
		// Apart from the config: Postfix wants everything under
		// config_directory owned by root, the queue by mail_owner.
		"queue_directory = " + filepath.Join(pf.Dir, "queue"),
		"data_directory = " + filepath.Join(pf.Dir, "data"),
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"myhostname = " + o.Hostname,
		"mydomain = " + o.Hostname,
		"mydestination =",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"relay_domains = " + strings.Join(domains, ", "),
		"transport_maps = inline:{ " + strings.Join(transport, ", ") + " }",
		"smtputf8_enable = no",
		"alias_maps =",
		"alias_database =",
		"biff = no",
		"smtp_host_lookup = native",
		"smtpd_peername_lookup = no",
		"maillog_file = " + filepath.Join(pf.Dir, "maillog"),
		"maillog_file_prefixes = " + pf.Dir,
	}
}

// OpenDir makes dir and opens it and its parents up to the temporary
// directory to everyone: Postfix's and Dovecot's daemons drop root and
// must reach their folders, and t.TempDir makes folders only root can
// enter.
func OpenDir(tb testing.TB, dir string) {
	tb.Helper()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.MkdirAll(d, 0o755)
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
}

// stop runs `postfix stop` and waits (bounded) until the master has
// exited: when its pid names no process. The log goes to the test's
// output when the test failed or TOLLBRIDGE_LOG is set.
func (pf *Postfix) stop(tb testing.TB) {
	if out, err := pf.run("stop"); err != nil {
		tb.Errorf("postfix stop: %v\n%s", err, out)
	}
	if tb.Failed() || os.Getenv("TOLLBRIDGE_LOG") != "" {
		tb.Logf("postfix log:\n%s", pf.Log())
	}
	b, err := os.ReadFile(filepath.Join(pf.Dir, "queue", "pid", "master.pid"))
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

// run runs `postfix -c DIR/etc cmd`, bounded in time.
func (pf *Postfix) run(cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, pf.Bin, "-c", filepath.Join(pf.Dir, "etc"), cmd).CombinedOutput()
}

// Log is Postfix's log so far, for failure messages.
func (pf *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(pf.Dir, "maillog"))
	return string(b)
}
