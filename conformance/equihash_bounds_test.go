package conformance_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tollbridge/pow"
	"tollbridge/ticketclient"
)

// eqBounds applies §3.8.1's bounds on a challenge: 2 ≤ k ≤ 7, n ≤ 128, n
// a multiple of k+1, 8 ≤ c ≤ 21, count ≥ 1.
func eqBounds(c eqChallenge) error {
	switch {
	case c.k < 2 || c.k > 7:
		return fmt.Errorf("k = %d not in [2, 7]", c.k)
	case c.n < 1 || c.n > 128 || c.n%(c.k+1) != 0:
		return fmt.Errorf("n = %d not a multiple of k+1 = %d in [1, 128]", c.n, c.k+1)
	case c.c() < 8 || c.c() > 21:
		return fmt.Errorf("c = n/(k+1) = %d not in [8, 21]", c.c())
	case c.count < 1:
		return fmt.Errorf("count = %d, want at least 1", c.count)
	}
	return nil
}

// eqOutOfBounds are challenges §3.8.1 forbids, each cheap to work on
// except c = 22, whose list a sender must never build.
var eqOutOfBounds = []struct {
	why         string
	n, k, count int
}{
	{"k = 1", 16, 1, 1},
	{"k = 8", 72, 8, 1},
	{"n not a multiple of k+1", 25, 2, 1},
	{"c = 7", 21, 2, 1},
	{"c = 22", 66, 2, 1},
	{"n = 144 > 128", 144, 7, 1},
	{"count = 0", 24, 2, 0},
}

// TestEquihashBoundsAtServer: §3.8.1 "A server MUST NOT issue a challenge
// outside these bounds". Ticket servers over the site's store are set up
// with each forbidden parameter set (as a careless admin might configure
// them) and asked for a ticket by a sender preferring equihash: none may
// hand out the forbidden challenge (refusing, or offering pow, is fine).
// Challenges at the edges of the bounds are issued as configured.
func TestEquihashBoundsAtServer(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	var q map[string]any
	if err := json.Unmarshal(s.sample(nil).ticketRequest(hashAddr(t, "mallory@example.org"), s.bob.AddressHash), &q); err != nil {
		t.Fatal(err)
	}
	q["preference"] = []string{"equihash", "pow"}
	body, _ := json.Marshal(q)
	ask := func(e pow.Equihash) *reply {
		hs := httptest.NewTLSServer(s.server(pow.NewRegistry(e, pow.HashWork{})))
		defer hs.Close()
		a := &api{t: t, base: hs.URL, hc: hs.Client()}
		return a.send("POST", "/v1/tickets", body)
	}
	for _, b := range eqOutOfBounds {
		r := ask(pow.Equihash{N: b.n, K: b.k, Count: b.count})
		if r.status != 201 || r.obj["worktype"] != "equihash" {
			continue
		}
		if err := eqBounds(eqChallengeOf(t, r.obj)); err != nil {
			t.Errorf("configured with %s, the server issued %s: %v (§3.8.1 \"A server MUST NOT issue a challenge outside these bounds\")", b.why, r.obj["equihash"], err)
		}
	}
	for _, e := range []pow.Equihash{{N: 24, K: 2, Count: 1}, {N: 126, K: 5, Count: 3}, {N: 128, K: 7, Count: 1}} {
		r := ask(e)
		if r.status != 201 {
			t.Errorf("configured with n %d, k %d, count %d (within §3.8.1's bounds): HTTP %d %s", e.N, e.K, e.Count, r.status, r.body)
			continue
		}
		c := eqChallengeOf(t, r.obj)
		if err := eqBounds(c); err != nil || c.n != e.N || c.k != e.K || c.count != e.Count {
			t.Errorf("configured with n %d, k %d, count %d: issued %s (%v)", e.N, e.K, e.Count, r.obj["equihash"], err)
		}
	}
}

// TestEquihashBoundsAtSender: §3.8.1 "a sender MUST NOT work on" a
// challenge outside the bounds. tollbridge's sending side (ticketclient,
// able to do equihash) asks a hand-made ticket API that answers every
// ticket request with one challenge: a forbidden one gets no proof post
// (and no upload) and the delivery fails; one at the edge of the bounds
// (c = 8) is worked on, so the server can tell work when it comes.
func TestEquihashBoundsAtSender(t *testing.T) {
	t.Parallel()
	h := &eqHandMade{}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	cl, err := ticketclient.New([]ticketclient.Route{{Domain: "example.net", URL: srv.URL, CA: ca}},
		pow.NewRegistry(pow.Equihash{}, pow.HashWork{}), ticketclient.Options{Backoff: 10 * time.Millisecond, Attempts: 1, NoSRV: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := cl.Discover(t.Context(), "example.net")
	if err != nil {
		t.Fatal(err)
	}
	msg := &ticketclient.Message{Sender: hashAddr(t, "alice@example.org"), Recipient: hashAddr(t, "bob@example.net"),
		Header: ticketclient.BytesBlob(`{}`), Catalog: ticketclient.BytesBlob("catalog"),
		Parts: []ticketclient.Part{{ID: "b1", Kind: "block", Blob: ticketclient.BytesBlob("block")}}}
	deliver := func(n, k, count int) (int, error) {
		h.set(fmt.Sprintf(`{"n": %d, "k": %d, "data": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "count": %d}`, n, k, count))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := cl.Deliver(ctx, ep, msg, nil, ticketclient.Hooks{})
		return h.taken(), err
	}
	for _, b := range eqOutOfBounds {
		if posts, err := deliver(b.n, b.k, b.count); posts != 0 || err == nil {
			t.Errorf("challenge with %s: %d proof posts or uploads, Deliver = %v; want none and an error (§3.8.1 \"a sender MUST NOT work on one\")", b.why, posts, err)
		}
	}
	if posts, _ := deliver(24, 2, 1); posts == 0 {
		t.Errorf("challenge n 24, k 2 (within the bounds): no proof posted; the hand-made server cannot tell a refusal from a sender that never works")
	}
}

// eqHandMade is a ticket API that answers every ticket request with its
// current equihash challenge and counts what is posted or put on tickets,
// answering 410 so that the sender gives up.
type eqHandMade struct {
	mu        sync.Mutex
	challenge string
	posts     int
}

func (h *eqHandMade) set(challenge string) {
	h.mu.Lock()
	h.challenge, h.posts = challenge, 0
	h.mu.Unlock()
}

func (h *eqHandMade) taken() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.posts
}

func (h *eqHandMade) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/v1/tickets" && r.Method == http.MethodPost {
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"ticket_id": "t_1", "valid": false, "expires": %d, "worktype": "equihash", "equihash": %s}`, time.Now().Add(time.Hour).Unix(), h.challenge)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/tickets/") {
		h.posts++
	}
	w.WriteHeader(410)
	fmt.Fprint(w, `{"error": "gone"}`)
}
