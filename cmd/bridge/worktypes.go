package main

import (
	"fmt"

	"tollbridge/config"
	"tollbridge/pow"
)

// worktypes is the registry of ticket.worktypes, in the config's order:
// the preference list this bridge sends as a sender and the order it
// offers worktypes in as a server (docs/protocol.md §3.8). Config
// validation has made sure every name is known and "pow" is there.
func worktypes(t config.Ticket) *pow.Registry {
	var works []pow.Worktype
	for _, name := range t.Worktypes {
		switch name {
		case pow.Name:
			works = append(works, pow.HashWork{})
		case pow.EquihashName:
			works = append(works, pow.Equihash{N: t.EquihashN, K: t.EquihashK, Count: t.EquihashCount})
		}
	}
	return pow.NewRegistry(works...)
}

// workedMetric counts tickets made valid by work per worktype offered.
func (b *bridge) workedMetric() func(worktype string) {
	byName := map[string]func(){}
	for _, name := range b.works.Names() {
		byName[name] = b.metrics.inc("tollbridge_tickets_worked_total", fmt.Sprintf("worktype=%q", name))
	}
	return func(worktype string) {
		if inc := byName[worktype]; inc != nil {
			inc()
		}
	}
}
