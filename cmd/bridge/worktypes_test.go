package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tollbridge/config"
)

// TestWorktypesFromConfig: ticket.worktypes is the registry's order, so
// the preference list a sender sends names equihash first when the admin
// put it first.
func TestWorktypesFromConfig(t *testing.T) {
	t.Parallel()
	for _, names := range [][]string{{"pow"}, {"equihash", "pow"}, {"pow", "equihash"}} {
		r := worktypes(config.Ticket{Worktypes: names, EquihashN: 60, EquihashK: 5, EquihashCount: 2})
		if got := r.Names(); !slices.Equal(got, names) {
			t.Errorf("worktypes(%q).Names() = %q", names, got)
		}
	}
}

// TestEquihashBetweenBridges (issue 16 item 3): a receiving bridge that
// offers equihash gets it solved by a sending bridge that lists it; the
// mail arrives and the receiver counts one ticket made valid by equihash
// work and none by pow.
func TestEquihashBetweenBridges(t *testing.T) {
	t.Parallel()
	s := startSites(t, t.TempDir(), twoSites(), "", 6, 2)
	s.stop()
	for _, site := range s.layout.Sites {
		path := s.layout.configPath(site)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		on := "pow_count = 2\nworktypes = [\"equihash\", \"pow\"]\nequihash_n = 60\nequihash_k = 5\nequihash_count = 2\n"
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), "pow_count = 2\n", on, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = restartSites(t, s.layout)
	const alice, bob = "alice@example.org", "bob@example.net"
	if err := s.submit(0, alice, "pw-"+alice, []string{bob}, plainMessage(alice, bob, "memory.hard")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's mail at bob's", 30*time.Second, func() bool { return s.unfiled(1, bob) == 1 })
	byEquihash := metric(t, s.bridges[1], `tollbridge_tickets_worked_total{worktype="equihash"}`)
	byPow := metric(t, s.bridges[1], `tollbridge_tickets_worked_total{worktype="pow"}`)
	if byEquihash != 1 || byPow != 0 {
		t.Errorf("tickets made valid: %v by equihash, %v by pow; want 1 and 0", byEquihash, byPow)
	}
}
