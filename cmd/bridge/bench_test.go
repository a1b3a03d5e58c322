package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/internal/teststore"
)

// mixMessage is message i of a realistic size mix: most mail is a few KiB
// of text, some carries a mid-size HTML body with an inline image, a few a
// large attachment (75% 4 KiB, 20% 60 KiB, 5% 1 MiB).
func mixMessage(i int) string {
	head := fmt.Sprintf("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: message %d\r\n"+
		"Message-ID: <bench.%d@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n", i, i)
	text := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 70)
	switch {
	case i%20 == 19:
		return head + attachmentMessage(text, 1<<20)
	case i%4 == 3:
		return head + attachmentMessage(text, 60<<10)
	}
	return head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
}

// attachments are the random attachment bodies, base64 in lines, made once
// so the benchmark's client spends its time sending, not generating.
var attachments = sync.OnceValue(func() map[int]string {
	m := map[int]string{}
	for _, size := range []int{60 << 10, 1 << 20} {
		blob := make([]byte, size)
		rand.Read(blob)
		m[size] = base64Lines(blob)
	}
	return m
})

func base64Lines(blob []byte) string {
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

func attachmentMessage(text string, size int) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(text)
	b.WriteString("\r\n--b\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(attachments()[size])
	b.WriteString("--b--\r\n")
	return b.String()
}

// BenchmarkEndToEnd sends b.N messages of the size mix from alice to bob
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
		msg := mixMessage(i)
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
