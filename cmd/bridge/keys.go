package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"tollbridge/config"
	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/store"
)

// pinStore adapts the store's pinned keys to keyring.PinStore.
type pinStore struct{ st *store.Store }

func (p pinStore) PinnedKey(ctx context.Context, address string) (string, []byte, error) {
	pin, err := p.st.PinnedKey(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, keyring.ErrNoPin
	}
	if err != nil {
		return "", nil, err
	}
	return pin.Fingerprint, pin.Key, nil
}

func (p pinStore) PinKey(ctx context.Context, address, fingerprint string, key []byte) (string, []byte, error) {
	pin, err := p.st.PinKey(ctx, address, fingerprint, key)
	if err != nil {
		return "", nil, err
	}
	return pin.Fingerprint, pin.Key, nil
}

func (p pinStore) OfferKey(ctx context.Context, address, fingerprint string, key []byte) error {
	return p.st.OfferKey(ctx, address, fingerprint, key)
}

func (p pinStore) ReplaceKey(ctx context.Context, address, old, fingerprint string, key []byte) error {
	return p.st.ReplacePin(ctx, address, old, fingerprint, key)
}

func runKeysList(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("keys list", flag.ContinueOnError)
	return storeCmd(ctx, fs, args, 0, "takes no arguments", func(_ *config.Config, st *store.Store, _ []string) error {
		pins, err := st.Pins(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tPINNED KEY\tSINCE\tCHANGED KEY WAITING")
		for _, p := range pins {
			waiting := "-"
			if p.OfferedFingerprint != "" {
				waiting = p.OfferedFingerprint + " (seen " + p.Offered.UTC().Format("2006-01-02 15:04") + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Address, p.Fingerprint, p.Pinned.UTC().Format("2006-01-02 15:04"), waiting)
		}
		return tw.Flush()
	})
}

func runKeysAccept(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("keys accept", flag.ContinueOnError)
	return storeCmd(ctx, fs, args, 1, "need exactly one ADDRESS", func(_ *config.Config, st *store.Store, pos []string) error {
		addr, err := keyring.NormalizeAddress(pos[0])
		if err != nil {
			return err
		}
		pin, err := st.AcceptOfferedKey(ctx, addr)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: no changed key is waiting (see bridge keys list)", addr)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: now pinned to %s\n", addr, pin.Fingerprint)
		return nil
	})
}

func runPowBench(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("pow bench", flag.ContinueOnError)
	secs := fs.Float64("seconds", 3, "how long to measure")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *secs <= 0 {
		return usagef("--seconds must be positive")
	}
	budget := time.Duration(*secs * float64(time.Second))
	r := pow.Bench(ctx, budget)
	// Each worktype at its defaults (config.Default), whatever a config
	// file says: the figures an admin tunes from.
	t := config.Default().Ticket
	r.Worktypes = pow.BenchWorktypes(ctx, pow.Difficulty{Bits: t.PowBits, Count: t.PowCount},
		pow.Equihash{N: t.EquihashN, K: t.EquihashK, Count: t.EquihashCount}, budget)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(r)
	}
	fmt.Fprintf(e.stdout, "cores: %d\nhashes per second: %.0f\nper core: %.0f\n", r.Cores, r.HashesPerSecond, r.HashesPerSecondPerCore)
	for _, w := range r.Worktypes {
		fmt.Fprintf(e.stdout, "%s: %.2f s of one core a ticket, %.1f µs to verify a proof, %d MiB a solving core\n",
			w.Name, w.SecondsPerTicketOneCore, w.VerifySecondsPerProof*1e6, w.PeakMemoryBytes>>20)
	}
	return nil
}
