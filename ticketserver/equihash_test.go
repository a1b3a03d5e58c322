package ticketserver

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"tollbridge/pow"
)

// newEquihashEnv is a server offering equihash (n 60, k 5, two proofs)
// first, then pow.
func newEquihashEnv(t *testing.T) *env {
	e := newEnv(t, 8, 4)
	e.stop()
	e.works = pow.NewRegistry(pow.Equihash{N: 60, K: 5, Count: 2}, pow.HashWork{})
	e.start()
	return e
}

// equihashRequest asks for a ticket listing preference.
func (e *env) equihashRequest(preference ...string) map[string]any {
	e.t.Helper()
	q := request(alice, e.bob.AddressHash, 1000)
	q["preference"] = preference
	return e.expect(201, "POST", "/v1/tickets", q)
}

// solveEquihash finds n proofs for a ticket answer's equihash challenge.
func solveEquihash(t *testing.T, ans map[string]any, n int) []pow.EquihashProof {
	t.Helper()
	raw, _ := json.Marshal(ans["equihash"])
	c, err := pow.ParseEquihashChallenge(raw)
	if err != nil {
		t.Fatalf("challenge %s: %v", raw, err)
	}
	var proofs []pow.EquihashProof
	err = pow.SolveEquihash(t.Context(), c, pow.SolveOptions{Needed: n, Workers: 1}, func(ps []pow.EquihashProof) error {
		proofs = append(proofs, ps...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return proofs
}

func equihashPost(proofs ...pow.EquihashProof) map[string]any {
	return map[string]any{"equihash": map[string]any{"proofs": proofs}}
}

// TestEquihashOfferedFirst: the server offers equihash to every sender
// that lists it, whatever its place in the sender's list (§3.8), and pow
// to the others.
func TestEquihashOfferedFirst(t *testing.T) {
	t.Parallel()
	e := newEquihashEnv(t)
	for _, pref := range [][]string{{"pow", "equihash"}, {"equihash"}, {"micropayment", "equihash", "pow"}} {
		ans := e.equihashRequest(pref...)
		ch, _ := ans["equihash"].(map[string]any)
		if ans["worktype"] != "equihash" || ch == nil || ans["pow"] != nil {
			t.Fatalf("preference %q: ticket %v, want an equihash challenge", pref, ans)
		}
		for k, want := range map[string]string{"n": "60", "k": "5", "count": "2"} {
			if got := ch[k].(json.Number).String(); got != want {
				t.Errorf("challenge %s = %s, want %s", k, got, want)
			}
		}
	}
	if ans := e.equihashRequest("pow"); ans["worktype"] != "pow" {
		t.Errorf("a pow-only sender got %v", ans)
	}
}

// TestEquihashProofPosts: the rules of §3.2.2 hold for equihash as for
// pow: a post with a wrong proof is 422 with the same challenge and counts
// none; a proof counts once; remaining; malformed posts are 400; an
// expired ticket is 410.
func TestEquihashProofPosts(t *testing.T) {
	t.Parallel()
	e := newEquihashEnv(t)
	ans := e.equihashRequest("equihash", "pow")
	id := ans["ticket_id"].(string)
	proofs := solveEquihash(t, ans, 3)
	bad := pow.EquihashProof{Nonce: proofs[0].Nonce + 1, Indices: proofs[0].Indices}

	wrong := e.expect(422, "POST", "/v1/tickets/"+id, equihashPost(proofs[0], bad))
	if wrong["worktype"] != "equihash" || wrong["remaining"].(json.Number).String() != "2" ||
		wrong["equihash"].(map[string]any)["data"] != ans["equihash"].(map[string]any)["data"] {
		t.Errorf("422 answer %v, want the same challenge and 2 remaining", wrong)
	}
	for range 2 { // the second time, the same proof counts no more
		got := e.expect(200, "POST", "/v1/tickets/"+id, equihashPost(proofs[0], proofs[0]))
		if got["valid"] != false || got["remaining"].(json.Number).String() != "1" {
			t.Fatalf("after one proof: %v, want 1 remaining", got)
		}
	}
	for _, body := range []string{
		`{"pow": {"proofs": [1]}}`,
		`{"equihash": {"proofs": [{"nonce": 1.5, "indices": []}]}}`,
		`{"equihash": {"proofs": [` + strings.Repeat(`{"nonce": 1, "indices": [1]},`, pow.MaxEquihashProofsPerPost) + `{"nonce": 1, "indices": [1]}]}}`,
	} {
		e.expect(400, "POST", "/v1/tickets/"+id, body)
	}
	if got := e.expect(200, "POST", "/v1/tickets/"+id, equihashPost(proofs[1])); got["valid"] != true {
		t.Fatalf("after two proofs: %v, want valid", got)
	}

	ans = e.equihashRequest("equihash")
	e.clk.Add(30 * time.Minute)
	e.expect(410, "POST", "/v1/tickets/"+ans["ticket_id"].(string), equihashPost(proofs[2]))
}
