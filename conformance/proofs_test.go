package conformance_test

import (
	"math"
	"testing"
	"time"
)

// workTicket asks for a ticket that needs work and returns its id and
// challenge.
func (s *site) workTicket(m *sealed) (string, challenge) {
	s.t.Helper()
	tk := s.request(m.ticketRequest(hashAddr(s.t, "mallory@example.org"), s.bob.AddressHash))
	if v, _ := tk["valid"].(bool); v {
		s.t.Fatalf("unknown sender's ticket is valid at once: %v", tk)
	}
	return str(s.t, tk, "ticket_id"), challengeOf(s.t, tk)
}

// remaining checks a 200 proof answer for a ticket that is not yet valid.
func remaining(t *testing.T, what string, r *reply, want int64) {
	t.Helper()
	if v, _ := r.obj["valid"].(bool); v {
		t.Fatalf("%s: ticket valid with %d proofs still to go: %v", what, want, r.obj)
	}
	if _, ok := r.obj["remaining"]; !ok {
		t.Errorf("%s: no \"remaining\" (docs/protocol.md §3.6 \"remaining appears in proof answers while the ticket is not yet valid\"): %s", what, r.body)
		return
	}
	if got := num(t, r.obj, "remaining"); got != want {
		t.Errorf("%s: remaining %d, want %d", what, got, want)
	}
}

// TestProofBitOrder: §3.2 h = SHA-256(d || uint64_big_endian(p)) and §3.6
// "bits are counted from the most significant bit of byte 0".
func TestProofBitOrder(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 12, count: 2})
	id, c := s.workTicket(s.sample(nil))
	path := "/v1/tickets/" + id
	// Byte 0 zero and the low nibble of byte 1 zero, but its high nibble
	// not: 12 zero bits only if bits were counted from the least
	// significant end of each byte.
	lsb := c.find(t, 0, true, 1, nil, func(_ uint64, h [32]byte) bool { return h[0] == 0 && h[1]&0x0f == 0 && h[1]>>4 != 0 })
	r := s.api.check(422, "POST", path, proofsBody(lsb...), `§3.6 bits "counted from the most significant bit of byte 0"`)
	if r.status == 422 {
		sameChallenge(t, r, c)
	}
	// The last 12 bits of h zero, the first not.
	tail := c.find(t, 0, true, 1, nil, func(_ uint64, h [32]byte) bool { return h[31] == 0 && h[30]&0x0f == 0 && h[0] != 0 })
	s.api.check(422, "POST", path, proofsBody(tail...), "zero bits at the end of the hash")
	// Little-endian p.
	le := c.find(t, 1, true, 1, nil, func(p uint64, _ [32]byte) bool {
		return zeroBits(powHash(c.data, swap64(p))) >= c.bits && !c.solves(p)
	})
	s.api.check(422, "POST", path, proofsBody(le...), `§3.2 "uint64_big_endian(p)"`)

	good := c.solve(t, 1, nil)
	remaining(t, "one valid proof", s.api.expect(200, "POST", path, proofsBody(good...)), 1)
}

func swap64(p uint64) uint64 {
	var r uint64
	for i := 0; i < 8; i++ {
		r = r<<8 | p&0xff
		p >>= 8
	}
	return r
}

// sameChallenge checks a 422's "same challenge" (§3.2 "A wrong proof gets
// 422 and the same challenge").
func sameChallenge(t *testing.T, r *reply, c challenge) {
	t.Helper()
	if _, ok := r.obj["pow"]; !ok {
		t.Errorf("422 without the challenge (§3.2 \"A wrong proof gets 422 and the same challenge\"): %s", r.body)
		return
	}
	got := challengeOf(t, r.obj)
	if got.b64 != c.b64 || got.bits != c.bits || got.count != c.count {
		t.Errorf("422 challenge %+v, want the same challenge %+v", got, c)
	}
}

// TestProofCounting: partial posts, remaining, duplicates, a post holding
// a wrong proof counting none, large proofs, and the expiry restart.
func TestProofCounting(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 10, count: 5})
	start := s.clock.Now()
	id, c := s.workTicket(s.sample(nil))
	path := "/v1/tickets/" + id
	ps := c.solve(t, 3, nil)

	remaining(t, "first proof", s.api.expect(200, "POST", path, proofsBody(ps[0])), 4)
	remaining(t, "the same proof again", s.api.expect(200, "POST", path, proofsBody(ps[0])), 4)
	remaining(t, "one new proof twice in a post", s.api.expect(200, "POST", path, proofsBody(ps[1], ps[1], ps[0])), 3)

	// A post holding a wrong proof counts none of its proofs.
	wrong := c.find(t, 0, true, 1, nil, func(p uint64, h [32]byte) bool { return zeroBits(h) < c.bits })
	r := s.api.check(422, "POST", path, proofsBody(ps[2], wrong[0]), `§3.6 "A post holding any wrong proof counts none of its proofs (422, same challenge)"`)
	if r.status == 422 {
		sameChallenge(t, r, c)
	}
	remaining(t, "the good proof of the refused post, alone", s.api.expect(200, "POST", path, proofsBody(ps[2])), 2)

	// Proofs beyond 2^53 must not go through float64 (§3.6).
	big := c.find(t, math.MaxUint64, false, 1, nil, func(p uint64, h [32]byte) bool {
		f := float64(p)
		rounded := uint64(math.MaxUint64)
		if f < 1<<64 {
			rounded = uint64(f)
		}
		return zeroBits(h) >= c.bits && rounded != p && !c.solves(rounded)
	})
	remaining(t, "a valid proof near 2^64", s.api.check(200, "POST", path, proofsBody(big...), `§3.6 "Proofs are JSON integers in [0, 2^64); decoders must not go through floating point"`), 1)

	// Values that are not integers in [0, 2^64) are refused and count nothing.
	for _, bad := range []string{`1.0`, `-1`, `"7"`, `18446744073709551616`, `1e3`} {
		r := s.api.send("POST", path, []byte(`{"pow": {"proofs": [`+bad+`]}}`))
		if r.status != 400 && r.status != 422 {
			t.Errorf("proof %s: HTTP %d, want 400 or 422: %s", bad, r.status, r.body)
		}
		checkErrorBody(t, "proof "+bad, r)
	}

	// The last proof, 20 minutes in: valid, and the expiry restarts.
	s.clock.Add(20 * time.Minute)
	last := c.solve(t, 1, map[uint64]bool{ps[0]: true, ps[1]: true, ps[2]: true, big[0]: true})
	r = s.api.expect(200, "POST", path, proofsBody(last...))
	if v, _ := r.obj["valid"].(bool); !v {
		t.Fatalf("all %d proofs counted, ticket not valid: %s", c.count, r.body)
	}
	wantExp := s.clock.Now().Add(expiry).Unix()
	if got := num(t, r.obj, "expires"); got != wantExp {
		t.Errorf("expires %d, want now + expiry = %d (§3.6 \"When a ticket becomes valid its expiry restarts\")", got, wantExp)
	}
	// Past the first expiry the ticket is still usable...
	s.clock.Set(start.Add(expiry + 5*time.Minute))
	m := s.sample(nil)
	s.api.check(200, "PUT", path+"/catalog", m.catalog, "upload after the original expiry, before the restarted one")
	// ...until the restarted expiry: "expired when now ≥ expires".
	s.clock.Set(time.Unix(wantExp, 0))
	s.api.check(410, "PUT", path+"/catalog", m.catalog, `§3.6 "a ticket is expired when now ≥ expires"`)
	s.api.check(410, "POST", path, proofsBody(ps[0]), "proofs on an expired ticket")
}
