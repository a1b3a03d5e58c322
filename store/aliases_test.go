package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAliases(t *testing.T) {
	t.Parallel()
	s, clk := openTest(t)
	ctx := context.Background()
	testUser(t, s, "bob@example.org")
	a := &Alias{Address: "team@example.org", AddressHash: "h-team", WKDName: "example.org/w-team", Targets: []string{"bob@example.org", "carol@example.org"}}
	if err := s.AddAlias(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias(ctx, a); !errors.Is(err, ErrExists) {
		t.Errorf("second add: %v", err)
	}
	if err := s.AddAlias(ctx, &Alias{Address: "bob@example.org", AddressHash: "h-bob2", WKDName: "w-bob2", Targets: []string{"x@example.org"}}); !errors.Is(err, ErrExists) {
		t.Errorf("alias over a user: %v", err)
	}
	d := Directory{St: s}
	if ts, err := d.AliasTargets(ctx, "team@example.org"); err != nil || !slices.Equal(ts, a.Targets) {
		t.Errorf("targets = %v, %v", ts, err)
	}
	if ts, err := d.AliasTargets(ctx, "nobody@example.org"); err != nil || ts != nil {
		t.Errorf("targets of nobody = %v, %v", ts, err)
	}
	if addr, _ := d.AddressByHash(ctx, "h-team"); addr != "team@example.org" {
		t.Errorf("by hash: %q", addr)
	}
	if addr, _ := d.AddressByWKDName(ctx, "example.org/w-team"); addr != "team@example.org" {
		t.Errorf("by WKD name: %q", addr)
	}
	if ok, _ := d.IsUser(ctx, "bob@example.org"); !ok {
		t.Error("bob is not a user")
	}
	if as, err := s.Aliases(ctx); err != nil || len(as) != 1 {
		t.Errorf("aliases = %v, %v", as, err)
	}
	if err := s.NoteSubaddress(ctx, "h-bob+x", "bob+x@example.org"); err != nil {
		t.Fatal(err)
	}
	if addr, _ := d.AddressByHash(ctx, "h-bob+x"); addr != "bob+x@example.org" {
		t.Errorf("noted subaddress by hash: %q", addr)
	}
	clk.Add(SubaddressTTL + time.Second)
	if addr, _ := d.AddressByHash(ctx, "h-bob+x"); addr != "" {
		t.Errorf("subaddress found after its TTL: %q", addr)
	}
	if err := s.RemoveAlias(ctx, "team@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveAlias(ctx, "team@example.org"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}
