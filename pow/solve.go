package pow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// scanChunk is how many hashes a worker does between looks at whether it
// should stop: about a millisecond of work, so cancellation is prompt and
// the look costs nothing measurable.
const scanChunk = 1 << 14

// Solve finds distinct proofs for c on opts.Workers goroutines and calls
// submit with each batch of new ones, from one goroutine at a time, while
// the workers go on searching. It returns nil once opts.Needed (default
// c.Count) proofs have been submitted; the error of submit, wrapped, if it
// fails; or ctx's error, wrapped, if ctx is done first.
//
// Each worker scans its own range of the 2^64 proofs from a random offset,
// so two solvers of the same challenge do not find the same proofs.
func Solve(ctx context.Context, c Challenge, opts SolveOptions, submit func(proofs []uint64) error) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("pow: solve: %w", err)
	}
	needed := opts.Needed
	if needed <= 0 {
		needed = c.Count
	}
	if opts.MaxExpectedWork > 0 && c.ExpectedHashes(needed) > opts.MaxExpectedWork {
		return fmt.Errorf("pow: solve: %w: %d proofs of %d bits", ErrTooHard, needed, c.Bits)
	}
	s := newSearch((*[32]byte)(&c.Data), c.Bits, opts.Workers)
	s.start(needed)
	defer s.stop()
	return s.collect(ctx, needed, opts, submit)
}

// search is one run of workers over a challenge.
type search struct {
	data    [32]byte
	bits    int
	workers []worker
	found   chan uint64   // proofs from the workers
	done    chan struct{} // closed to stop the workers
	wg      sync.WaitGroup
	once    sync.Once
}

// worker is one goroutine's state, padded so that workers' counters do
// not share a cache line.
type worker struct {
	next   uint64        // first proof not yet tried
	hashes atomic.Uint64 // hashes done, updated every scanChunk
	_      [48]byte
}

func newSearch(data *[32]byte, bits, workers int) *search {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &search{data: *data, bits: bits, workers: make([]worker, workers), done: make(chan struct{})}
	var b [8]byte
	rand.Read(b[:])
	offset := binary.BigEndian.Uint64(b[:])
	stride := ^uint64(0)/uint64(workers) + 1
	for i := range s.workers {
		s.workers[i].next = offset + uint64(i)*stride
	}
	return s
}

// start launches the workers; found holds room for needed proofs so that
// workers rarely wait for the collector.
func (s *search) start(needed int) {
	s.found = make(chan uint64, min(needed, 1024))
	for i := range s.workers {
		s.wg.Go(func() { s.run(&s.workers[i]) })
	}
}

// stop stops the workers and waits for them; it may be called again.
func (s *search) stop() {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
}

// hashes sums the workers' counters.
func (s *search) hashes() uint64 {
	var n uint64
	for i := range s.workers {
		n += s.workers[i].hashes.Load()
	}
	return n
}

// run scans chunk after chunk until stopped, sending each proof found.
func (s *search) run(w *worker) {
	in := s.input()
	for {
		select {
		case <-s.done:
			return
		default:
		}
		proof, ok := w.step(&in, s.bits)
		if !ok {
			continue
		}
		select {
		case s.found <- proof:
		case <-s.done:
			return
		}
	}
}

// step scans the worker's next chunk, up to the first proof found.
func (w *worker) step(in *[40]byte, bits int) (proof uint64, ok bool) {
	n, proof, ok := scan(in, bits, w.next, scanChunk)
	w.next += n
	w.hashes.Add(n)
	return proof, ok
}

// input is the 40-byte hash input with the challenge data in place.
func (s *search) input() [40]byte {
	var in [40]byte
	copy(in[:32], s.data[:])
	return in
}

// scan tries up to n proofs from `from` on, stopping at the first valid
// one. It returns how many hashes it did and the proof, if one was found.
// This is the hot loop: one sha256.Sum256 of a fixed 40-byte buffer and
// one compare per proof, no allocation.
func scan(in *[40]byte, bits int, from, n uint64) (hashes, proof uint64, ok bool) {
	mask := prefixMask(bits)
	end := from + n // wraps around 2^64 together with p
	for p := from; p != end; p++ {
		binary.BigEndian.PutUint64(in[32:], p)
		h := sha256.Sum256(in[:])
		if binary.BigEndian.Uint64(h[:8])&mask == 0 && (bits <= 64 || hasZeroPrefix(&h, bits)) {
			return p - from + 1, p, true
		}
	}
	return n, 0, false
}

// collect gathers proofs into batches for submit until needed distinct
// ones are submitted, and reports progress.
func (s *search) collect(ctx context.Context, needed int, opts SolveOptions, submit func([]uint64) error) error {
	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	report := func(found int) {
		if opts.Progress != nil {
			opts.Progress(Progress{Found: found, Count: needed, Hashes: s.hashes()})
		}
	}
	seen := make(map[uint64]struct{}, needed)
	for len(seen) < needed {
		select {
		case <-ctx.Done():
			s.stop()
			report(len(seen))
			return fmt.Errorf("pow: solve: %w", context.Cause(ctx))
		case <-ticker.C:
			report(len(seen))
		case p := <-s.found:
			batch := s.batch(p, seen, needed)
			if len(seen) == needed {
				s.stop() // the last batch: spare the CPU while it is sent
			}
			if len(batch) == 0 {
				continue
			}
			if err := submit(batch); err != nil {
				s.stop()
				report(len(seen) - len(batch))
				return fmt.Errorf("pow: solve: submit: %w", err)
			}
			report(len(seen))
		}
	}
	s.stop()
	report(len(seen))
	return nil
}

// batch takes proof p and whatever else the workers have already found,
// up to needed distinct proofs in all, and marks them seen.
func (s *search) batch(p uint64, seen map[uint64]struct{}, needed int) []uint64 {
	var batch []uint64
	for {
		if _, dup := seen[p]; !dup && len(seen) < needed {
			seen[p] = struct{}{}
			batch = append(batch, p)
		}
		select {
		case p = <-s.found:
		default:
			return batch
		}
	}
}
