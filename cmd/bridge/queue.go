package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"tollbridge/config"
	"tollbridge/store"
)

func runQueue(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	done := fs.Bool("done", false, "list recent deliveries (newest first) with their receipts' checks")
	limit := fs.Int("limit", 50, "with --done: how many")
	return storeCmd(ctx, fs, args, 0, "takes no arguments", func(_ *config.Config, st *store.Store, _ []string) error {
		if *done {
			return listDone(ctx, e, st, *limit)
		}
		q, err := st.Queue(ctx)
		if err != nil {
			return err
		}
		if len(q) == 0 {
			fmt.Fprintln(e.stdout, "outbox is empty")
			return nil
		}
		now := st.Now()
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MESSAGE\tFROM\tRECIPIENT\tROUTE\tSTATE\tTRIES\tNEXT ATTEMPT\tPROGRESS / LAST ERROR")
		for _, r := range q {
			fmt.Fprintln(tw, queueLine(r, now))
		}
		return tw.Flush()
	})
}

// listDone is bridge queue --done: the deliveries log, newest first.
// RECEIPT is the sender's check of the receiving server's receipt
// (docs/protocol.md §3.3.3): pass, fail: why, unchecked: why, or - for
// routes without receipts.
func listDone(ctx context.Context, e *env, st *store.Store, n int) error {
	if n <= 0 {
		return usagef("--limit must be positive")
	}
	ds, err := st.Deliveries(ctx, n)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		fmt.Fprintln(e.stdout, "no deliveries recorded")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tRECIPIENT\tOUTCOME\tROUTE / DETAIL\tREMOTE ID\tRECEIPT")
	for _, d := range ds {
		check := d.ReceiptCheck
		if check == "" {
			check = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.At.UTC().Format(time.RFC3339), d.Recipient, d.Outcome,
			oneLine(d.Detail, 60), oneLine(orDash(d.RemoteID), 40), oneLine(check, 80))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// queueLine is one recipient's row of bridge queue.
func queueLine(r *store.QueueEntry, now time.Time) string {
	next := "now"
	if d := r.NextAttempt.Sub(now); d > 0 {
		next = "in " + d.Round(time.Second).String()
	}
	detail := r.Progress
	if detail == "" {
		detail = r.LastError
	}
	route := r.Route
	if route == "" {
		route = "-"
	}
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s", r.OutboxID, r.Sender, r.Recipient, route, r.State, r.Tries, next, oneLine(detail, 100))
}

// oneLine shortens s (remote servers' words, among others) to one line
// of at most n characters with no control characters: nothing a remote
// server writes can move the admin's terminal around.
func oneLine(s string, n int) string {
	for i, c := range s {
		if c == '\n' || c == '\r' {
			s = s[:i]
			break
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return '?'
		}
		return r
	}, s)
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
