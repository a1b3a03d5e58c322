package config

import (
	"slices"
	"strings"
	"testing"
)

// TestWorktypes: ticket.worktypes defaults to pow alone; equihash is
// turned on by listing it, with its parameters checked against
// docs/protocol.md §3.8.1's bounds.
func TestWorktypes(t *testing.T) {
	t.Parallel()
	head := "[server]\ndomains = [\"example.org\"]\n[ticket]\n"
	cfg, err := Parse([]byte(head), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if tk := cfg.Ticket; !slices.Equal(tk.Worktypes, []string{"pow"}) || tk.EquihashN != 114 || tk.EquihashK != 5 || tk.EquihashCount != 3 {
		t.Errorf("defaults: %q n %d k %d count %d", tk.Worktypes, tk.EquihashN, tk.EquihashK, tk.EquihashCount)
	}
	cfg, err = Parse([]byte(head+"worktypes = [\"equihash\", \"pow\"]\nequihash_n = 96\nequihash_k = 5\nequihash_count = 2\n"), "config.toml")
	if err != nil || !slices.Equal(cfg.Ticket.Worktypes, []string{"equihash", "pow"}) || cfg.Ticket.EquihashN != 96 {
		t.Fatalf("equihash on: %+v, %v", cfg, err)
	}
	for src, want := range map[string]string{
		"worktypes = [\"equihash\"]":        `ticket.worktypes: must include "pow"`,
		"worktypes = [\"pow\", \"cuckoo\"]": `ticket.worktypes: "cuckoo" is unknown`,
		"worktypes = [\"pow\", \"pow\"]":    `ticket.worktypes: "pow" is unknown or named twice`,
		"equihash_n = 100":                  `ticket.equihash_n: must be at most 128 and a multiple of equihash_k+1 = 6`,
		"equihash_n = 132":                  `ticket.equihash_n: must be at most 128`,
		"equihash_n = 42":                   `ticket.equihash_n: must be at most 128`,
		"equihash_k = 8":                    `ticket.equihash_k: must be 2..7, got 8`,
		"equihash_count = 0":                `ticket.equihash_count: must be 1..16, got 0`,
		"equihash_n = 132\nequihash_k = 10": `ticket.equihash_k: must be 2..7, got 10`,
	} {
		_, err := Parse([]byte(head+src+"\n"), "config.toml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", src, err, want)
		}
	}
}
