package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tollbridge/config"
	"tollbridge/internal/teststore"
)

// TestQueueRetry: a message deferred because the peer was down is tried
// again at once by bridge queue retry, not after its one-minute backoff.
func TestQueueRetry(t *testing.T) {
	t.Parallel()
	l := processLayout(t, 8, 2)
	orgPath := l.configPath(l.Sites[0])
	org := serveProcess(t, orgPath)
	msg := plainMessage("alice@example.org", "bob@example.net", "retry-now")
	if err := submitRaw(org.cfg.SMTP.Submission, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	var queue string
	waitFor(t, "the delivery deferred", 30*time.Second, func() bool {
		_, queue, _ = runBinary(t, "queue", "--config", orgPath)
		return strings.Contains(queue, "bob@example.net") && strings.Contains(queue, " in ")
	})
	id := strings.Fields(strings.Split(queue, "\n")[1])[0]
	nett := serveProcess(t, l.configPath(l.Sites[1]))

	if code, _, errs := runBinary(t, "queue", "retry", "--config", orgPath); code != 2 || !strings.Contains(errs, "usage: bridge queue retry") {
		t.Errorf("retry without ID: %d %s", code, errs)
	}
	if code, _, errs := runBinary(t, "queue", "retry", "--config", orgPath, "9999"); code != 1 || !strings.Contains(errs, "message 9999: not in the outbox") {
		t.Errorf("retry of an unknown ID: %d %s", code, errs)
	}
	code, out, errs := runBinary(t, "queue", "retry", "--config", orgPath, id)
	if code != 0 || !strings.Contains(out, "1 recipient(s) due now") {
		t.Fatalf("queue retry %s: %d %s %s", id, code, out, errs)
	}
	// Well inside the minute the backoff would have waited.
	waitFor(t, "delivery after queue retry", 20*time.Second, func() bool {
		ids := imapMessageIDs(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net")
		return len(ids) == 1 && ids[0] == "retry-now@example.org"
	})
	if code, out, _ := runBinary(t, "queue", "retry", "--config", orgPath, "--all"); code != 0 || !strings.Contains(out, "0 recipient(s)") {
		t.Errorf("retry --all on an empty queue: %d %s", code, out)
	}
}

// TestMissingDataDir: a data_dir that does not exist is an error naming
// the key, for every command that uses it; nothing creates it but init.
func TestMissingDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, errs := runBinary(t, "init", "--dir", dir, "--domain", "example.org", "--hostname", "localhost"); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	cfg := filepath.Join(dir, "config.toml")
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), `data_dir = "data"`, `data_dir = "dta"`, 1)
	for _, def := range []string{defaultSubmission, defaultIMAP, defaultTicket} {
		text = strings.Replace(text, def, freeAddr(t), 1)
	}
	os.WriteFile(cfg, []byte(text), 0o600)
	for _, args := range [][]string{{"user", "list"}, {"queue"}, {"serve"}, {"check"}} {
		code, out, errs := runBinary(t, append(args, "--config", cfg)...)
		if code != 1 || !strings.Contains(out+errs, cfg+": server.data_dir: ") || !strings.Contains(out+errs, "does not exist") {
			t.Errorf("bridge %v with a missing data dir: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dta")); err == nil {
		t.Error("a command created the mistyped data dir")
	}
}

// TestServeWarnsWithoutUsers: a bridge nobody can log in to says so.
func TestServeWarnsWithoutUsers(t *testing.T) {
	t.Parallel()
	l := &qsLayout{Dir: t.TempDir(), Sites: twoSites()[:1]}
	if err := writeTestConfigs(t, l, 8, 1); err != nil {
		t.Fatal(err)
	}
	p := serveProcess(t, l.configPath(l.Sites[0]))
	waitFor(t, "the warning", 10*time.Second, func() bool {
		return strings.Contains(p.log(), "level=WARN msg=\"no users yet")
	})
	p.stop()
}

// TestInitRefusesToOverwrite: init over an existing config refuses, says
// so and keeps the file; --force replaces it; the listener flags set the
// addresses so two bridges share a host without hand edits.
func TestInitRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	code, out, errs := runBinary(t, "init", "--dir", dir, "--domain", "example.org")
	if code != 0 || !strings.Contains(out, "wrote "+cfg) || !strings.Contains(out, "wrote "+filepath.Join(dir, "data/tls/cert.pem")) {
		t.Fatalf("init: %d %s %s", code, out, errs)
	}
	os.WriteFile(cfg, append(mustRead(t, cfg), "# mine\n"...), 0o600)
	code, out, errs = runBinary(t, "init", "--dir", dir, "--domain", "example.net")
	if code != 1 || strings.Contains(out, "wrote") || !strings.Contains(errs, cfg+" exists") || !strings.Contains(errs, "--force") {
		t.Errorf("init over an existing config: %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(string(mustRead(t, cfg)), "# mine") {
		t.Fatal("init changed the existing config")
	}
	code, out, errs = runBinary(t, "init", "--dir", dir, "--domain", "example.net", "--force",
		"--submission", "127.0.0.1:2587", "--imap", "127.0.0.1:2143", "--ticket", "127.0.0.1:9443", "--mx", "127.0.0.1:2525")
	if code != 0 || !strings.Contains(out, "wrote "+cfg) || !strings.Contains(out, "kept "+filepath.Join(dir, "data/tls/cert.pem")) {
		t.Fatalf("init --force: %d %s %s", code, out, errs)
	}
	text := string(mustRead(t, cfg))
	for _, want := range []string{`"example.net"`, `submission = "127.0.0.1:2587"`, `listen = "127.0.0.1:2143"`, `listen = "127.0.0.1:9443"`, `mx = "127.0.0.1:2525"`} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %s:\n%s", want, text)
		}
	}
	// A bad address is refused before anything is written.
	other := t.TempDir()
	if code, _, errs := runBinary(t, "init", "--dir", other, "--domain", "example.org", "--imap", "1143"); code != 1 || !strings.Contains(errs, "imap.listen") {
		t.Errorf("init --imap 1143: %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(other, "config.toml")); err == nil {
		t.Error("init wrote a config with a bad address")
	}
	// --data-dir puts the data (and the self-signed certificate) elsewhere,
	// as a systemd unit's writable state folder wants.
	etc, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
	if code, _, errs := runBinary(t, "init", "--dir", etc, "--data-dir", state, "--domain", "example.org"); code != 0 {
		t.Fatalf("init --data-dir: %s", errs)
	}
	c, err := config.Load(filepath.Join(etc, "config.toml"))
	if err != nil || c.Server.DataDir != state || c.TLS.Cert != filepath.Join(state, "tls/cert.pem") {
		t.Fatalf("init --data-dir: %v %+v %+v", err, c.Server, c.TLS)
	}
	if _, err := os.Stat(c.TLS.Cert); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQuickstartRecordsPortsUsed: when a preferred port is taken,
// quickstart picks another and credentials.json lists the one in use.
func TestQuickstartRecordsPortsUsed(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	sites := twoSites()
	sites[0].IMAP = busy
	dir := t.TempDir()
	l, err := setupQuickstart(t.Context(), dir, sites, 8, 1, teststore.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(l.configPath(l.Sites[0]))
	if err != nil {
		t.Fatal(err)
	}
	var saved []struct {
		User string `json:"user"`
		IMAP int    `json:"imap_port"`
		SMTP int    `json:"smtp_port"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "credentials.json")), &saved); err != nil {
		t.Fatal(err)
	}
	if saved[0].IMAP == busy || saved[0].IMAP != addrPort(cfg.IMAP.Listen) || saved[0].SMTP != addrPort(cfg.SMTP.Submission) {
		t.Errorf("credentials.json says IMAP %d, SMTP %d; the config listens on %s and %s (port %d was taken)",
			saved[0].IMAP, saved[0].SMTP, cfg.IMAP.Listen, cfg.SMTP.Submission, busy)
	}
}

// TestConfigTypeErrors: a value of the wrong type is reported in the
// admin's terms, with file, line and key, every one of them at once.
func TestConfigTypeErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("[server]\ndomains = [\"example.org\"]\n[ticket]\npow_bits = \"20\"\n[delivery]\nworkers = \"8\"\n"), 0o600)
	code, out, errs := runBinary(t, "check", "--config", cfg)
	if code != 1 || !strings.Contains(errs, "config.toml:4: ticket.pow_bits must be an integer\n") ||
		!strings.Contains(errs, "config.toml:6: delivery.workers must be an integer\n") ||
		strings.Contains(errs, "incompatible types") || strings.Contains(errs, "goroutine") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}
