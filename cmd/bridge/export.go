package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"tollbridge/config"
	"tollbridge/imapout"
	"tollbridge/intake"
	"tollbridge/keyring"
	"tollbridge/store"
)

// runUserExport writes a user's mail as one Maildir per mailbox
// (imapout.Porter.Export), decrypted with the user's password.
func runUserExport(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user export", flag.ContinueOnError)
	pwFile := fs.String("password-file", "", "file whose first line is the user's password (- for stdin)")
	out := fs.String("out", "", "directory for the Maildirs, one per mailbox (new or empty)")
	const usage = "need --password-file, --out and exactly one ADDRESS"
	return storeCmd(ctx, fs, args, 1, usage, func(cfg *config.Config, st *store.Store, pos []string) error {
		if *pwFile == "" || *out == "" {
			return usagef(usage)
		}
		p, u, err := openPorter(ctx, e, cfg, st, pos[0], *pwFile)
		if err != nil {
			return err
		}
		stats, err := p.Export(ctx, *out)
		if err != nil {
			return fmt.Errorf("%s: %w", u.Address, err)
		}
		fmt.Fprintf(e.stdout, "exported %d messages (%d bytes) of %s in %d mailboxes to %s\n",
			stats.Messages, stats.Bytes, u.Address, stats.Mailboxes, *out)
		if stats.Unfiled > 0 {
			fmt.Fprintf(e.stderr, "%d messages of %s wait to be filed and are not exported: log in once over IMAP while the bridge runs, then export again\n",
				stats.Unfiled, u.Address)
		}
		for _, k := range stats.Dropped {
			fmt.Fprintf(e.stderr, "keyword not exported (a Maildir holds 26 per mailbox): %s\n", k)
		}
		if len(stats.Unreadable) > 0 {
			return fmt.Errorf("%s: %d messages failed their integrity check and were left out: %s",
				u.Address, len(stats.Unreadable), strings.Join(stats.Unreadable, ", "))
		}
		return nil
	})
}

// runUserImport stores a Maildir or mbox as the user's own mail, sealed
// to their key at once (imapout.Porter.Import).
func runUserImport(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user import", flag.ContinueOnError)
	pwFile := fs.String("password-file", "", "file whose first line is the user's password (- for stdin)")
	mailbox := fs.String("mailbox", "INBOX", "mailbox for an mbox file or a single Maildir")
	const usage = "need --password-file, ADDRESS and PATH (a Maildir, a directory of Maildirs, or an mbox file)"
	return storeCmd(ctx, fs, args, 2, usage, func(cfg *config.Config, st *store.Store, pos []string) error {
		if *pwFile == "" {
			return usagef(usage)
		}
		p, u, err := openPorter(ctx, e, cfg, st, pos[0], *pwFile)
		if err != nil {
			return err
		}
		stats, err := p.Import(ctx, pos[1], imapout.ImportOptions{Mailbox: *mailbox})
		if stats != nil {
			fmt.Fprintf(e.stdout, "imported %d messages (%d bytes) from %s for %s; %d were imported before\n",
				stats.Messages, stats.Bytes, pos[1], u.Address, stats.Skipped)
		}
		if err != nil && stats != nil && stats.Messages > 0 {
			return fmt.Errorf("import for %s: %w (run the same import again to go on: what was stored is skipped)", u.Address, err)
		}
		if err != nil {
			return fmt.Errorf("import for %s: %w", u.Address, err)
		}
		for _, f := range stats.Failed {
			fmt.Fprintf(e.stderr, "not imported: %s\n", f)
		}
		if len(stats.Failed) > 0 {
			return fmt.Errorf("%s: %d messages were not imported", pos[1], len(stats.Failed))
		}
		return nil
	})
}

// openPorter unlocks a user's key with the password in pwFile and returns
// a Porter on the store, sealing as the running bridge's APPEND does.
func openPorter(ctx context.Context, e *env, cfg *config.Config, st *store.Store, address, pwFile string) (*imapout.Porter, *store.User, error) {
	u, err := lookupUser(ctx, st, address)
	if err != nil {
		return nil, nil, err
	}
	pw, err := readPassword(e, pwFile)
	if err != nil {
		return nil, nil, err
	}
	// All the user's keys, retired ones too (older mail names them), and
	// the metadata key as the running bridge derives it.
	key, _, err := keyring.NewUnlocker(1).AcquireUser(ctx, "", u.Address, u.PrivateKey, u.RetiredKeys, pw)
	if errors.Is(err, keyring.ErrBadPassword) {
		return nil, nil, fmt.Errorf("%s: wrong password in --password-file %s", u.Address, pwFile)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u.Address, err)
	}
	// Deferred: an import syncs each group of messages at once.
	sealer := &intake.Sealer{Store: st, Deferred: true}
	srv := imapout.New(imapout.Options{
		Store: st, Hostname: cfg.Server.Hostname, Seal: sealer.ForUser, AppendLimit: cfg.SMTP.MaxMessageBytes,
	})
	p, err := srv.Porter(u, key)
	if err != nil {
		return nil, nil, err
	}
	return p, u, nil
}
