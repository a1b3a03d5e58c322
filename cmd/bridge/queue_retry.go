package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"tollbridge/config"
	"tollbridge/store"
)

// runQueueRetry makes queued messages due now. A running bridge's outbox
// looks for due work every second, so it tries them at once; a stopped one
// tries them first thing when it starts.
func runQueueRetry(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("queue retry", flag.ContinueOnError)
	all := fs.Bool("all", false, "retry every queued message")
	return storeCmd(ctx, fs, args, -1, "", func(_ *config.Config, st *store.Store, pos []string) error {
		var id int64
		switch {
		case *all && len(pos) == 0:
		case !*all && len(pos) == 1:
			n, err := strconv.ParseInt(pos[0], 10, 64)
			if err != nil || n <= 0 {
				return usagef("ID must be a message number from bridge queue, got %q", pos[0])
			}
			id = n
		default:
			return usagef("need exactly one of ID and --all")
		}
		n, err := st.RetryNow(ctx, id)
		if err != nil {
			return err
		}
		if id != 0 && n == 0 {
			return fmt.Errorf("message %d: not in the outbox (see bridge queue)", id)
		}
		fmt.Fprintf(e.stdout, "%d recipient(s) due now; a running bridge tries them within a second\n", n)
		return nil
	})
}
