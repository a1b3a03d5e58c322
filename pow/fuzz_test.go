package pow

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
	"testing"
)

// FuzzCheck feeds arbitrary submissions to Check against the seq() data at
// a fuzzed difficulty of 0 to 16 bits. Check must not panic; anything it
// accepts must verify; and it must accept whatever an independent decoder
// (UseNumber + math/big) finds to be only valid proofs.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		`{"proofs":[537,1755,13402]}`,
		`{"proofs":[537,537]}`,
		`{"proofs":[]}`,
		`{"proofs":[18446744073709551615]}`,
		`{"proofs":[18446744073709551616]}`,
		`{"proofs":[1e3,-1,1.0,"7"]}`,
		`{"proofs":null}`,
		`{}`,
	} {
		f.Add(uint8(8), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, b uint8, sub []byte) {
		bits := int(b % 17)
		challenge := seqChallenge(t, bits)
		keys, err := HashWork{}.Check(challenge, sub)
		want, decodable := independentProofs(sub)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrWrongProof) {
				t.Fatalf("Check(%q): unexpected error kind %v", sub, err)
			}
			if decodable && allVerify(want, bits) {
				t.Fatalf("Check(%q) = %v, but every proof verifies", sub, err)
			}
			if errors.Is(err, ErrWrongProof) && decodable && allVerify(want, bits) {
				t.Fatalf("Check(%q) says wrong proof, but none is", sub)
			}
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			p, perr := strconv.ParseUint(k, 10, 64)
			if perr != nil || strconv.FormatUint(p, 10) != k {
				t.Fatalf("Check(%q): key %q is not canonical", sub, k)
			}
			if seen[k] {
				t.Fatalf("Check(%q): key %q twice", sub, k)
			}
			seen[k] = true
			if !Verify(seq(), bits, p) {
				t.Fatalf("Check(%q) accepted %d, which does not verify at %d bits", sub, p, bits)
			}
		}
		if decodable {
			for _, p := range want {
				if !seen[strconv.FormatUint(p, 10)] {
					t.Fatalf("Check(%q) left out proof %d", sub, p)
				}
			}
		}
	})
}

// independentProofs decodes sub another way: a JSON object whose only key
// is "proofs", holding an array of integers in [0, 2^64) written without
// fraction or exponent. ok is false when sub is not of that form.
func independentProofs(sub []byte) (proofs []uint64, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(sub))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || len(m) != 1 {
		return nil, false
	}
	if len(bytes.Trim(sub[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, false // trailing data
	}
	list, isList := m["proofs"].([]any)
	if !isList {
		return nil, false
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 64)
	for _, v := range list {
		n, isNum := v.(json.Number)
		if !isNum || bytes.ContainsAny([]byte(n), ".eE-") {
			return nil, false
		}
		i, good := new(big.Int).SetString(string(n), 10)
		if !good || i.Sign() < 0 || i.Cmp(limit) >= 0 {
			return nil, false
		}
		proofs = append(proofs, i.Uint64())
	}
	return proofs, true
}

func allVerify(proofs []uint64, bits int) bool {
	for _, p := range proofs {
		if !Verify(seq(), bits, p) {
			return false
		}
	}
	return true
}
