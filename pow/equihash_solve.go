package pow

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// maxSolverBytes bounds what the workers of one SolveEquihash hold
// together: fewer workers run when their lists would take more (one always
// runs).
const maxSolverBytes = 512 << 20

// maxBucket bounds the strings paired within one bucket: a bucket holds
// two on average, and a crowded one would cost time quadratic in its size
// for proofs the next rounds mostly discard.
const maxBucket = 16

// SolveEquihash finds distinct proofs for c and calls submit with each
// batch of new ones, from one goroutine at a time. Each of opts.Workers
// goroutines runs Wagner's algorithm on nonces of its own (a random start,
// then every Workers-th), each with its own lists of
// [EquihashRunBytes] bytes; fewer run when they would hold more than
// 512 MiB together. It returns nil once opts.Needed (default
// c.Count) proofs have been submitted; the error of submit, wrapped; or
// ctx's error, wrapped.
func SolveEquihash(ctx context.Context, c EquihashChallenge, opts SolveOptions, submit func([]EquihashProof) error) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("equihash: solve: %w", err)
	}
	needed := opts.Needed
	if needed <= 0 {
		needed = c.Count
	}
	if opts.MaxExpectedWork > 0 && c.ExpectedWork(needed) > opts.MaxExpectedWork {
		return fmt.Errorf("equihash: solve: %w: %d proofs at n %d, k %d", ErrTooHard, needed, c.N, c.K)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, int(maxSolverBytes/EquihashRunBytes(&c))))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	found := make(chan EquihashProof, 8)
	var hashes atomic.Uint64
	var b [8]byte
	rand.Read(b[:])
	start := binary.BigEndian.Uint64(b[:])
	for w := range workers {
		wg.Go(func() {
			run := newEquihashRun(&c)
			for nonce := start + uint64(w); ctx.Err() == nil; nonce += uint64(workers) {
				for _, p := range run.solve(ctx, nonce, &hashes) {
					select {
					case found <- p:
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}
	return collectEquihash(ctx, needed, opts, &hashes, found, submit)
}

// collectEquihash gathers proofs into batches for submit until needed
// distinct ones are submitted, and reports progress.
func collectEquihash(ctx context.Context, needed int, opts SolveOptions, hashes *atomic.Uint64, found <-chan EquihashProof, submit func([]EquihashProof) error) error {
	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	seen := make(map[string]bool, needed)
	report := func() {
		if opts.Progress != nil {
			opts.Progress(Progress{Found: len(seen), Count: needed, Hashes: hashes.Load()})
		}
	}
	defer report()
	for len(seen) < needed {
		select {
		case <-ctx.Done():
			return fmt.Errorf("equihash: solve: %w", context.Cause(ctx))
		case <-ticker.C:
			report()
		case p := <-found:
			batch := []EquihashProof{p}
			for more := true; more && len(batch) < needed-len(seen); {
				select {
				case q := <-found:
					batch = append(batch, q)
				default:
					more = false
				}
			}
			batch = freshProofs(batch, seen, needed)
			if len(batch) == 0 {
				continue
			}
			if err := submit(batch); err != nil {
				return fmt.Errorf("equihash: solve: submit: %w", err)
			}
			report()
		}
	}
	return nil
}

// freshProofs keeps the proofs of batch not yet seen, up to needed in all, and
// marks them seen.
func freshProofs(batch []EquihashProof, seen map[string]bool, needed int) []EquihashProof {
	out := batch[:0]
	for _, p := range batch {
		if k := p.Key(); !seen[k] && len(seen) < needed {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// equihashRun is one worker's lists, reused from nonce to nonce.
type equihashRun struct {
	c         EquihashChallenge
	cur, next [][2]uint64 // the strings of this round's list and the next
	refs      [][]uint32  // refs[l][2i], refs[l][2i+1]: entry i of level l's parents in level l-1
	counts    []uint32    // per bucket, then bucket starts
	order     []uint32    // this round's list, positions sorted by bucket
}

// equihashListCap is the room of each list: a list keeps 2^(c+1) entries on
// average; the few beyond an eighth more are dropped.
func equihashListCap(c *EquihashChallenge) int {
	n := 1 << (c.C() + 1)
	return n + n/8
}

// EquihashRunBytes is the memory one solver worker holds for c: two lists
// of 16-byte strings, k-1 levels of 8-byte parent references, the sort's
// positions and 2^c bucket counters.
func EquihashRunBytes(c *EquihashChallenge) int64 {
	capacity := int64(equihashListCap(c))
	return capacity*(2*16+int64(c.K-1)*8+4) + 4<<c.C()
}

func newEquihashRun(c *EquihashChallenge) *equihashRun {
	capacity := equihashListCap(c)
	r := &equihashRun{
		c:      *c,
		cur:    make([][2]uint64, 0, capacity),
		next:   make([][2]uint64, 0, capacity),
		refs:   make([][]uint32, c.K),
		counts: make([]uint32, 1<<c.C()),
		order:  make([]uint32, capacity),
	}
	for l := 1; l < c.K; l++ {
		r.refs[l] = make([]uint32, 0, 2*capacity)
	}
	return r
}

// solve runs Wagner's algorithm on one nonce and returns the proofs found
// (none when ctx is done).
func (r *equihashRun) solve(ctx context.Context, nonce uint64, hashes *atomic.Uint64) []EquihashProof {
	if !r.generate(ctx, nonce, hashes) {
		return nil
	}
	for l := 1; l < r.c.K; l++ {
		if ctx.Err() != nil {
			return nil
		}
		r.collide(l)
	}
	return r.final(nonce)
}

// generate fills level 0: X(nonce, i) for every i below 2^(c+1).
func (r *equihashRun) generate(ctx context.Context, nonce uint64, hashes *atomic.Uint64) bool {
	n := uint32(1) << (r.c.C() + 1)
	r.cur = r.cur[:0]
	for i := range n {
		if i%(1<<14) == 0 && i > 0 {
			hashes.Add(1 << 14)
			if ctx.Err() != nil {
				return false
			}
		}
		r.cur = append(r.cur, equihashString((*[32]byte)(&r.c.Data), nonce, i, r.c.N))
	}
	hashes.Add(uint64(n % (1 << 14)))
	return true
}

// chunk is the collision chunk of level l (0-based) of x: bits
// [l·c, (l+1)·c) counted from the most significant.
func (r *equihashRun) chunk(x [2]uint64, l int) uint32 {
	off, width := l*r.c.C(), r.c.C()
	var v uint64
	if off < 64 {
		v = x[0]<<off | x[1]>>(64-off)
	} else {
		v = x[1] << (off - 64)
	}
	return uint32(v >> (64 - width))
}

// sort orders the current list's positions by the chunk of level l (a
// counting sort into r.order) and leaves bucket starts in r.counts.
func (r *equihashRun) sort(l int) {
	clear(r.counts)
	for _, x := range r.cur {
		r.counts[r.chunk(x, l)]++
	}
	var sum uint32
	for b, n := range r.counts {
		r.counts[b] = sum
		sum += n
	}
	for i, x := range r.cur {
		b := r.chunk(x, l)
		r.order[r.counts[b]] = uint32(i)
		r.counts[b]++
	}
	// counts[b] is now the end of bucket b, which is the start of b+1.
}

// buckets calls f with each bucket of the sorted list (at most maxBucket
// positions of it).
func (r *equihashRun) buckets(f func(bucket []uint32)) {
	var start uint32
	for _, end := range r.counts {
		if end-start >= 2 {
			f(r.order[start:min(end, start+maxBucket)])
		}
		start = end
	}
}

// collide makes level l from level l-1 (in r.cur): every pair equal in
// chunk l-1 gives their XOR, with the pair's positions as its parents.
// A pair XORing to zero altogether is dropped: it can only lead to
// repeated indices.
func (r *equihashRun) collide(l int) {
	r.sort(l - 1)
	r.next = r.next[:0]
	refs := r.refs[l][:0]
	r.buckets(func(bucket []uint32) {
		for i, a := range bucket {
			for _, b := range bucket[i+1:] {
				x := [2]uint64{r.cur[a][0] ^ r.cur[b][0], r.cur[a][1] ^ r.cur[b][1]}
				if x == [2]uint64{} || len(r.next) == cap(r.next) {
					continue
				}
				r.next = append(r.next, x)
				refs = append(refs, a, b)
			}
		}
	})
	r.refs[l] = refs
	r.cur, r.next = r.next, r.cur
}

// final collides level k-1 on its last two chunks and returns each pair's
// index tree when its indices are distinct.
func (r *equihashRun) final(nonce uint64) []EquihashProof {
	var proofs []EquihashProof
	last := r.c.K - 1
	r.sort(last)
	r.buckets(func(bucket []uint32) {
		for i, a := range bucket {
			for _, b := range bucket[i+1:] {
				if r.cur[a] != r.cur[b] {
					continue
				}
				p := EquihashProof{Nonce: nonce, Indices: r.pair(last, a, b)}
				if VerifyEquihash(&r.c, &p) == nil {
					proofs = append(proofs, p)
				}
			}
		}
	})
	return proofs
}

// pair is the ordered index list of the tree whose children are entries a
// and b of level l.
func (r *equihashRun) pair(l int, a, b uint32) []uint32 {
	left, right := r.expand(l, a), r.expand(l, b)
	if left[0] > right[0] {
		left, right = right, left
	}
	return append(left, right...)
}

// expand is the ordered index list of entry i of level l.
func (r *equihashRun) expand(l int, i uint32) []uint32 {
	if l == 0 {
		return []uint32{i}
	}
	return r.pair(l-1, r.refs[l][2*i], r.refs[l][2*i+1])
}
