package imapout

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tollbridge/intake"
)

// benchEnv is an env whose APPEND path (and so Import) seals with the
// bridge's own Sealer, which streams, deferring fsyncs to each group as
// `bridge user import` does.
func benchEnv(b *testing.B, appendLimit int64) *env {
	e := newEnv(b, func(c *Options) { c.AppendLimit = appendLimit })
	e.srv.cfg.Seal = (&intake.Sealer{Store: e.st, Deferred: true}).ForUser
	return e
}

// BenchmarkExport exports 500 small messages in 5 mailboxes; the metric
// is messages per second.
func BenchmarkExport(b *testing.B) {
	e := benchEnv(b, 0)
	bob := e.addUser("bob@example.net")
	const n = 500
	fill(b, e, bob, n)
	p := e.porter(b, bob)
	dirs := b.TempDir()
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		if _, err := p.Export(context.Background(), filepath.Join(dirs, strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkImport imports an export of 500 small messages for a new user
// each round; the metric is messages per second.
func BenchmarkImport(b *testing.B) {
	e := benchEnv(b, 0)
	bob := e.addUser("bob@example.net")
	const n = 500
	fill(b, e, bob, n)
	dir := filepath.Join(b.TempDir(), "export")
	if _, err := e.porter(b, bob).Export(context.Background(), dir); err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		i++
		p := e.porter(b, e.addUser(fmt.Sprintf("u%d@example.net", i)))
		b.StartTimer()
		st, err := p.Import(context.Background(), dir, ImportOptions{})
		if err != nil || st.Messages != n {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkLargeAttachment imports an mbox holding one message with a
// large attachment (TOLLBRIDGE_BENCH_MIB MiB, default 256), then exports
// it, and reports the peak Go heap in use meanwhile: it stays far below
// the message's size, as both paths stream through spools.
func BenchmarkLargeAttachment(b *testing.B) {
	mib := 256
	if v, err := strconv.Atoi(os.Getenv("TOLLBRIDGE_BENCH_MIB")); err == nil && v > 0 {
		mib = v
	}
	e := benchEnv(b, int64(mib+64)<<21)
	path := filepath.Join(b.TempDir(), "mbox")
	size := writeLargeMbox(b, path, mib)
	ctx := context.Background()
	i := 0
	var peak uint64
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		i++
		p := e.porter(b, e.addUser(fmt.Sprintf("big%d@example.net", i)))
		out := filepath.Join(b.TempDir(), "export")
		runtime.GC()
		stop := samplePeakHeap()
		b.StartTimer()
		st, err := p.Import(ctx, path, ImportOptions{})
		if err != nil || st.Messages != 1 {
			b.Fatal(st, err)
		}
		if _, err := p.Export(ctx, out); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		peak = max(peak, stop())
		os.RemoveAll(out)
		b.StartTimer()
	}
	b.ReportMetric(float64(size>>20), "msg-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size*int64(b.N))/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
}

// samplePeakHeap samples the heap in use every 10ms until the returned
// function is called, which returns the highest value seen.
func samplePeakHeap() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// writeLargeMbox writes an mbox with one message carrying mib MiB of
// random bytes as a base64 attachment, without holding it in memory, and
// returns the file's size.
func writeLargeMbox(b *testing.B, path string, mib int) int64 {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprint(w, "From alice@example.org Mon Nov 23 10:00:00 2026\nFrom: alice@example.org\nTo: bob@example.net\nSubject: big\n"+
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSee attached.\n"+
		"--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=big.bin\n\n")
	rng := rand.NewChaCha8([32]byte{1})
	raw := make([]byte, 57*1024) // 57 bytes is one 76-character line
	line := make([]byte, 77)
	for left := mib << 20; left > 0; left -= len(raw) {
		rng.Read(raw)
		chunk := raw[:min(len(raw), left)]
		for len(chunk) > 0 {
			n := min(57, len(chunk))
			m := base64.StdEncoding.EncodedLen(n)
			base64.StdEncoding.Encode(line, chunk[:n])
			line[m] = '\n'
			w.Write(line[:m+1])
			chunk = chunk[n:]
		}
	}
	fmt.Fprint(w, "--b--\n")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	info, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return info.Size()
}
