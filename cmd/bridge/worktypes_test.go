package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tollbridge/config"
	"tollbridge/pow"
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

// TestPowBenchWorktypes: `bridge pow bench --json` keeps its version 1
// members and adds one "worktypes" entry per worktype, each with the
// three figures of docs/rules.md §5, at the defaults of config and pow
// (which must agree).
func TestPowBenchWorktypes(t *testing.T) {
	t.Parallel()
	d := config.Default().Ticket
	if e := pow.DefaultEquihash; e.N != d.EquihashN || e.K != d.EquihashK || e.Count != d.EquihashCount {
		t.Errorf("pow.DefaultEquihash %+v differs from config's defaults %d, %d, %d", e, d.EquihashN, d.EquihashK, d.EquihashCount)
	}
	code, out, errs := bridgeExec(t, "", "pow", "bench", "--seconds", "0.05", "--json")
	if code != 0 {
		t.Fatalf("pow bench: %d %s", code, errs)
	}
	var r struct {
		Cores     *int     `json:"cores"`
		PerSecond *float64 `json:"hashes_per_second"`
		PerCore   *float64 `json:"hashes_per_second_per_core"`
		Worktypes []struct {
			Name   string   `json:"name"`
			Ticket *float64 `json:"seconds_per_ticket_one_core"`
			Verify *float64 `json:"verify_seconds_per_proof"`
			Memory *int64   `json:"peak_memory_bytes"`
		} `json:"worktypes"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Cores == nil || r.PerSecond == nil || r.PerCore == nil {
		t.Fatalf("pow bench --json = %s (%v)", out, err)
	}
	var names []string
	for _, w := range r.Worktypes {
		names = append(names, w.Name)
		if w.Ticket == nil || *w.Ticket <= 0 || w.Verify == nil || *w.Verify <= 0 || w.Memory == nil || *w.Memory <= 0 {
			t.Errorf("worktype %s lacks a figure: %s", w.Name, out)
		}
	}
	if !slices.Equal(names, []string{"pow", "equihash"}) {
		t.Errorf("worktypes %q, want pow and equihash", names)
	}
}
