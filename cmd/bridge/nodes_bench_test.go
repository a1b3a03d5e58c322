package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tollbridge/config"
	"tollbridge/internal/mtatest"
	"tollbridge/internal/s3test"
)

// BenchmarkNodes measures delivered messages per second of one domain
// (example.net, on PostgreSQL) run by one node and by two nodes on the
// same database: b.N messages of the size mix are submitted from bob,
// spread over the nodes, and delivered by their outboxes (claims shared
// through the database) over the ticket API to a peer bridge, with no
// work. Delivered: every outbox entry done, as the database says.
//
//	go test ./cmd/bridge -run '^$' -bench BenchmarkNodes -benchtime 200x
func BenchmarkNodes(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("%dnode", n), func(b *testing.B) { benchNodes(b, n) })
	}
}

func benchNodes(b *testing.B, n int) {
	l, paths := domainNodes(b, n, s3test.Bucket{}, func(nodes []string) string { return roundRobin(b, nodes) })
	org := serveProcess(b, l.configPath(l.Sites[0]))
	var nodes []*proc
	for _, p := range paths {
		nodes = append(nodes, serveProcess(b, p))
	}
	cfg, err := config.Load(paths[0])
	if err != nil {
		b.Fatal(err)
	}
	st, err := openConfigStore(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			addr := nodes[c%len(nodes)].cfg.SMTP.Submission
			if err := submitManyFrom(addr, "bob@example.net", "alice@example.org", b.N, &next); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	accepted := time.Since(start)
	waitForEvery(b, "every message delivered", 10*time.Minute, 100*time.Millisecond, func() bool {
		depth, err := st.QueueDepth(context.Background())
		return err == nil && depth == 0
	})
	delivered := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted_msgs/s")
	b.ReportMetric(float64(b.N)/delivered.Seconds(), "delivered_msgs/s")
	b.ReportMetric(float64(runtime.NumCPU()), "cores")
	for _, p := range append(nodes, org) {
		p.stop()
	}
}

// submitManyFrom sends mix messages from bob to alice (the mix is
// alice's, turned around), taking the next unsent index below n each time.
func submitManyFrom(addr, from, to string, n int, next *atomic.Int64) error {
	swap := strings.NewReplacer("Alice <alice@example.org>", "Bob <bob@example.net>", "Bob <bob@example.net>", "Alice <alice@example.org>")
	for {
		i := int(next.Add(1) - 1)
		if i >= n {
			return nil
		}
		if err := submitRaw(addr, from, "pw-"+from, []string{to}, swap.Replace(mtatest.MixMessage(i))); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
}
