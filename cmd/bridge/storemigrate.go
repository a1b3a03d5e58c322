package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"tollbridge/config"
	"tollbridge/store"
)

const storeMigrateUsage = "--from CONFIG --to CONFIG: copy users, keys, mail, flags, UIDs and the queue into an empty store (e.g. SQLite + files to PostgreSQL + S3)"

// runStoreMigrate copies the store of one config into the (empty) store
// of another: typically the same bridge's config with [store] postgres
// and s3_* added. Mail keeps its UIDs and UIDVALIDITY, so clients need no
// resync. The bridge must not be serving the source meanwhile: what it
// stored after the copy began would be left behind.
func runStoreMigrate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("store migrate", flag.ContinueOnError)
	from := fs.String("from", "", "config of the store to copy from")
	to := fs.String("to", "", "config of the empty store to copy into")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *from == "" || *to == "" || len(pos) != 0 {
		return usagef("--from and --to are required, and nothing else")
	}
	srcCfg, src, err := openStore(ctx, *from)
	if err != nil {
		return err
	}
	defer src.Close()
	dstCfg, dst, err := openStore(ctx, *to)
	if err != nil {
		return err
	}
	defer dst.Close()
	if sameStore(srcCfg, dstCfg) {
		return fmt.Errorf("%s and %s name the same store", srcCfg.File, dstCfg.File)
	}
	counts, err := src.CopyTo(ctx, dst)
	printCounts(e, counts)
	if err != nil {
		return fmt.Errorf("copy from %s to %s: %w", srcCfg.File, dstCfg.File, err)
	}
	fmt.Fprintf(e.stdout, "copied; every count matches. Serve with %s now.\n", dstCfg.File)
	if filepath.Clean(srcCfg.Server.DataDir) != filepath.Clean(dstCfg.Server.DataDir) {
		fmt.Fprintf(e.stdout, "note: %s/keys and the TLS files are not copied: copy them to %s before serving.\n",
			srcCfg.Server.DataDir, dstCfg.Server.DataDir)
	}
	return nil
}

// sameStore reports whether two configs name one store: copying a store
// into itself would find it not empty anyway, but this says why.
func sameStore(a, b *config.Config) bool {
	if a.Store.Postgres != "" || b.Store.Postgres != "" {
		return a.Store.Postgres == b.Store.Postgres
	}
	return filepath.Clean(a.Server.DataDir) == filepath.Clean(b.Server.DataDir)
}

func printCounts(e *env, counts []store.CopyCount) {
	if len(counts) == 0 {
		return
	}
	w := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tFROM\tTO")
	for _, c := range counts {
		fmt.Fprintf(w, "%s\t%d\t%d\n", c.Table, c.From, c.To)
	}
	w.Flush()
}
