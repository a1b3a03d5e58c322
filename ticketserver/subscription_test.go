package ticketserver

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// withSubscription is body with subscription_id set to id.
func withSubscription(t *testing.T, body []byte, id string) []byte {
	t.Helper()
	var q map[string]any
	if err := json.Unmarshal(body, &q); err != nil {
		t.Fatal(err)
	}
	q["subscription_id"] = id
	b, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSubscriptionClaims (docs/protocol.md §3.2.1): a live id this server
// minted for bob's subscription to list@example.com earns a no-work ticket
// on a request signed by example.com from the list's address; an unknown,
// revoked or misplaced id, or an unsigned request, is a stranger's.
func TestSubscriptionClaims(t *testing.T) {
	t.Parallel()
	e := newSignedEnv(t)
	ctx := t.Context()
	id, err := e.st.Subscribe(ctx, e.bob.ID, "list@example.com", hash("list@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := e.st.Subscribe(ctx, e.bob.ID, "list@example.com", hash("list@example.com")); again != id {
		t.Errorf("subscribing again minted %s, want the live %s", again, id)
	}
	now := e.clk.Now()
	claim := func(sender, domain, id string, signer string, created time.Time) bool {
		body := withSubscription(t, e.signedBody(sender, domain, created), id)
		sig := ""
		if signer != "" {
			sig = sign(t, e.keys[signer], body)
		}
		return e.post(body, sig)
	}
	for _, c := range []struct {
		name               string
		sender, domain, id string
		signer             string
		want               bool
	}{
		{"live id, signed by the list's domain", "list@example.com", "example.com", id, "example.com", true},
		{"unsigned", "list@example.com", "example.com", id, "", false},
		{"unknown id", "list@example.com", "example.com", "s_0123456789abcdef0123456789abcdef", "example.com", false},
		{"another sender of the domain", "other@example.com", "example.com", id, "example.com", false},
		{"signed by another domain", "list@example.com", "evil.example", id, "evil.example", false},
	} {
		if got := claim(c.sender, c.domain, c.id, c.signer, now.Add(time.Duration(len(c.name))*time.Second)); got != c.want {
			t.Errorf("%s: valid %v, want %v", c.name, got, c.want)
		}
	}
	if n, err := e.st.Unsubscribe(ctx, e.bob.ID, hash("list@example.com")); err != nil || n != 1 {
		t.Fatalf("unsubscribe: %d, %v", n, err)
	}
	if claim("list@example.com", "example.com", id, "example.com", now.Add(-time.Second)) {
		t.Error("a revoked id earned a no-work ticket")
	}
	if held, _ := e.st.HeldSubscription(ctx, e.bob.ID, hash("list@example.com"), "example.com"); held == id {
		t.Errorf("a revoked id this server minted was held as an offer: %s", held)
	}
}

// TestSubscriptionOffers: an id this server did not mint, in a request
// signed by sender_domain, is that server's offer for its user; bob's
// server holds it to name in bob's requests to that user. Unsigned or
// badly signed offers are not held.
func TestSubscriptionOffers(t *testing.T) {
	t.Parallel()
	e := newSignedEnv(t)
	ctx := t.Context()
	now := e.clk.Now()
	body := withSubscription(t, e.signedBody("dave@example.org", "example.org", now), "s_offer1")
	if e.post(body, sign(t, e.keys["example.org"], body)) {
		t.Error("an offer earned a no-work ticket")
	}
	if held, err := e.st.HeldSubscription(ctx, e.bob.ID, hash("dave@example.org"), "example.org"); err != nil || held != "s_offer1" {
		t.Errorf("held %q, %v; want s_offer1", held, err)
	}
	for _, c := range []struct{ name, sender, signer string }{
		{"unsigned", "erin@example.com", ""},
		{"signed by another domain", "erin@example.com", "evil.example"},
	} {
		body := withSubscription(t, e.signedBody(c.sender, "example.com", now.Add(time.Second)), "s_offer2")
		sig := ""
		if c.signer != "" {
			sig = sign(t, e.keys[c.signer], body)
		}
		e.post(body, sig)
		if held, _ := e.st.HeldSubscription(ctx, e.bob.ID, hash(c.sender), "example.com"); held != "" {
			t.Errorf("%s: offer held: %s", c.name, held)
		}
	}
}

// TestSubscriptionVector runs the requests of docs/protocol.md §3.9 (f)
// (with example.org's server key standing for the list's). Ids are the
// server's own: the vector's live and revoked ids stand for ones minted
// here in those states.
func TestSubscriptionVector(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../conformance/testdata/vectors/subscriptions.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Minted []struct {
			ID, List string
			ListHash string `json:"list_hash"`
			Revoked  bool
		}
		Requests []struct {
			Name, Sender   string
			SenderDomain   string `json:"sender_domain"`
			SubscriptionID string `json:"subscription_id"`
			Signed         bool
			NoWork         bool `json:"no_work"`
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	e := newSignedEnv(t)
	ids := map[string]string{}
	for _, m := range v.Minted { // revoked first, then live: one live id at a time
		if !m.Revoked {
			continue
		}
		ids[m.ID] = mint(t, e, m.List, m.ListHash, true)
	}
	for _, m := range v.Minted {
		if !m.Revoked {
			ids[m.ID] = mint(t, e, m.List, m.ListHash, false)
		}
	}
	now := e.clk.Now()
	for i, q := range v.Requests {
		id := ids[q.SubscriptionID]
		if id == "" {
			id = q.SubscriptionID
		}
		body := withSubscription(t, e.signedBody(q.Sender, q.SenderDomain, now.Add(time.Duration(i)*time.Second)), id)
		sig := ""
		if q.Signed {
			sig = sign(t, e.keys["example.org"], body)
		}
		if got := e.post(body, sig); got != q.NoWork {
			t.Errorf("%s: no-work %v, want %v", q.Name, got, q.NoWork)
		}
	}
}

// mint subscribes bob to list and, when revoked, revokes it at once.
func mint(t *testing.T, e *signedEnv, list, listHash string, revoked bool) string {
	t.Helper()
	if hash(list) != listHash {
		t.Fatalf("vector: list_hash of %s is %s, want %s", list, listHash, hash(list))
	}
	id, err := e.st.Subscribe(t.Context(), e.bob.ID, list, listHash)
	if err != nil {
		t.Fatal(err)
	}
	if revoked {
		if _, err := e.st.Unsubscribe(t.Context(), e.bob.ID, listHash); err != nil {
			t.Fatal(err)
		}
	}
	return id
}
