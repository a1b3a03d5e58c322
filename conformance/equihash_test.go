package conformance_test

// The memory-hard worktype "equihash" (docs/protocol.md §3.8.1), with this
// suite's own reading of the rules: strings as math/big integers, a
// verifier written from the text, and a solver for k = 2 that pairs
// strings through maps. The vector test also holds tollbridge's pow
// package to the vector.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"tollbridge/pow"
)

// eqChallenge is the "equihash" object of a ticket answer.
type eqChallenge struct {
	n, k, count int
	data        [32]byte
}

func (c eqChallenge) c() int { return c.n / (c.k + 1) }

// eqProof is one proof: {"nonce": v, "indices": [...]}.
type eqProof struct {
	Nonce   uint64   `json:"nonce"`
	Indices []uint32 `json:"indices"`
}

// eqChallengeOf reads an untrusted ticket answer's equihash challenge.
func eqChallengeOf(t testing.TB, ticket map[string]any) eqChallenge {
	t.Helper()
	if wt, _ := ticket["worktype"].(string); wt != "equihash" {
		t.Fatalf("ticket worktype %v, want \"equihash\" (docs/protocol.md §3.8); ticket %v", ticket["worktype"], ticket)
	}
	o, ok := ticket["equihash"].(map[string]any)
	if !ok {
		t.Fatalf("ticket has no \"equihash\" object (docs/protocol.md §3.8.1): %v", ticket)
	}
	c := eqChallenge{n: int(num(t, o, "n")), k: int(num(t, o, "k")), count: int(num(t, o, "count"))}
	d, err := base64.StdEncoding.DecodeString(str(t, o, "data"))
	if err != nil || len(d) != 32 {
		t.Fatalf("equihash.data is not base64 of 32 bytes: %v", o)
	}
	copy(c.data[:], d)
	return c
}

// eqInput is SHA-256's input for string i of nonce v: d ‖ uint64_be(v) ‖
// uint32_be(i).
func eqInput(data [32]byte, v uint64, i uint32) []byte {
	in := binary.BigEndian.AppendUint64(append([]byte(nil), data[:]...), v)
	return binary.BigEndian.AppendUint32(in, i)
}

// eqString is X(v, i): the first n bits of the hash, as an integer.
func eqString(data [32]byte, n int, v uint64, i uint32) *big.Int {
	h := sha256.Sum256(eqInput(data, v, i))
	x := new(big.Int).SetBytes(h[:])
	return x.Rsh(x, uint(256-n))
}

// eqCheck applies §3.8.1's rules to a proof, in the text's order.
func eqCheck(c eqChallenge, p eqProof) error {
	if len(p.Indices) != 1<<c.k {
		return fmt.Errorf("%d indices, want 2^k", len(p.Indices))
	}
	seen := map[uint32]bool{}
	for _, i := range p.Indices {
		if i >= 1<<(c.c()+1) || seen[i] {
			return fmt.Errorf("index %d out of range or repeated", i)
		}
		seen[i] = true
	}
	for l := 1; l <= c.k; l++ {
		size := 1 << l
		for j := 0; j < len(p.Indices); j += size {
			if p.Indices[j] >= p.Indices[j+size/2] {
				return fmt.Errorf("level %d block at %d: halves out of order", l, j)
			}
			x := new(big.Int)
			for _, i := range p.Indices[j : j+size] {
				x.Xor(x, eqString(c.data, c.n, p.Nonce, i))
			}
			zero := l * c.c()
			if l == c.k {
				zero = c.n
			}
			if x.Rsh(x, uint(c.n-zero)).Sign() != 0 {
				return fmt.Errorf("level %d block at %d: XOR lacks %d leading zero bits", l, j, zero)
			}
		}
	}
	return nil
}

// eqSolveK2 finds n proofs of a k = 2 challenge: pairs of strings equal in
// their first c bits, grouped by their XOR; two disjoint pairs of a group
// are a proof, the pair with the smaller first index on the left.
func eqSolveK2(t testing.TB, c eqChallenge, n int) []eqProof {
	t.Helper()
	if c.k != 2 {
		t.Fatalf("eqSolveK2 on k = %d", c.k)
	}
	var out []eqProof
	for v := uint64(0); v < 1000 && len(out) < n; v++ {
		size := uint32(1) << (c.c() + 1)
		xs := make([]*big.Int, size)
		byTop := map[string][]uint32{}
		for i := range size {
			xs[i] = eqString(c.data, c.n, v, i)
			top := new(big.Int).Rsh(xs[i], uint(c.n-c.c())).String()
			byTop[top] = append(byTop[top], i)
		}
		byXor := map[string][][2]uint32{}
		for _, group := range byTop {
			for a := range group {
				for b := a + 1; b < len(group); b++ {
					x := new(big.Int).Xor(xs[group[a]], xs[group[b]]).String()
					byXor[x] = append(byXor[x], [2]uint32{min(group[a], group[b]), max(group[a], group[b])})
				}
			}
		}
		for _, pairs := range byXor {
			for a := range pairs {
				for b := a + 1; b < len(pairs) && len(out) < n; b++ {
					p, q := pairs[a], pairs[b]
					if p[0] == q[0] || p[0] == q[1] || p[1] == q[0] || p[1] == q[1] {
						continue
					}
					if q[0] < p[0] {
						p, q = q, p
					}
					out = append(out, eqProof{Nonce: v, Indices: []uint32{p[0], p[1], q[0], q[1]}})
				}
			}
		}
	}
	if len(out) < n {
		t.Fatalf("found %d equihash proofs in 1000 nonces, want %d", len(out), n)
	}
	return out
}

// eqPost is a proof post: {"equihash": {"proofs": [...]}}.
func eqPost(ps ...eqProof) []byte {
	b, _ := json.Marshal(map[string]any{"equihash": map[string]any{"proofs": ps}})
	return b
}

// TestEquihashAtServer: §3.8 the server offers equihash to a sender that
// lists it, pow to one that does not; §3.8.1 with §3.2.2: a post with a
// wrong proof (halves out of order, another nonce) is a 422 with the same
// challenge and counts none; a proof counts once; more than 64 proofs in
// a post is a 400; count distinct proofs make the ticket valid.
func TestEquihashAtServer(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1, equihash: true})
	m := s.sample(nil)
	if tk := s.request(m.ticketRequest(hashAddr(t, "mallory@example.org"), s.bob.AddressHash)); tk["worktype"] != "pow" {
		t.Errorf("a sender listing only pow got %v", tk)
	}
	var q map[string]any
	if err := json.Unmarshal(m.ticketRequest(hashAddr(t, "mallory@example.org"), s.bob.AddressHash), &q); err != nil {
		t.Fatal(err)
	}
	q["preference"] = []string{"pow", "equihash"}
	body, _ := json.Marshal(q)
	tk := s.request(body)
	c := eqChallengeOf(t, tk)
	path := "/v1/tickets/" + str(t, tk, "ticket_id")
	proofs := eqSolveK2(t, c, 2)
	good := proofs[0]
	swapped := eqProof{Nonce: good.Nonce, Indices: append(append([]uint32(nil), good.Indices[2:]...), good.Indices[:2]...)}
	other := eqProof{Nonce: good.Nonce + 1, Indices: good.Indices}
	for what, bad := range map[string]eqProof{"halves out of order": swapped, "another nonce": other} {
		r := s.api.check(422, "POST", path, eqPost(good, bad), "§3.8.1 "+what)
		if r.status == 422 && eqChallengeOf(t, r.obj).data != c.data {
			t.Errorf("422 for %s without the same challenge: %s", what, r.body)
		}
	}
	remaining(t, "one proof, twice in a post", s.api.expect(200, "POST", path, eqPost(good, good)), int64(c.count-1))
	remaining(t, "the same proof again", s.api.expect(200, "POST", path, eqPost(good)), int64(c.count-1))
	many := make([]eqProof, 65)
	for i := range many {
		many[i] = proofs[1]
	}
	s.api.check(400, "POST", path, eqPost(many...), "§3.8.1 at most 64 proofs a post")
	r := s.api.expect(200, "POST", path, eqPost(proofs[1]))
	if v, _ := r.obj["valid"].(bool); !v {
		t.Errorf("ticket not valid after %d distinct proofs: %s", c.count, r.body)
	}
}

// ---- (e) equihash vector ---------------------------------------------------

// eqVector is equihash.json: a challenge, two proofs that solve it, three
// that do not (each says why), and one string written out.
type eqVector struct {
	Data     string      `json:"data"`
	DataHex  string      `json:"data_hex"`
	N        int         `json:"n"`
	K        int         `json:"k"`
	Count    int         `json:"count"`
	Valid    []eqProof   `json:"valid"`
	Invalid  []eqInvalid `json:"invalid"`
	StringOf struct {
		Nonce  uint64 `json:"nonce"`
		Index  uint32 `json:"index"`
		Input  string `json:"input_hex"`
		SHA256 string `json:"sha256"`
		X      string `json:"x_hex"`
	} `json:"string_of"`
}

// eqInvalid is a proof that does not solve the vector's challenge.
type eqInvalid struct {
	Why   string  `json:"why"`
	Proof eqProof `json:"proof"`
}

// makeEquihashVector solves n 64, k 3 (eight indices a proof) with tollbridge's solver (the
// vector pins it) on data 0x00…0x1f.
func makeEquihashVector(t *testing.T) {
	c := pow.EquihashChallenge{N: 64, K: 3, Count: 2}
	for i := range c.Data {
		c.Data[i] = byte(i)
	}
	var found []pow.EquihashProof
	err := pow.SolveEquihash(t.Context(), c, pow.SolveOptions{Workers: 1}, func(ps []pow.EquihashProof) error {
		found = append(found, ps...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v := eqVector{Data: base64.StdEncoding.EncodeToString(c.Data[:]), DataHex: hex.EncodeToString(c.Data[:]), N: c.N, K: c.K, Count: c.Count}
	for _, p := range found {
		v.Valid = append(v.Valid, eqProof{Nonce: p.Nonce, Indices: p.Indices})
	}
	g := v.Valid[0]
	half := len(g.Indices) / 2
	for why, p := range map[string]eqProof{
		"the halves of the whole tree swapped: every XOR still zero, the order rule broken at level k": {Nonce: g.Nonce, Indices: append(append([]uint32(nil), g.Indices[half:]...), g.Indices[:half]...)},
		"the first two indices swapped: the order rule broken at level 1":                              {Nonce: g.Nonce, Indices: append([]uint32{g.Indices[1], g.Indices[0]}, g.Indices[2:]...)},
		"the nonce plus one": {Nonce: g.Nonce + 1, Indices: g.Indices},
	} {
		v.Invalid = append(v.Invalid, eqInvalid{why, p})
	}
	// By reason, so that -update writes the same file for the same proofs.
	slices.SortFunc(v.Invalid, func(a, b eqInvalid) int { return strings.Compare(a.Why, b.Why) })
	v.StringOf.Nonce, v.StringOf.Index = g.Nonce, g.Indices[0]
	in := eqInput(c.Data, g.Nonce, g.Indices[0])
	h := sha256.Sum256(in)
	v.StringOf.Input, v.StringOf.SHA256, v.StringOf.X = hex.EncodeToString(in), hex.EncodeToString(h[:]), hex.EncodeToString(h[:c.N/8])
	writeJSONVector(t, "equihash.json", v)
}

// TestVectorsEquihash checks equihash.json (§3.8.1) with this suite's
// verifier and with tollbridge's pow package, which is what a server runs.
func TestVectorsEquihash(t *testing.T) {
	startVectorTest(t)
	if *update {
		makeEquihashVector(t)
	}
	var v eqVector
	if err := json.Unmarshal(readVector(t, "equihash.json"), &v); err != nil {
		t.Fatal(err)
	}
	c := eqChallenge{n: v.N, k: v.K, count: v.Count}
	hex.Decode(c.data[:], []byte(v.DataHex))
	if base64.StdEncoding.EncodeToString(c.data[:]) != v.Data {
		t.Errorf("data and data_hex differ")
	}
	pc := pow.EquihashChallenge{N: v.N, K: v.K, Data: pow.Seed(c.data), Count: v.Count}
	for _, p := range v.Valid {
		if err := eqCheck(c, p); err != nil {
			t.Errorf("valid proof (nonce %d): %v", p.Nonce, err)
		}
		if err := pow.VerifyEquihash(&pc, &pow.EquihashProof{Nonce: p.Nonce, Indices: p.Indices}); err != nil {
			t.Errorf("pow.VerifyEquihash refuses valid proof (nonce %d): %v", p.Nonce, err)
		}
	}
	for _, bad := range v.Invalid {
		if eqCheck(c, bad.Proof) == nil || pow.VerifyEquihash(&pc, &pow.EquihashProof{Nonce: bad.Proof.Nonce, Indices: bad.Proof.Indices}) == nil {
			t.Errorf("invalid proof (%s) accepted", bad.Why)
		}
	}
	ch, _ := json.Marshal(pc)
	sub, _ := json.Marshal(map[string]any{"proofs": v.Valid})
	if keys, err := (pow.Equihash{}).Check(ch, sub); err != nil || len(keys) != v.Count {
		t.Errorf("pow.Equihash.Check(valid proofs) = %q, %v; want %d proofs", keys, err, v.Count)
	}
	sub, _ = json.Marshal(map[string]any{"proofs": []eqProof{v.Valid[0], v.Invalid[0].Proof}})
	if _, err := (pow.Equihash{}).Check(ch, sub); !errors.Is(err, pow.ErrWrongProof) {
		t.Errorf("pow.Equihash.Check(valid and invalid) = %v, want ErrWrongProof", err)
	}
	so := v.StringOf
	in := eqInput(c.data, so.Nonce, so.Index)
	h := sha256.Sum256(in)
	x := eqString(c.data, c.n, so.Nonce, so.Index)
	if hex.EncodeToString(in) != so.Input || hex.EncodeToString(h[:]) != so.SHA256 || fmt.Sprintf("%0*x", c.n/4, x) != so.X || !strings.HasPrefix(so.SHA256, so.X) {
		t.Errorf("string_of differs from SHA-256(d || uint64_be(v) || uint32_be(i)): %+v", so)
	}
}
