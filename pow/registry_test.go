package pow

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// otherWork is a second worktype, to show the registry is not tied to pow.
type otherWork struct{ name string }

func (o otherWork) Name() string { return o.name }
func (otherWork) NewChallenge(Difficulty) (json.RawMessage, int, error) {
	return json.RawMessage(`{}`), 1, nil
}
func (otherWork) Check(json.RawMessage, json.RawMessage) ([]string, error) { return nil, nil }
func (otherWork) Solve(context.Context, json.RawMessage, SolveOptions, func(json.RawMessage) error) error {
	return nil
}

func TestRegistryChoose(t *testing.T) {
	t.Parallel()
	r := NewRegistry(HashWork{}, otherWork{"memory"})
	tests := []struct {
		pref []string
		want string // "" for none
	}{
		{[]string{"pow"}, "pow"},
		{[]string{"memory", "pow"}, "memory"},
		{[]string{"micropayment", "pow"}, "pow"},
		{[]string{"micropayment"}, ""},
		{nil, ""},
		{[]string{"POW"}, ""},
	}
	for _, tt := range tests {
		w, ok := r.Choose(tt.pref)
		switch {
		case tt.want == "" && ok:
			t.Errorf("Choose(%q) = %q, want none", tt.pref, w.Name())
		case tt.want != "" && (!ok || w.Name() != tt.want):
			t.Errorf("Choose(%q) = %v, %v, want %q", tt.pref, w, ok, tt.want)
		}
	}
	if w, ok := r.Get("pow"); !ok || w.Name() != Name {
		t.Errorf("Get(pow) = %v, %v", w, ok)
	}
	if _, ok := r.Get("nope"); ok {
		t.Error("Get(nope) found something")
	}
	if got := r.Names(); !slices.Equal(got, []string{"pow", "memory"}) {
		t.Errorf("Names() = %q", got)
	}
}

func TestRegistryOffer(t *testing.T) {
	t.Parallel()
	r := NewRegistry(Equihash{}, HashWork{})
	tests := []struct {
		pref []string
		want string // "" for none
	}{
		{[]string{"pow"}, "pow"},
		{[]string{"pow", "equihash"}, "equihash"}, // the server's order wins
		{[]string{"equihash", "pow"}, "equihash"},
		{[]string{"micropayment", "pow"}, "pow"},
		{[]string{"micropayment"}, ""},
		{nil, ""},
		{[]string{"EQUIHASH"}, ""},
	}
	for _, tt := range tests {
		w, ok := r.Offer(tt.pref)
		switch {
		case tt.want == "" && ok:
			t.Errorf("Offer(%q) = %q, want none", tt.pref, w.Name())
		case tt.want != "" && (!ok || w.Name() != tt.want):
			t.Errorf("Offer(%q) = %v, %v, want %q", tt.pref, w, ok, tt.want)
		}
	}
}

func TestRegistryDuplicatePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("NewRegistry with a duplicate name did not panic")
		}
	}()
	NewRegistry(HashWork{}, otherWork{"pow"})
}
