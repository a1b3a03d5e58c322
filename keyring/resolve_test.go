package keyring

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// mapDir is a Directory over maps: users and stored aliases.
type mapDir struct {
	users   []string
	aliases map[string][]string
}

func (d mapDir) IsUser(_ context.Context, a string) (bool, error) {
	return slices.Contains(d.users, a), nil
}
func (d mapDir) AliasTargets(_ context.Context, a string) ([]string, error) {
	return d.aliases[a], nil
}
func (d mapDir) AddressByHash(_ context.Context, h string) (string, error) {
	for _, a := range d.users {
		if HashNormalized(a) == h {
			return a, nil
		}
	}
	return "", nil
}
func (d mapDir) AddressByWKDName(context.Context, string) (string, error) { return "", nil }

func TestStripSubaddress(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, delims, want string }{
		{"bob+tag@d.example", "+", "bob@d.example"},
		{"bob+a+b@d.example", "+", "bob@d.example"},
		{"bob-tag@d.example", "+-", "bob@d.example"},
		{"bob+tag@d.example", "", "bob+tag@d.example"},
		{"+tag@d.example", "+", "+tag@d.example"},
		{"bob@d.example", "+", "bob@d.example"},
	} {
		if got, _ := StripSubaddress(c.in, c.delims); got != c.want {
			t.Errorf("StripSubaddress(%q, %q) = %q, want %q", c.in, c.delims, got, c.want)
		}
	}
}

func TestResolver(t *testing.T) {
	t.Parallel()
	dir := mapDir{
		users: []string{"alice@a.example", "bob@a.example", "pm@a.example"},
		aliases: map[string][]string{
			"stored@a.example": {"bob@a.example"},
			"loop1@a.example":  {"loop2@a.example"},
			"loop2@a.example":  {"loop1@a.example"},
			"team@a.example":   {"alice@a.example"}, // shadowed by the config's
			"gone@a.example":   {"left@a.example"},
		},
	}
	r, err := NewResolver(dir, []string{"A.example", "b.example"}, Addresses{
		Aliases:    map[string][]string{"Team@a.example": {"alice@a.example", "Bob@a.example", "stored@a.example"}, "nested@b.example": {"team@a.example"}},
		CatchAll:   map[string]string{"a.example": "pm@a.example"},
		Postmaster: []string{"pm@a.example"},
		Delimiters: "+",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		addr string
		want []string
		err  error
	}{
		{"alice@a.example", []string{"alice@a.example"}, nil},
		{"team@a.example", []string{"alice@a.example", "bob@a.example"}, nil},
		{"nested@b.example", []string{"alice@a.example", "bob@a.example"}, nil},
		{"bob+x@a.example", []string{"bob@a.example"}, nil},
		{"team+x@a.example", []string{"alice@a.example", "bob@a.example"}, nil},
		{"postmaster@b.example", []string{"pm@a.example"}, nil},
		{"abuse@a.example", []string{"pm@a.example"}, nil},
		{"who@a.example", []string{"pm@a.example"}, nil}, // catch-all
		{"who@b.example", nil, ErrNoSuchUser},
		{"receipts@a.example", nil, ErrNoSuchUser},
		{"gone@b.example", nil, ErrNoSuchUser},
		{"gone@a.example", []string{}, ErrNoSuchUser}, // a target who left is not caught
		{"loop1@a.example", nil, ErrAliasLoop},
		{"x@elsewhere.example", nil, ErrNoSuchUser},
	} {
		got, err := r.Resolve(ctx, c.addr)
		if !errors.Is(err, c.err) || c.err == nil && !slices.Equal(got, c.want) {
			t.Errorf("Resolve(%s) = %v, %v; want %v, %v", c.addr, got, err, c.want, c.err)
		}
	}
	if got, err := r.ResolveKnown(ctx, "who@a.example"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("ResolveKnown used the catch-all: %v %v", got, err)
	}
	if a, _ := r.AddressByHash(ctx, HashNormalized("team@a.example")); a != "team@a.example" {
		t.Errorf("AddressByHash(team) = %q", a)
	}
	if a, _ := r.AddressByHash(ctx, HashNormalized("abuse@b.example")); a != "abuse@b.example" {
		t.Errorf("AddressByHash(abuse) = %q", a)
	}
	if a, sub, _ := r.AddressByWKD(ctx, "a.example", WKDHash("bob+x"), "bob+x"); a != "bob+x@a.example" || !sub {
		t.Errorf("AddressByWKD(bob+x) = %q", a)
	}
	if a, _, _ := r.AddressByWKD(ctx, "a.example", WKDHash("bob+x"), "alice+x"); a != "" {
		t.Errorf("AddressByWKD with a mismatched l = %q", a)
	}
	if err := r.Check(ctx, map[string][]string{"new@a.example": {"loop1@a.example"}}); err == nil || !errors.Is(err, ErrAliasLoop) {
		t.Errorf("Check missed the loop: %v", err)
	}
	r2, _ := NewResolver(dir, []string{"a.example"}, Addresses{Aliases: map[string][]string{"alice@a.example": {"bob@a.example"}}})
	if err := r2.Check(ctx, nil); err == nil || !strings.Contains(err.Error(), "alias alice@a.example: a user has that address") {
		t.Errorf("Check missed a config alias shadowed by a user: %v", err)
	}
}

func TestNewResolverErrors(t *testing.T) {
	t.Parallel()
	_, err := NewResolver(mapDir{}, []string{"a.example"}, Addresses{
		Aliases:  map[string][]string{"x@b.example": {"bob@a.example"}, "receipts@a.example": {"bob@a.example"}},
		CatchAll: map[string]string{"b.example": "bob@a.example"},
	})
	for _, want := range []string{"x@b.example", "receipts@a.example", "catch-all of b.example"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
