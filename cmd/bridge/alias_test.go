package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"tollbridge/internal/teststore"
)

// addressSite runs one bridge for example.org and example.com with an MX,
// postmaster pm@, a catch-all for example.org (carol), the config alias
// team@ (bob and carol) and users alice, bob, carol and pm.
func addressSite(t *testing.T) (*sites, string) {
	t.Helper()
	l := &qsLayout{Dir: t.TempDir(), Sites: []*qsSite{{Name: "example.org", Domain: "example.org", User: "alice@example.org"}}}
	if err := writeTestConfigs(t, l, 8, 2); err != nil {
		t.Fatal(err)
	}
	path := l.configPath(l.Sites[0])
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		`mx = ""`, `mx = "127.0.0.1:0"`,
		`domains  = ["example.org"]`, `domains  = ["example.org", "example.com"]
postmaster = ["pm@example.org"]
catch_all = { "example.org" = "carol@example.org" }`,
	).Replace(string(b)) + "\n[[alias]]\naddress = \"Team@example.org\"\ntargets = [\"bob@example.org\", \"carol@example.org\"]\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	l.Sites[0].Password = "pw-alice@example.org"
	if err := l.createUsers(context.Background(), teststore.Cheap); err != nil {
		t.Fatal(err)
	}
	s := restartSites(t, l)
	for _, u := range []string{"bob@example.org", "carol@example.org", "pm@example.org"} {
		s.addUser(0, u)
	}
	return s, path
}

// mxSend sends msg from a legacy sender to rcpts through the MX at addr.
func mxSend(t *testing.T, addr string, rcpts []string, id string) {
	t.Helper()
	msg := "From: someone@legacy.example\r\nTo: " + strings.Join(rcpts, ", ") + "\r\nMessage-ID: <" + id + ">\r\nSubject: " + id + "\r\n\r\nhello\r\n"
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Plain SMTP, as a legacy MTA that does not know the self-signed
	// certificate would fall back to.
	if err := c.SendMail("someone@legacy.example", rcpts, strings.NewReader(msg)); err != nil {
		t.Fatalf("MX to %v: %v", rcpts, err)
	}
}

// TestAddresses: postmaster@, abuse@, a two-target alias, a catch-all, a
// subaddress and a stored alias over the MX and from a local user's
// submission, each message read back over IMAP by each user it reaches
// (so sealed to that user's own key); unknown users and receipts@ stay
// 550 5.1.1.
func TestAddresses(t *testing.T) {
	t.Parallel()
	s, path := addressSite(t)
	if code, out, errs := cli(t, "", "alias", "add", "--config", path, "Help@example.org", "bob@example.org"); code != 0 || !strings.Contains(out, "help@example.org") {
		t.Fatalf("alias add: %d %s %s", code, out, errs)
	}
	mx := s.bridges[0].addr("mx")
	mxSend(t, mx, []string{"postmaster@example.org"}, "pm@test")
	mxSend(t, mx, []string{"abuse@example.com"}, "abuse@test")
	mxSend(t, mx, []string{"team@example.org"}, "team@test")
	mxSend(t, mx, []string{"whoever@example.org"}, "catchall@test")
	mxSend(t, mx, []string{"bob+lists@example.org"}, "tag@test")
	mxSend(t, mx, []string{"help@example.org"}, "help@test")
	msg := "From: alice@example.org\r\nTo: team@example.org\r\nMessage-ID: <local@test>\r\nSubject: local\r\n\r\nhi team\r\n"
	if err := s.submit(0, "alice@example.org", "pw-alice@example.org", []string{"team@example.org", "carol+x@example.org"}, msg); err != nil {
		t.Fatalf("submission to a local alias: %v", err)
	}
	c, err := smtp.Dial(mx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Mail("someone@legacy.example", nil)
	for _, rcpt := range []string{"nobody@example.com", "receipts@example.org", "nobody+x@example.com"} {
		if err := c.Rcpt(rcpt, nil); !isCode(err, 550, "5.1.1") {
			t.Errorf("RCPT %s: %v, want 550 5.1.1", rcpt, err)
		}
	}
	want := map[string][]string{
		"pm@example.org":    {"<pm@test>", "<abuse@test>"},
		"bob@example.org":   {"<team@test>", "<tag@test>", "<help@test>", "<local@test>"},
		"carol@example.org": {"<team@test>", "<catchall@test>", "<local@test>"},
	}
	imapAddr := s.bridges[0].addr("imap")
	for user, ids := range want {
		var got map[string][]byte
		waitForEvery(t, "mail for "+user, 60*time.Second, 200*time.Millisecond, func() bool {
			got = inbox(t, imapAddr, user, "pw-"+user)
			return len(got) >= len(ids)
		})
		var gotIDs []string
		for id := range got {
			gotIDs = append(gotIDs, "<"+id+">")
		}
		slices.Sort(gotIDs)
		slices.Sort(ids)
		if !slices.Equal(gotIDs, ids) {
			t.Errorf("%s got %v, want %v", user, gotIDs, ids)
		}
	}
}

func isCode(err error, code int, enh string) bool {
	se, ok := err.(*smtp.SMTPError)
	return ok && se.Code == code && se.EnhancedCode == smtp.EnhancedCode{int(enh[0] - '0'), int(enh[2] - '0'), int(enh[4] - '0')}
}

// TestAliasCLI drives `bridge alias add|list|remove` through the built
// binary, as scripts do.
func TestAliasCLI(t *testing.T) {
	t.Parallel()
	bin, err := bridgeBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("bridge %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return string(out)
	}
	run(0, "init", "--dir", dir, "--domain", "example.org")
	cfg := filepath.Join(dir, "config.toml")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		run(0, "user", "add", "--config", cfg, "--password-file", pw, u)
	}
	for _, words := range [][]string{{"alias", "add"}, {"alias", "list"}, {"alias", "remove"}} {
		if out := run(0, append(words, "--help")...); !strings.Contains(out, "usage: bridge "+strings.Join(words, " ")) {
			t.Errorf("%v --help: %q", words, out)
		}
	}
	run(0, "alias", "add", "--config", cfg, "Team@example.org", "alice@example.org", "bob@example.org")
	run(0, "alias", "add", "--config", cfg, "all@example.org", "team@example.org")
	out := run(0, "alias", "list", "--config", cfg)
	if !strings.Contains(out, "team@example.org") || !strings.Contains(out, "alice@example.org,bob@example.org") || !strings.Contains(out, "all@example.org") {
		t.Fatalf("alias list:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"team@example.org", "alice@example.org"}, "already exists"},
		{[]string{"alice@example.org", "bob@example.org"}, "a user has that address"},
		{[]string{"x@elsewhere.example", "bob@example.org"}, "not in server.domains"},
		{[]string{"receipts@example.org", "bob@example.org"}, "reserved"},
		{[]string{"y@example.org", "nobody@example.org"}, "nobody@example.org"},
		{[]string{"team2@example.org", "team2@example.org"}, "alias loop"},
	} {
		if out := run(1, append([]string{"alias", "add", "--config", cfg}, c.args...)...); !strings.Contains(out, c.want) {
			t.Errorf("alias add %v: %q, want %q", c.args, out, c.want)
		}
	}
	if out := run(1, "user", "add", "--config", cfg, "--password-file", pw, "team@example.org"); !strings.Contains(out, "an alias has that address") {
		t.Errorf("user add over an alias: %q", out)
	}
	if out := run(2, "alias", "add", "--config", cfg, "lonely@example.org"); !strings.Contains(out, "TARGET") {
		t.Errorf("alias add without target: %q", out)
	}
	// A config alias naming no user is listed, with a warning.
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n[[alias]]\naddress = \"ghosts@example.org\"\ntargets = [\"ghost@example.org\"]\n")
	f.Close()
	if out := run(0, "alias", "list", "--config", cfg); !strings.Contains(out, "warning: alias ghosts@example.org: target ghost@example.org") {
		t.Errorf("alias list without the warning:\n%s", out)
	}
	if out := run(1, "alias", "remove", "--config", cfg, "ghosts@example.org"); !strings.Contains(out, "remove it from the file") {
		t.Errorf("remove of a config alias: %q", out)
	}
	run(0, "alias", "remove", "--config", cfg, "all@example.org")
	if out := run(1, "alias", "remove", "--config", cfg, "all@example.org"); !strings.Contains(out, "not found") {
		t.Errorf("second remove: %q", out)
	}
	if out := run(0, "alias", "list", "--config", cfg); strings.Contains(out, "all@example.org") {
		t.Errorf("removed alias listed:\n%s", out)
	}
}
