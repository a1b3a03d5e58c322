package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAllowListAndDomainAllow is issue 14 item 5: `user allow --list`
// shows the allow list and the correspondents with when, `--remove`
// undoes trust (a removed correspondent's signed request costs work
// again), and a config [[allow]] for "@domain" gives every user of the
// local domain free tickets for that domain's signed requests.
func TestAllowListAndDomainAllow(t *testing.T) {
	t.Parallel()
	s := startSites(t, t.TempDir(), twoSites(), "", 6, 2)
	const alice, bob = "alice@example.org", "bob@example.net"
	orgCfg := s.layout.configPath(s.layout.Sites[0])
	if err := s.submit(0, alice, "pw-"+alice, []string{bob}, plainMessage(alice, bob, "hello.bob")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's mail at bob's", 30*time.Second, func() bool { return s.unfiled(1, bob) == 1 })
	if code, _, errs := bridgeExec(t, "", "user", "allow", "--config", orgCfg, alice, "carol@example.net"); code != 0 {
		t.Fatal(errs)
	}
	today := time.Now().UTC().Format("2006-01-02")
	_, out, _ := bridgeExec(t, "", "user", "allow", "--config", orgCfg, "--list", alice)
	for _, want := range [][]string{{"allow", "carol@example.net", today}, {"correspondent", "bob@example.net", today}} {
		if !hasRow(out, want...) {
			t.Errorf("allow --list lacks %q:\n%s", want, out)
		}
	}
	if code, out, errs := bridgeExec(t, "", "user", "allow", "--config", orgCfg, "--remove", alice, bob); code != 0 || !strings.Contains(out, "removed "+bob) {
		t.Fatalf("allow --remove: %d %s %s", code, out, errs)
	}
	if code, _, errs := bridgeExec(t, "", "user", "allow", "--config", orgCfg, "--remove", alice, bob); code != 1 || !strings.Contains(errs, "neither") {
		t.Fatalf("second allow --remove: %d %s", code, errs)
	}
	if _, out, _ := bridgeExec(t, "", "user", "allow", "--config", orgCfg, "--list", alice); strings.Contains(out, bob) {
		t.Fatalf("bob still listed after --remove:\n%s", out)
	}

	// Bob writes: no longer trusted, his signed request costs work.
	worked := func() float64 { return metric(t, s.bridges[0], "tollbridge_tickets_validated_total") }
	issued := func() float64 { return metric(t, s.bridges[0], "tollbridge_tickets_issued_total") }
	w0, i0 := worked(), issued()
	if err := s.submit(1, bob, "pw-"+bob, []string{alice}, plainMessage(bob, alice, "one")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's mail at alice's", 30*time.Second, func() bool { return s.unfiled(0, alice) == 1 })
	if worked() != w0+1 || issued() != i0+1 {
		t.Fatalf("after --remove bob's ticket: %v made valid by work (want %v)", worked(), w0+1)
	}

	// The admin trusts all of example.net for example.org's users.
	s.stop()
	f, err := os.OpenFile(orgCfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n[[allow]]\ndomain = \"example.org\"\nsenders = [\"@example.net\"]\n")
	f.Close()
	if _, out, _ := bridgeExec(t, "", "user", "allow", "--config", orgCfg, "--list", alice); !hasRow(out, "config", "@example.net") {
		t.Errorf("allow --list does not show the config entry:\n%s", out)
	}
	s = restartSites(t, s.layout)
	w0, i0 = worked(), issued()
	if err := s.submit(1, bob, "pw-"+bob, []string{alice}, plainMessage(bob, alice, "two")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's second mail at alice's", 30*time.Second, func() bool { return s.unfiled(0, alice) == 2 })
	if worked() != w0 || issued() != i0+1 {
		t.Errorf("with [[allow]] @example.net bob's signed request still needed work (%v, was %v)", worked(), w0)
	}
}

// hasRow reports whether a line of a table starts with the given fields.
func hasRow(table string, fields ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}
