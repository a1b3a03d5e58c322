package pow

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// WorktypeBench is one entry of "worktypes" in `bridge pow bench --json`
// (docs/rules.md §5): what one ticket of a worktype costs a sender at the
// worktype's default parameters, and what one proof costs the server.
type WorktypeBench struct {
	Name string `json:"name"`
	// SecondsPerTicketOneCore is the expected CPU time of one core to do
	// a ticket's work.
	SecondsPerTicketOneCore float64 `json:"seconds_per_ticket_one_core"`
	// VerifySecondsPerProof is the server's time to check one valid proof.
	VerifySecondsPerProof float64 `json:"verify_seconds_per_proof"`
	// PeakMemoryBytes is what one solving core holds: the solver's lists
	// for equihash, a few hundred bytes of stack for pow.
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
}

// powSolverBytes is the pow worker's state: a 40-byte input, the hash and
// the worker struct, rounded up.
const powSolverBytes = 256

// BenchWorktypes measures each worktype at the given default parameters on
// one core, for about budget each (equihash: at least one run, and until
// one proof is found). Time is the CPU time of the benchmark's own thread
// where the system reports it (Linux), so that other processes on a busy
// machine do not inflate it; elsewhere wall time. It returns early, with
// what it has, when ctx is done.
func BenchWorktypes(ctx context.Context, d Difficulty, e Equihash, budget time.Duration) []WorktypeBench {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var data Seed
	copy(data[:], "tollbridge pow bench worktypes..")
	return []WorktypeBench{benchPow(ctx, d, data, budget), benchEquihash(ctx, e, data, budget)}
}

// clock measures the calling thread's CPU time, or wall time.
type clock struct {
	wall time.Time
	cpu  time.Duration
	ok   bool
}

func startClock() clock {
	cpu, ok := threadCPU()
	return clock{wall: time.Now(), cpu: cpu, ok: ok}
}

func (c clock) seconds() float64 {
	if cpu, ok := threadCPU(); ok && c.ok {
		return (cpu - c.cpu).Seconds()
	}
	return time.Since(c.wall).Seconds()
}

// benchPow is the hot loop of the pow solver on one core: the seconds per
// ticket are d.Count·2^d.Bits hashes at the rate measured.
func benchPow(ctx context.Context, d Difficulty, data Seed, budget time.Duration) WorktypeBench {
	r := WorktypeBench{Name: Name, PeakMemoryBytes: powSolverBytes}
	in := [40]byte(append(data[:], make([]byte, 8)...))
	var hashes uint64
	began, c := time.Now(), startClock()
	for ctx.Err() == nil && (hashes == 0 || time.Since(began) < budget) {
		n, _, _ := scan(&in, MaxBits, hashes, scanChunk)
		hashes += n
	}
	if s := c.seconds(); s > 0 {
		r.SecondsPerTicketOneCore = (&Challenge{Bits: d.Bits}).ExpectedHashes(d.Count) * s / float64(hashes)
	}
	r.VerifySecondsPerProof = perCall(func() { Verify((*[32]byte)(&data), d.Bits, 0) })
	return r
}

// benchEquihash runs the equihash solver on one core: the seconds per
// ticket are count × (seconds per run ÷ proofs per run), with proofs per
// run measured but taken as 2 (the mean of Wagner's algorithm at a list of
// 2^(c+1)) until at least four runs are done, so that one lucky or
// unlucky run does not make the figure.
func benchEquihash(ctx context.Context, e Equihash, data Seed, budget time.Duration) WorktypeBench {
	c := EquihashChallenge{N: e.N, K: e.K, Data: data, Count: e.Count}
	r := WorktypeBench{Name: EquihashName, PeakMemoryBytes: EquihashRunBytes(&c)}
	run := newEquihashRun(&c)
	var hashes atomic.Uint64
	var proofs []EquihashProof
	runs := 0
	began, clk := time.Now(), startClock()
	for nonce := uint64(0); ctx.Err() == nil && (runs == 0 || len(proofs) == 0 || time.Since(began) < budget); nonce++ {
		proofs = append(proofs, run.solve(ctx, nonce, &hashes)...)
		runs++
	}
	perRun := clk.seconds() / float64(runs)
	yield := 2.0
	if runs >= 4 && len(proofs) > 0 {
		yield = float64(len(proofs)) / float64(runs)
	}
	r.SecondsPerTicketOneCore = float64(e.Count) * perRun / yield
	if len(proofs) > 0 {
		r.VerifySecondsPerProof = perCall(func() { VerifyEquihash(&c, &proofs[0]) })
	}
	return r
}

// perCall is the mean CPU time of f over about 20 ms of calls.
func perCall(f func()) float64 {
	n := 0
	began, c := time.Now(), startClock()
	for time.Since(began) < 20*time.Millisecond {
		for range 64 {
			f()
		}
		n += 64
	}
	return c.seconds() / float64(n)
}
