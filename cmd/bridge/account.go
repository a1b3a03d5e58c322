package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/config"
	"tollbridge/keyring"
	"tollbridge/store"
)

// The account commands of docs/rules.md §5 "Added with version 1.1": a user's
// password, recovery code, key rotation, removal and trust.

func runUserAdd(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	pwFile := fs.String("password-file", "", "file whose first line is the password (- for stdin)")
	recFile := fs.String("recovery-file", "", "write the one-time recovery code to this file (mode 0600) instead of printing it")
	return storeCmd(ctx, fs, args, 1, "need --password-file and exactly one ADDRESS", func(cfg *config.Config, st *store.Store, pos []string) error {
		if *pwFile == "" {
			return usagef("need --password-file and exactly one ADDRESS")
		}
		pw, err := readPassword(e, *pwFile)
		if err != nil {
			return err
		}
		u, code, err := addAccount(ctx, cfg, st, pos[0], pw, e.keys)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created %s, key %s\n", u.Address, u.Fingerprint)
		return showRecovery(e, *recFile, code)
	})
}

// addUser creates a local user of one of the config's domains; the
// recovery code made with it is dropped (tests, quickstart).
func addUser(ctx context.Context, cfg *config.Config, st *store.Store, address string, password []byte, prot keyring.Protection) (*store.User, error) {
	u, _, err := addAccount(ctx, cfg, st, address, password, prot)
	return u, err
}

// addAccount creates a local user of one of the config's domains with a
// key protected by password and, a second time, by a fresh recovery code,
// which it returns.
func addAccount(ctx context.Context, cfg *config.Config, st *store.Store, address string, password []byte, prot keyring.Protection) (*store.User, string, error) {
	addr, err := keyring.NormalizeAddress(address)
	if err != nil {
		return nil, "", err
	}
	local, domain := keyring.SplitAddress(addr)
	if !cfg.IsLocalDomain(domain) {
		return nil, "", fmt.Errorf("%s: domain %s is not in server.domains of %s", addr, domain, cfg.File)
	}
	if local == "receipts" {
		return nil, "", fmt.Errorf("%s: the local part receipts is reserved for delivery receipts", addr)
	}
	if _, err := st.UserByAddress(ctx, addr); err == nil {
		return nil, "", fmt.Errorf("%s: %w", addr, store.ErrExists)
	}
	// A user's own address is never rewritten, so a user would silently
	// take an alias's mail.
	if _, err := st.AliasByAddress(ctx, addr); err == nil || cfg.IsAlias(addr) {
		return nil, "", fmt.Errorf("%s: an alias has that address (bridge alias list); remove it first", addr)
	}
	k, ent, err := keyring.Generate(addr, password, prot)
	if err != nil {
		return nil, "", err
	}
	code := keyring.NewRecoveryCode()
	rec, err := keyring.Protect(ent, []byte(code), prot)
	if err != nil {
		return nil, "", err
	}
	u := &store.User{
		Address: addr, AddressHash: keyring.HashNormalized(addr), WKDName: domain + "/" + keyring.WKDHash(local),
		Fingerprint: k.Fingerprint, PublicKey: k.Public, PrivateKey: k.Private, RecoveryKey: rec,
	}
	if err := st.CreateUser(ctx, u); err != nil {
		return nil, "", err
	}
	return u, code, nil
}

// showRecovery hands a new recovery code to the admin: into file (mode
// 0600, replaced atomically) or, without one, on stdout.
func showRecovery(e *env, file, code string) error {
	if file == "" {
		fmt.Fprintf(e.stdout, "recovery code (shown once; it unlocks the mail if the password is lost): %s\n", code)
		return nil
	}
	tmp, err := stageRecovery(file, code)
	if err != nil {
		return err
	}
	return commitRecovery(e, tmp, file, code)
}

// stageRecovery writes code next to file, to be renamed over it once the
// store holds the key it unlocks: a failed update leaves the old code.
func stageRecovery(file, code string) (string, error) {
	tmp := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".new")
	if err := os.WriteFile(tmp, []byte(code+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("--recovery-file: %w", err)
	}
	// WriteFile keeps the mode of a file left by an earlier failure.
	if err := os.Chmod(tmp, 0o600); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("--recovery-file: %w", err)
	}
	return tmp, nil
}

func commitRecovery(e *env, tmp, file, code string) error {
	if err := os.Rename(tmp, file); err != nil {
		// The store already holds the key this code unlocks: never lose it.
		fmt.Fprintf(e.stdout, "recovery code: %s\n", code)
		return fmt.Errorf("--recovery-file %s: %w (the code is printed above)", file, err)
	}
	fmt.Fprintf(e.stdout, "recovery code written to %s\n", file)
	return nil
}

// readRecovery reads the recovery code from the first line of file.
func readRecovery(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--recovery-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	code, err := keyring.NormalizeRecoveryCode(line)
	if err != nil {
		return "", fmt.Errorf("--recovery-file %s: %w", file, err)
	}
	return code, nil
}

// needFlags is a usage error unless every named flag value is set.
func needFlags(usage string, values ...string) error {
	if slices.Contains(values, "") {
		return usagef("%s", usage)
	}
	return nil
}

// readTwo reads two secrets from their files; at most one may be stdin.
func readTwo(e *env, a, b string) ([]byte, []byte, error) {
	if a == "-" && b == "-" {
		return nil, nil, usagef("only one of the password files may be - (stdin)")
	}
	x, err := readPassword(e, a)
	if err != nil {
		return nil, nil, err
	}
	y, err := readPassword(e, b)
	return x, y, err
}

func runUserPasswd(ctx context.Context, e *env, args []string) error {
	const usage = "need --old-password-file, --password-file and exactly one ADDRESS"
	fs := flag.NewFlagSet("user passwd", flag.ContinueOnError)
	oldFile := fs.String("old-password-file", "", "file whose first line is the current password (- for stdin)")
	pwFile := fs.String("password-file", "", "file whose first line is the new password (- for stdin)")
	return storeCmd(ctx, fs, args, 1, usage, func(_ *config.Config, st *store.Store, pos []string) error {
		if err := needFlags(usage, *oldFile, *pwFile); err != nil {
			return err
		}
		oldPW, newPW, err := readTwo(e, *oldFile, *pwFile)
		if err != nil {
			return err
		}
		u, err := lookupUser(ctx, st, pos[0])
		if err != nil {
			return err
		}
		cur, err := keyring.Unlock(u.PrivateKey, oldPW)
		if err != nil {
			return fmt.Errorf("%s: --old-password-file: %w", u.Address, err)
		}
		priv, err := keyring.Protect(cur, newPW, e.keys)
		if err != nil {
			return err
		}
		// Only the password's wrapping changes: the key, the recovery
		// wrapping and the retired keys sealed to the key stay.
		err = st.UpdateKeys(ctx, u.ID, u.Generation, store.KeyUpdate{
			Fingerprint: u.Fingerprint, PublicKey: u.PublicKey, PrivateKey: priv,
			RecoveryKey: u.RecoveryKey, RetiredKeys: u.RetiredKeys,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: password changed; sessions logged in with the old one end\n", u.Address)
		return nil
	})
}

func runUserRecover(ctx context.Context, e *env, args []string) error {
	const usage = "need --recovery-file, --password-file and exactly one ADDRESS"
	fs := flag.NewFlagSet("user recover", flag.ContinueOnError)
	recFile := fs.String("recovery-file", "", "file whose first line is the recovery code; the new code is written back to it")
	pwFile := fs.String("password-file", "", "file whose first line is the new password (- for stdin)")
	return storeCmd(ctx, fs, args, 1, usage, func(_ *config.Config, st *store.Store, pos []string) error {
		if err := needFlags(usage, *recFile, *pwFile); err != nil {
			return err
		}
		code, err := readRecovery(*recFile)
		if err != nil {
			return err
		}
		pw, err := readPassword(e, *pwFile)
		if err != nil {
			return err
		}
		u, err := lookupUser(ctx, st, pos[0])
		if err != nil {
			return err
		}
		if u.RecoveryKey == nil {
			return fmt.Errorf("%s: has no recovery code (made before version 1.1)", u.Address)
		}
		cur, err := keyring.Unlock(u.RecoveryKey, []byte(code))
		if err != nil {
			return fmt.Errorf("%s: --recovery-file %s: %w", u.Address, *recFile, keyring.ErrBadRecoveryCode)
		}
		return rewrap(ctx, e, st, u, cur, u.RetiredKeys, pw, *recFile, "password set and recovery code replaced")
	})
}

// rewrap stores cur (the user's current key, unlocked) protected with pw
// and with a fresh recovery code, which goes to recFile (or stdout); the
// old code is void from then on.
func rewrap(ctx context.Context, e *env, st *store.Store, u *store.User, cur *openpgp.Entity, retired, pw []byte, recFile, what string) error {
	priv, err := keyring.Protect(cur, pw, e.keys)
	if err != nil {
		return err
	}
	code := keyring.NewRecoveryCode()
	rec, err := keyring.Protect(cur, []byte(code), e.keys)
	if err != nil {
		return err
	}
	pub, err := keyring.PublicBytes(cur)
	if err != nil {
		return err
	}
	var tmp string
	if recFile != "" {
		if tmp, err = stageRecovery(recFile, code); err != nil {
			return err
		}
	}
	err = st.UpdateKeys(ctx, u.ID, u.Generation, store.KeyUpdate{
		Fingerprint: keyring.Fingerprint(cur), PublicKey: pub, PrivateKey: priv, RecoveryKey: rec, RetiredKeys: retired,
	})
	if err != nil {
		if tmp != "" {
			os.Remove(tmp)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %s, key %s; sessions logged in before end\n", u.Address, what, keyring.Fingerprint(cur))
	if tmp == "" {
		return showRecovery(e, "", code)
	}
	return commitRecovery(e, tmp, recFile, code)
}

func runUserRotateKey(ctx context.Context, e *env, args []string) error {
	const usage = "need --password-file and exactly one ADDRESS"
	fs := flag.NewFlagSet("user rotate-key", flag.ContinueOnError)
	pwFile := fs.String("password-file", "", "file whose first line is the password (- for stdin)")
	recFile := fs.String("recovery-file", "", "write the new recovery code to this file (mode 0600) instead of printing it")
	return storeCmd(ctx, fs, args, 1, usage, func(_ *config.Config, st *store.Store, pos []string) error {
		if err := needFlags(usage, *pwFile); err != nil {
			return err
		}
		pw, err := readPassword(e, *pwFile)
		if err != nil {
			return err
		}
		u, err := lookupUser(ctx, st, pos[0])
		if err != nil {
			return err
		}
		old, retired, err := keyring.UnlockAll(u.PrivateKey, u.RetiredKeys, pw)
		if err != nil {
			return fmt.Errorf("%s: --password-file: %w", u.Address, err)
		}
		_, next, err := keyring.Rotate(old, u.Address)
		if err != nil {
			return err
		}
		// The old key opens mail sealed to it; it is kept sealed to the
		// new one, which the password and the new recovery code unlock.
		sealed, err := keyring.SealRetired(next, append(retired, old))
		if err != nil {
			return err
		}
		return rewrap(ctx, e, st, u, next, sealed, pw, *recFile,
			"new key certified by "+keyring.Fingerprint(old)+", old keys kept for older mail")
	})
}

func runUserRemove(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user remove", flag.ContinueOnError)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	return storeCmd(ctx, fs, args, 1, "need exactly one ADDRESS", func(cfg *config.Config, st *store.Store, pos []string) error {
		u, err := lookupUser(ctx, st, pos[0])
		if err != nil {
			return err
		}
		if !*yes {
			if err := confirm(e, fmt.Sprintf("remove %s with their keys and all their mail, for good? Type yes: ", u.Address)); err != nil {
				return err
			}
		}
		r, err := st.RemoveUser(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed %s: %d messages, %d queued deliveries, %d tickets\n", u.Address, r.Messages, r.Queued, r.Tickets)
		for _, a := range r.AliasesChanged {
			fmt.Fprintf(e.stdout, "alias %s no longer delivers to %s\n", a, u.Address)
		}
		for _, a := range r.AliasesDeleted {
			fmt.Fprintf(e.stdout, "alias %s delivered only to %s and was removed\n", a, u.Address)
		}
		for _, w := range configMentions(cfg, u.Address) {
			fmt.Fprintf(e.stderr, "warning: %s: %s still names %s: edit it\n", cfg.File, w, u.Address)
		}
		return nil
	})
}

// confirm asks a question on stderr and wants "yes" as the answer on
// stdin; anything else, or no answer at all (a script's empty stdin),
// refuses.
func confirm(e *env, question string) error {
	fmt.Fprint(e.stderr, question)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("not confirmed: %w", err)
	}
	if line == "" {
		fmt.Fprintln(e.stderr)
		return errors.New("not confirmed: no answer on stdin (use --yes in scripts); nothing was removed")
	}
	if strings.TrimSpace(line) != "yes" {
		return errors.New("not confirmed: nothing was removed")
	}
	return nil
}

// configMentions lists the config keys that still deliver to address,
// which only an admin's edit can change.
func configMentions(cfg *config.Config, address string) []string {
	var out []string
	for _, a := range cfg.Aliases {
		if slices.ContainsFunc(a.Targets, func(t string) bool { return strings.EqualFold(t, address) }) {
			out = append(out, fmt.Sprintf("[[alias]] %s", a.Address))
		}
	}
	for d, t := range cfg.Server.CatchAll {
		if strings.EqualFold(t, address) {
			out = append(out, "server.catch_all."+d)
		}
	}
	if slices.ContainsFunc(cfg.Server.Postmaster, func(t string) bool { return strings.EqualFold(t, address) }) {
		out = append(out, "server.postmaster")
	}
	slices.Sort(out)
	return out
}

// runUserAllowCmd is `user allow`: with --list or --remove it shows or
// undoes trust, otherwise it adds a sender (runUserAllow).
func runUserAllowCmd(ctx context.Context, e *env, args []string) error {
	list, remove := false, false
	for _, a := range args {
		switch strings.TrimLeft(a, "-") {
		case "list":
			list = list || strings.HasPrefix(a, "-")
		case "remove":
			remove = remove || strings.HasPrefix(a, "-")
		}
	}
	if !list && !remove {
		return runUserAllow(ctx, e, args)
	}
	fs := flag.NewFlagSet("user allow", flag.ContinueOnError)
	fs.Bool("list", false, "list ADDRESS's allow list and correspondents")
	fs.Bool("remove", false, "remove SENDER from ADDRESS's allow list and correspondents")
	if list && remove {
		return usagef("--list and --remove exclude each other")
	}
	if list {
		return storeCmd(ctx, fs, args, 1, "--list needs exactly one ADDRESS", func(cfg *config.Config, st *store.Store, pos []string) error {
			return listTrust(ctx, e, cfg, st, pos[0])
		})
	}
	return storeCmd(ctx, fs, args, 2, "--remove needs ADDRESS and SENDER", func(_ *config.Config, st *store.Store, pos []string) error {
		u, sender, err := userAndSender(ctx, st, pos[0], pos[1])
		if err != nil {
			return err
		}
		n, err := st.Distrust(ctx, u.ID, keyring.HashNormalized(sender))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: %s is neither on the allow list nor a correspondent", u.Address, sender)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: removed %s (%d entries); its mail needs work again\n", u.Address, sender, n)
		return nil
	})
}

// listTrust prints why senders get no-work tickets for a user: the
// allow list, the correspondents and the config's domain-wide entries.
func listTrust(ctx context.Context, e *env, cfg *config.Config, st *store.Store, address string) error {
	u, err := lookupUser(ctx, st, address)
	if err != nil {
		return err
	}
	ts, err := st.Trusts(ctx, u.ID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSENDER\tSINCE")
	for _, t := range ts {
		who, when := t.Address, "-"
		if who == "" {
			who = "(hash " + t.Hash + ")"
		}
		if t.When.Unix() > 0 {
			when = t.When.UTC().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Kind, who, when)
	}
	_, domain := keyring.SplitAddress(u.Address)
	for _, a := range cfg.Allow {
		if strings.EqualFold(a.Domain, domain) {
			for _, s := range a.Senders {
				fmt.Fprintf(tw, "config\t%s\t%s [[allow]] domain %s\n", s, cfg.File, a.Domain)
			}
		}
	}
	return tw.Flush()
}
