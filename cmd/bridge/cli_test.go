package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tollbridge/internal/teststore"
)

// cli runs one command line in-process.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, keys: teststore.Cheap}, args)
	return code, out.String(), errb.String()
}

func TestCLIWorkflow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, errs := cli(t, "", "init", "--dir", dir, "--domain", "example.org"); code != 0 {
		t.Fatalf("init: %d %s", code, errs)
	}
	cfg := filepath.Join(dir, "config.toml")
	for _, f := range []string{cfg, filepath.Join(dir, "data/tls/cert.pem"), filepath.Join(dir, "data/tls/key.pem")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("init did not write %s", f)
		}
	}
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse\nignored\n"), 0o600)
	if code, out, errs := cli(t, "", "user", "add", "--config", cfg, "--password-file", pw, "Alice@Example.org"); code != 0 || !strings.Contains(out, "alice@example.org") {
		t.Fatalf("user add: %d %s %s", code, out, errs)
	}
	// Flags after the address work too; stdin for "-".
	if code, _, errs := cli(t, "s3cret\n", "user", "add", "bob@example.org", "--config", cfg, "--password-file", "-"); code != 0 {
		t.Fatalf("user add from stdin: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "user", "add", "--config", cfg, "--password-file", pw, "carol@elsewhere.example"); code != 1 || !strings.Contains(errs, "not in server.domains") {
		t.Fatalf("foreign domain: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "user", "add", "--config", cfg, "--password-file", pw, "alice@example.org"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("duplicate: %d %s", code, errs)
	}
	code, out, _ := cli(t, "", "user", "export-key", "--config", cfg, "alice@example.org")
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		t.Fatalf("export-key: %d %s", code, out)
	}
	if code, out, _ := cli(t, "", "user", "list", "--config", cfg); code != 0 || !strings.Contains(out, "bob@example.org") {
		t.Fatalf("user list: %s", out)
	}
	if code, out, _ := cli(t, "", "queue", "--config", cfg); code != 0 || !strings.Contains(out, "empty") {
		t.Fatalf("queue: %s", out)
	}
	if code, out, _ := cli(t, "", "keys", "list", "--config", cfg); code != 0 || !strings.Contains(out, "ADDRESS") {
		t.Fatalf("keys list: %s", out)
	}
	if code, _, errs := cli(t, "", "keys", "accept", "--config", cfg, "nobody@example.net"); code != 1 || !strings.Contains(errs, "no changed key") {
		t.Fatalf("keys accept: %d %s", code, errs)
	}
	mc := filepath.Join(dir, "alice.mobileconfig")
	if code, _, errs := cli(t, "", "user", "mobileconfig", "--config", cfg, "--out", mc, "alice@example.org"); code != 0 {
		t.Fatalf("mobileconfig: %s", errs)
	}
	if b, _ := os.ReadFile(mc); !bytes.Contains(b, []byte("com.apple.security.root")) {
		t.Fatal("profile lacks the self-signed certificate")
	}
}

func TestCLIErrors(t *testing.T) {
	t.Parallel()
	if code, _, errs := cli(t, "", "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Fatalf("unknown: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "init", "--dir", t.TempDir()); code != 2 || !strings.Contains(errs, "usage: bridge init") {
		t.Fatalf("missing flag: %d %s", code, errs)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "config.toml")
	os.WriteFile(bad, []byte("[server]\ndomains = [\"example.org\"]\n[ticket]\npow_bits = 99\n"), 0o600)
	code, _, errs := cli(t, "", "serve", "--config", bad)
	if code != 1 || !strings.Contains(errs, "config.toml: ticket.pow_bits: must be 0..40, got 99") || strings.Contains(errs, "goroutine") {
		t.Fatalf("bad config: %d %s", code, errs)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cfg := checkConfig(t, "")
	if code, out, errs := cli(t, "", "check", "--config", cfg); code != 0 || out != cfg+": ok\n" {
		t.Fatalf("check: %d %s %s", code, out, errs)
	}
	// A port another program holds is a problem; a route nobody answers is
	// a warning; every line names the config file as given.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	b, _ := os.ReadFile(cfg)
	text := string(b) + "\n[[route]]\ndomain = \"example.net\"\nurl = \"https://127.0.0.1:1\"\n"
	text = strings.Replace(text, `submission = "`, `submission = "`+ln.Addr().String()+`" # `, 1)
	os.WriteFile(cfg, []byte(text), 0o600)
	code, out, _ := cli(t, "", "check", "--config", cfg)
	if code != 1 || !strings.Contains(out, cfg+": smtp.submission: cannot listen") ||
		!strings.Contains(out, cfg+": warning: route[0]: https://127.0.0.1:1 unreachable") {
		t.Fatalf("check: %d\n%s", code, out)
	}
}

// checkConfig runs bridge init in a new folder with free ports and the
// [delivery] lines given, and returns the config's path.
func checkConfig(t *testing.T, delivery string) string {
	t.Helper()
	dir := t.TempDir()
	if code, _, errs := cli(t, "", "init", "--dir", dir, "--domain", "example.org", "--hostname", "localhost",
		"--submission", freeAddr(t), "--imap", freeAddr(t), "--ticket", freeAddr(t)); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	cfg := filepath.Join(dir, "config.toml")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), `smarthost = ""`, delivery, 1)), 0o600)
	return cfg
}

// freeAddr is a free loopback address for a config file, picked below the
// ephemeral port range as quickstart picks (pickAddr says why).
func freeAddr(t *testing.T) string {
	t.Helper()
	a := testPorts.pick(0)
	if addrPort(a) == 0 {
		t.Fatalf("no free port: %s", a)
	}
	return a
}

// Ports picked for config files are below the kernel's ephemeral range,
// so no outgoing connection or port-0 listener (of this test binary or
// any other process) takes one before the bridge binds it: bridges in
// TestFanOutAllRoutes failed under load with "address already in use".
func TestPickedPortsAreNotEphemeral(t *testing.T) {
	t.Parallel()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			low, _ = strconv.Atoi(f[0])
		}
	}
	if low < pickHigh {
		t.Skipf("this machine's ephemeral ports start at %d, inside the picked range", low)
	}
	for range 20 {
		if p := addrPort((&portPicker{}).pick(0)); p == 0 || p >= low {
			t.Fatalf("picked port %d, want one below the ephemeral range from %d", p, low)
		}
	}
}
