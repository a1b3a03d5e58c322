package main

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/internal/mtatest"
	"tollbridge/internal/teststore"
)

// BenchmarkEndToEnd sends b.N messages of mtatest's size mix (MixMessage) from alice to bob
// through two bridges (submission, seal, outbox, ticket, work, upload,
// complete) and reports messages and bytes per second accepted (250) and
// delivered (stored at bob's bridge), with no work and with the default.
func BenchmarkEndToEnd(b *testing.B) {
	for _, w := range []struct {
		name        string
		bits, count int
	}{{"pow0", 0, 1}, {"pow20x4", 20, 4}} {
		b.Run(w.name, func(b *testing.B) { benchEndToEnd(b, w.bits, w.count) })
	}
}

func benchEndToEnd(b *testing.B, bits, count int) {
	dir := b.TempDir()
	// Unlimited ticket requests: the benchmark is one sender at full speed.
	l := &qsLayout{Dir: dir, Sites: twoSites(), RatePerMinute: -1}
	if err := writeTestConfigs(b, l, bits, count); err != nil {
		b.Fatal(err)
	}
	for _, s := range l.Sites {
		s.Password = "pw-" + s.User
	}
	if err := l.createUsers(context.Background(), teststore.Cheap); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bs, err := l.open(ctx, testLog(), options{lookupSRV: notFoundSRV})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { runAll(ctx, bs); close(done) }()
	defer func() { cancel(); <-done }()

	// Messages are made as they are sent, so the heap measured is the
	// bridges', not a pile of test messages.
	var total atomic.Int64
	peak := watchMemory()
	b.ResetTimer()
	start := time.Now()
	const conns = 4
	var next atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := submitMany(bs[0].addr("submission"), b.N, &next, &total); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	bob, _ := bs[1].st.UserByAddress(ctx, "bob@example.net")
	for {
		n, _ := bs[1].st.UnfiledCount(ctx, bob.ID)
		if n >= b.N || b.Failed() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	delivered := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted_msgs/s")
	b.ReportMetric(float64(b.N)/delivered.Seconds(), "delivered_msgs/s")
	b.ReportMetric(float64(total.Load())/delivered.Seconds()/1e6, "delivered_MB/s")
	b.ReportMetric(float64(peak())/(1<<20), "peak_heap_MiB")
	b.ReportMetric(float64(runtime.NumCPU()), "cores")
}

// submitMany sends mix messages over one authenticated connection, taking
// the next unsent index below n each time and adding their sizes to total.
func submitMany(addr string, n int, next, total *atomic.Int64) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("bench"); err != nil {
		return err
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "pw-alice@example.org")); err != nil {
		return err
	}
	for {
		i := int(next.Add(1) - 1)
		if i >= n {
			return c.Quit()
		}
		msg := mtatest.MixMessage(i)
		total.Add(int64(len(msg)))
		if err := c.SendMail("alice@example.org", []string{"bob@example.net"}, strings.NewReader(msg)); err != nil {
			return err
		}
	}
}

// watchMemory samples the heap until the returned function is called and
// returns the peak in bytes.
func watchMemory() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return func() uint64 {
		once.Do(func() { close(stop) })
		return peak.Load()
	}
}
