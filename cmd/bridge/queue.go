package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

func runQueue(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	_, st, err := openStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
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
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.OutboxID, r.Sender, r.Recipient, route, r.State, r.Tries, next, oneLine(detail, 100))
	}
	return tw.Flush()
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
