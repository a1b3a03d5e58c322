package store

import (
	"context"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"tollbridge/internal/s3test"
)

// BenchmarkBlobPut256MiB writes and reads back one 256 MiB part on each
// backend and reports the peak growth of the Go heap (live and not yet
// collected objects, sampled every millisecond) while it does: on S3 the
// upload holds one part of DefaultS3PartSize, never the whole part.
// Run with -benchtime=1x.
func BenchmarkBlobPut256MiB(b *testing.B) {
	const size = 256 << 20
	for _, backend := range blobBackends {
		b.Run(backend, func(b *testing.B) {
			s := openBenchStore(b, backend)
			b.SetBytes(size)
			var putPeak, getPeak uint64
			for i := 0; i < b.N; i++ {
				var ref BlobRef
				putPeak = max(putPeak, heapPeak(func() {
					var err error
					if ref, err = s.Blobs().Put(pattern(byte(i), size)); err != nil {
						b.Fatal(err)
					}
				}))
				getPeak = max(getPeak, heapPeak(func() {
					r, err := s.Blobs().Open(ref.Hash)
					if err != nil {
						b.Fatal(err)
					}
					defer r.Close()
					if n, err := io.Copy(io.Discard, r); n != size || err != nil {
						b.Fatalf("read %d bytes: %v", n, err)
					}
				}))
			}
			b.ReportMetric(float64(putPeak)/(1<<20), "put-peak-heap-MiB")
			b.ReportMetric(float64(getPeak)/(1<<20), "get-peak-heap-MiB")
		})
	}
}

func openBenchStore(b *testing.B, backend string) *Store {
	b.Helper()
	opts := Options{}
	if backend == "s3" {
		bk := s3test.New(b)
		opts.S3 = &S3Options{Endpoint: bk.Endpoint, Bucket: bk.Name, AccessKey: bk.AccessKey, SecretKey: bk.SecretKey}
	}
	s, err := Open(context.Background(), b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// heapPeak runs fn and returns how far the heap's objects grew above
// where they were (after a collection) before it.
func heapPeak(fn func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}
