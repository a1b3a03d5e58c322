package pow

import (
	"context"
	"crypto/rand"
	"runtime"
	"time"
)

// BenchResult is what `bridge pow bench --json` prints (docs/rules.md §5).
type BenchResult struct {
	Cores                  int     `json:"cores"`
	HashesPerSecond        float64 `json:"hashes_per_second"`
	HashesPerSecondPerCore float64 `json:"hashes_per_second_per_core"`
	// Worktypes is filled by [BenchWorktypes] (version 1.1).
	Worktypes []WorktypeBench `json:"worktypes,omitempty"`
}

// Bench runs the solver's workers on every core (runtime.GOMAXPROCS(0))
// for d, or until ctx is done if that comes first, on a challenge no proof
// solves, and reports the hash rate. d ≤ 0 means one second.
func Bench(ctx context.Context, d time.Duration) BenchResult {
	if d <= 0 {
		d = time.Second
	}
	var data [32]byte
	rand.Read(data[:])
	cores := runtime.GOMAXPROCS(0)
	s := newSearch(&data, MaxBits, cores)
	timer := time.NewTimer(d)
	defer timer.Stop()
	began := time.Now()
	s.start(1)
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	s.stop()
	elapsed := time.Since(began).Seconds()
	r := BenchResult{Cores: cores}
	if elapsed > 0 {
		r.HashesPerSecond = float64(s.hashes()) / elapsed
		r.HashesPerSecondPerCore = r.HashesPerSecond / float64(cores)
	}
	return r
}
