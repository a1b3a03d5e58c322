package pow

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBench(t *testing.T) {
	t.Parallel()
	r := Bench(t.Context(), 30*time.Millisecond)
	if r.Cores != runtime.GOMAXPROCS(0) {
		t.Errorf("cores %d, want GOMAXPROCS %d", r.Cores, runtime.GOMAXPROCS(0))
	}
	if r.HashesPerSecond <= 0 || r.HashesPerSecondPerCore <= 0 {
		t.Errorf("no hashes measured: %+v", r)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cores":`, `"hashes_per_second":`, `"hashes_per_second_per_core":`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("%s lacks %s", raw, key)
		}
	}
	t.Logf("%s", raw)
}

func TestBenchStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := Bench(ctx, time.Hour) // returns at once: ctx is already done
	if r.Cores != runtime.GOMAXPROCS(0) {
		t.Errorf("cores %d", r.Cores)
	}
}

// BenchmarkSHA256Bare is the yardstick: sha256.Sum256 of 40 bytes in a
// loop, nothing else (b.Loop keeps the compiler from dropping the call).
func BenchmarkSHA256Bare(b *testing.B) {
	var in [40]byte
	copy(in[:], seq()[:])
	for b.Loop() {
		sha256.Sum256(in[:])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkSolverPerCore runs one solver worker's loop (chunks of the hot
// loop with its counter updates) on an unsolvable challenge; one op is
// one hash.
func BenchmarkSolverPerCore(b *testing.B) {
	s := newSearch(seq(), MaxBits, 1)
	w := &s.workers[0]
	in := s.input()
	b.ResetTimer()
	for w.hashes.Load() < uint64(b.N) {
		w.step(&in, s.bits)
	}
	b.StopTimer()
	b.ReportMetric(float64(w.hashes.Load())/b.Elapsed().Seconds(), "hashes/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(w.hashes.Load()), "ns/op")
}

// BenchmarkSolverAllCores runs GOMAXPROCS workers side by side; one op is
// one hash, so ns/op falls as cores are added.
func BenchmarkSolverAllCores(b *testing.B) {
	workers := runtime.GOMAXPROCS(0)
	s := newSearch(seq(), MaxBits, workers)
	per := uint64(b.N/workers + 1)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range s.workers {
		wg.Go(func() {
			w := &s.workers[i]
			in := s.input()
			for w.hashes.Load() < per {
				w.step(&in, s.bits)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	total := float64(s.hashes())
	b.ReportMetric(total/b.Elapsed().Seconds(), "hashes/s")
	b.ReportMetric(total/b.Elapsed().Seconds()/float64(workers), "hashes/s/core")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/op")
}

// BenchmarkVerify checks one proof per op, as a server does for each proof
// posted.
func BenchmarkVerify(b *testing.B) {
	d := seq()
	var p uint64
	ok := 0
	for b.Loop() {
		if Verify(d, 8, p) {
			ok++
		}
		p++
	}
	if ok == 0 && b.N > 10000 {
		b.Fatal("no proof verified")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
}

// BenchmarkCheck is the server's whole job for one post of four proofs:
// parse the stored challenge and the submission, verify, make keys.
func BenchmarkCheck(b *testing.B) {
	challenge := seqChallenge(b, 8)
	sub := json.RawMessage(`{"proofs":[537,1755,13402,537]}`)
	for b.Loop() {
		if _, err := (HashWork{}).Check(challenge, sub); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(4*float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
}

// BenchmarkBench runs the CLI's measurement for one second per op.
func BenchmarkBench(b *testing.B) {
	for b.Loop() {
		r := Bench(b.Context(), time.Second)
		b.ReportMetric(r.HashesPerSecond, "hashes/s")
		b.ReportMetric(r.HashesPerSecondPerCore, "hashes/s/core")
	}
}

// BenchmarkSolverVsBare interleaves a solver chunk and a bare loop of as
// many sha256.Sum256 calls, about a millisecond each, so that load from
// other processes hits both alike; it reports solver speed over bare speed.
func BenchmarkSolverVsBare(b *testing.B) {
	s := newSearch(seq(), MaxBits, 1)
	w := &s.workers[0]
	in := s.input()
	bare := s.input()
	var solverTime, bareTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		w.step(&in, s.bits)
		t1 := time.Now()
		for range scanChunk {
			sha256.Sum256(bare[:])
		}
		t2 := time.Now()
		solverTime += t1.Sub(t0)
		bareTime += t2.Sub(t1)
	}
	b.ReportMetric(bareTime.Seconds()/solverTime.Seconds(), "solver/bare")
	b.ReportMetric(float64(w.hashes.Load())/solverTime.Seconds(), "solver-hashes/s")
	b.ReportMetric(float64(b.N*scanChunk)/bareTime.Seconds(), "bare-hashes/s")
}
