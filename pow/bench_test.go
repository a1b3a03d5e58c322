package pow

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

func TestBenchWorktypes(t *testing.T) {
	t.Parallel()
	got := BenchWorktypes(t.Context(), Difficulty{Bits: 10, Count: 4}, Equihash{N: 60, K: 5, Count: 2}, 10*time.Millisecond)
	if len(got) != 2 || got[0].Name != "pow" || got[1].Name != "equihash" {
		t.Fatalf("BenchWorktypes = %+v, want pow and equihash", got)
	}
	for _, w := range got {
		if w.SecondsPerTicketOneCore <= 0 || w.VerifySecondsPerProof <= 0 || w.PeakMemoryBytes <= 0 {
			t.Errorf("%s: a figure is missing: %+v", w.Name, w)
		}
	}
	if want := EquihashRunBytes(&EquihashChallenge{N: 60, K: 5}); got[1].PeakMemoryBytes != want {
		t.Errorf("equihash peak memory %d, want the run's %d", got[1].PeakMemoryBytes, want)
	}
	raw, _ := json.Marshal(BenchResult{Worktypes: got})
	for _, key := range []string{`"worktypes":[{"name":"pow","seconds_per_ticket_one_core":`, `"verify_seconds_per_proof":`, `"peak_memory_bytes":`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("%s lacks %s", raw, key)
		}
	}
}

// TestEquihashRunBytesIsWhatARunAllocates holds the peak memory that
// `bridge pow bench` reports to the solver's real allocation.
func TestEquihashRunBytesIsWhatARunAllocates(t *testing.T) {
	c := EquihashChallenge{N: 96, K: 5}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := newEquihashRun(&c)
	runtime.ReadMemStats(&after)
	got, want := int64(after.TotalAlloc-before.TotalAlloc), EquihashRunBytes(&c)
	if got < want || got > want+want/8 {
		t.Errorf("a run allocates %d bytes, EquihashRunBytes says %d", got, want)
	}
	runtime.KeepAlive(r)
}

// BenchmarkEquihashRun is one run of the solver (one nonce) at the default
// parameters on one core; proofs/op is its yield, cpu-s/op the thread's
// CPU time (Linux), which a busy machine inflates less than ns/op.
func BenchmarkEquihashRun(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := EquihashChallenge{N: DefaultEquihash.N, K: DefaultEquihash.K, Data: Seed(*seq()), Count: 1}
	r := newEquihashRun(&c)
	var hashes atomic.Uint64
	found := 0
	nonce := uint64(0)
	clk := startClock()
	for b.Loop() {
		found += len(r.solve(b.Context(), nonce, &hashes))
		nonce++
	}
	b.ReportMetric(clk.seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(found)/float64(b.N), "proofs/op")
	b.ReportMetric(float64(EquihashRunBytes(&c)), "bytes/run")
}
