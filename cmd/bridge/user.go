package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"tollbridge/config"
	"tollbridge/keyring"
	"tollbridge/store"
)

// configFlag registers --config on fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "path to config.toml")
}

// loadConfig loads the --config file, or says it is required.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, usagef("--config is required")
	}
	return config.Load(path)
}

// storeCmd runs a command that works on a config's store: it parses fs
// (adding --config), wants exactly want positional arguments (usage says
// which; -1 leaves the count to fn) and calls fn with the store open.
func storeCmd(ctx context.Context, fs *flag.FlagSet, args []string, want int, usage string,
	fn func(*config.Config, *store.Store, []string) error) error {
	cfgPath := configFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if want >= 0 && len(pos) != want {
		return usagef("%s", usage)
	}
	cfg, st, err := openStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(cfg, st, pos)
}

// openStore loads the config and opens its data directory.
func openStore(ctx context.Context, path string) (*config.Config, *store.Store, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	if err := requireDataDir(cfg); err != nil {
		return nil, nil, err
	}
	st, err := openConfigStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// requireDataDir says when server.data_dir is missing. Only bridge init
// creates it: a mistyped path must not quietly become an empty bridge.
func requireDataDir(cfg *config.Config) error {
	info, err := os.Stat(cfg.Server.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: server.data_dir: %s does not exist (bridge init creates it; is the path right?)", cfg.File, cfg.Server.DataDir)
	case err != nil:
		return fmt.Errorf("%s: server.data_dir: %w", cfg.File, err)
	case !info.IsDir():
		return fmt.Errorf("%s: server.data_dir: %s is not a folder", cfg.File, cfg.Server.DataDir)
	}
	return nil
}

// readPassword returns the first line of file, or of stdin for "-".
func readPassword(e *env, file string) ([]byte, error) {
	var r io.Reader = e.stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("--password-file: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return nil, fmt.Errorf("--password-file %s: the first line is empty", file)
	}
	return []byte(pw), nil
}

func runUserExportKey(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user export-key", flag.ContinueOnError)
	return storeCmd(ctx, fs, args, 1, "need exactly one ADDRESS", func(_ *config.Config, st *store.Store, pos []string) error {
		u, err := lookupUser(ctx, st, pos[0])
		if err != nil {
			return err
		}
		armored, err := keyring.ArmorPublic(u.PublicKey)
		if err != nil {
			return err
		}
		fmt.Fprint(e.stdout, armored)
		return nil
	})
}

func lookupUser(ctx context.Context, st *store.Store, address string) (*store.User, error) {
	addr, err := keyring.NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	u, err := st.UserByAddress(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: no such local user", addr)
	}
	return u, err
}

// userAndSender looks up the local user address and normalises the
// sender address of `bridge user allow`.
func userAndSender(ctx context.Context, st *store.Store, address, sender string) (*store.User, string, error) {
	u, err := lookupUser(ctx, st, address)
	if err != nil {
		return nil, "", err
	}
	s, err := keyring.NormalizeAddress(sender)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", sender, err)
	}
	return u, s, nil
}

func runUserAllow(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user allow", flag.ContinueOnError)
	return storeCmd(ctx, fs, args, 2, "need ADDRESS and SENDER", func(_ *config.Config, st *store.Store, pos []string) error {
		u, sender, err := userAndSender(ctx, st, pos[0], pos[1])
		if err != nil {
			return err
		}
		if err := st.Allow(ctx, u.ID, keyring.HashNormalized(sender), sender); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s now accepts mail from %s without work, when %s's server signs its ticket requests\n", u.Address, sender, sender)
		return nil
	})
}

func runUserList(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("user list", flag.ContinueOnError)
	return storeCmd(ctx, fs, args, 0, "takes no arguments", func(_ *config.Config, st *store.Store, _ []string) error {
		users, err := st.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tKEY\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Address, u.Fingerprint, u.Created.UTC().Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	})
}
