package pow

import (
	"fmt"
	"slices"
)

// Registry is the set of worktypes a server offers or a client can do. It
// is read-only after NewRegistry and safe for concurrent use.
type Registry struct {
	byName map[string]Worktype
	names  []string
}

// NewRegistry makes a registry of the given worktypes, in the order given.
// Two worktypes with the same name are a programming error and panic.
func NewRegistry(worktypes ...Worktype) *Registry {
	r := &Registry{byName: make(map[string]Worktype, len(worktypes))}
	for _, w := range worktypes {
		name := w.Name()
		if _, dup := r.byName[name]; dup {
			panic(fmt.Sprintf("pow: worktype %q registered twice", name))
		}
		r.byName[name] = w
		r.names = append(r.names, name)
	}
	return r
}

// Get returns the worktype called name.
func (r *Registry) Get(name string) (Worktype, bool) {
	w, ok := r.byName[name]
	return w, ok
}

// Choose returns the first worktype in the client's preference list that
// the registry holds; false means none (ticketserver answers 400).
func (r *Registry) Choose(preference []string) (Worktype, bool) {
	for _, name := range preference {
		if w, ok := r.byName[name]; ok {
			return w, true
		}
	}
	return nil, false
}

// Offer is the server's choice for a sender whose preference list is
// preference: the first worktype in the registry's order that the sender
// lists, so that a server registering the memory-hard worktype first
// offers it to every sender that can do it (docs/protocol.md §3.8); false
// means none (ticketserver answers 400).
func (r *Registry) Offer(preference []string) (Worktype, bool) {
	for _, name := range r.names {
		if slices.Contains(preference, name) {
			return r.byName[name], true
		}
	}
	return nil, false
}

// Names lists the registered worktypes in registration order, which is a
// client's natural preference list.
func (r *Registry) Names() []string {
	return append([]string(nil), r.names...)
}
