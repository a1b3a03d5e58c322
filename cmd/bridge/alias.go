package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"tollbridge/config"
	"tollbridge/keyring"
	"tollbridge/store"
)

// newRecipients is the one recipient resolver of a bridge (docs/rules.md §4):
// the config's aliases, catch-alls and postmaster over the store's users
// and aliases.
func newRecipients(cfg *config.Config, dir keyring.Directory) (*keyring.Resolver, error) {
	aliases := map[string][]string{}
	for _, a := range cfg.Aliases {
		aliases[a.Address] = a.Targets
	}
	r, err := keyring.NewResolver(dir, cfg.Server.Domains, keyring.Addresses{
		Aliases: aliases, CatchAll: cfg.Server.CatchAll,
		Postmaster: cfg.Server.Postmaster, Delimiters: cfg.Server.SubaddressSeparator,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return r, nil
}

// setupRecipients builds the resolver the listeners share and logs the
// configured addresses that reach no user yet (a user may be added later).
func (b *bridge) setupRecipients() error {
	r, err := newRecipients(b.cfg, store.Directory{St: b.st})
	if err != nil {
		return err
	}
	if err := r.Check(context.Background(), nil); err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			b.log.Warn("address reaches no user", "file", b.cfg.File, "err", e)
		}
	}
	b.recipients = r
	return nil
}

// pendingAlias is the store's directory with one alias added, to check
// an alias before it is stored.
type pendingAlias struct {
	store.Directory
	address string
	targets []string
}

// AliasTargets answers for the pending alias, and asks the store for others.
func (p pendingAlias) AliasTargets(ctx context.Context, address string) ([]string, error) {
	if address == p.address {
		return p.targets, nil
	}
	return p.Directory.AliasTargets(ctx, address)
}

func runAliasAdd(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("alias add", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("need an ALIAS and at least one TARGET")
	}
	cfg, st, err := openStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := checkAlias(ctx, cfg, st, pos[0], pos[1:])
	if err != nil {
		return err
	}
	if err := st.AddAlias(ctx, a); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "added %s -> %s\n", a.Address, strings.Join(a.Targets, ", "))
	return nil
}

// checkAlias validates a new alias: in a local domain, not reserved, not a
// user's or a config alias's address, and each target reaching a user
// without a loop. Errors name the address at fault.
func checkAlias(ctx context.Context, cfg *config.Config, st *store.Store, address string, targets []string) (*store.Alias, error) {
	addr, err := keyring.NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	local, domain := keyring.SplitAddress(addr)
	switch {
	case !cfg.IsLocalDomain(domain):
		return nil, fmt.Errorf("%s: domain %s is not in server.domains of %s", addr, domain, cfg.File)
	case local == keyring.ReservedLocal:
		return nil, fmt.Errorf("%s: the local part receipts is reserved for delivery receipts", addr)
	}
	a := &store.Alias{Address: addr, AddressHash: keyring.HashNormalized(addr), WKDName: domain + "/" + keyring.WKDHash(local)}
	for _, t := range targets {
		n, err := keyring.NormalizeAddress(t)
		if err != nil {
			return nil, fmt.Errorf("target %w", err)
		}
		a.Targets = append(a.Targets, n)
	}
	r, err := newRecipients(cfg, pendingAlias{Directory: store.Directory{St: st}, address: addr, targets: a.Targets})
	if err != nil {
		return nil, err
	}
	if r.ConfigAlias(addr) != nil {
		return nil, fmt.Errorf("%s: already an [[alias]] in %s", addr, cfg.File)
	}
	if ok, err := (store.Directory{St: st}).IsUser(ctx, addr); ok || err != nil {
		return nil, errors.Join(err, fmt.Errorf("%s: a user has that address: %w", addr, store.ErrExists))
	}
	if err := r.Check(ctx, map[string][]string{addr: a.Targets}); err != nil {
		return nil, err
	}
	return a, nil
}

func runAliasList(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("alias list", flag.ContinueOnError)
	return storeCmd(ctx, fs, args, 0, "takes no arguments", func(cfg *config.Config, st *store.Store, _ []string) error {
		stored, err := st.Aliases(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ALIAS\tTARGETS\tSOURCE")
		for _, a := range cfg.Aliases {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToLower(a.Address), strings.Join(a.Targets, ","), "config")
		}
		for _, a := range stored {
			source := "stored"
			if cfg.IsAlias(a.Address) {
				source = "stored, shadowed by config"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Address, strings.Join(a.Targets, ","), source)
		}
		for _, d := range cfg.Server.Domains {
			if t, ok := cfg.Server.CatchAll[d]; ok {
				fmt.Fprintf(tw, "*@%s\t%s\t%s\n", d, t, "config catch_all")
			}
			if len(cfg.Server.Postmaster) > 0 {
				fmt.Fprintf(tw, "postmaster@%s,abuse@%s\t%s\t%s\n", d, d, strings.Join(cfg.Server.Postmaster, ","), "config postmaster")
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		return warnAliases(ctx, e, cfg, st, stored)
	})
}

// warnAliases prints, on stderr, each alias, catch-all or postmaster that
// reaches no user or loops; such mail is refused (550) until it is fixed.
func warnAliases(ctx context.Context, e *env, cfg *config.Config, st *store.Store, stored []*store.Alias) error {
	r, err := newRecipients(cfg, store.Directory{St: st})
	if err != nil {
		return err
	}
	extra := map[string][]string{}
	for _, a := range stored {
		extra[a.Address] = a.Targets
	}
	if err := r.Check(ctx, extra); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(e.stderr, "warning: %s\n", line)
		}
	}
	return nil
}

func runAliasRemove(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("alias remove", flag.ContinueOnError)
	return storeCmd(ctx, fs, args, 1, "need exactly one ALIAS", func(cfg *config.Config, st *store.Store, pos []string) error {
		addr, err := keyring.NormalizeAddress(pos[0])
		if err != nil {
			return err
		}
		err = st.RemoveAlias(ctx, addr)
		if errors.Is(err, store.ErrNotFound) && cfg.IsAlias(addr) {
			return fmt.Errorf("%s: an [[alias]] of %s; remove it from the file", addr, cfg.File)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed %s\n", addr)
		return nil
	})
}
