package conformance_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"tollbridge/store"
)

// TestTicketRequestMalformed: §3.6 "every field but subscription_id is
// required (400 otherwise); a preference with no worktype the server
// supports is a 400", and §3.2 "400 malformed".
func TestTicketRequestMalformed(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	alice, bob := hashAddr(t, "alice@example.org"), s.bob.AddressHash
	ok := func(fields string) string {
		return fmt.Sprintf(`{"sender": %q, "recipient": %q, %s}`, alice, bob, fields)
	}
	cases := map[string]string{
		"not JSON":               `{"sender": `,
		"empty body":             ``,
		"JSON array":             `[]`,
		"missing sender":         fmt.Sprintf(`{"recipient": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}}`, bob),
		"null sender":            fmt.Sprintf(`{"sender": null, "recipient": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}}`, bob),
		"missing recipient":      fmt.Sprintf(`{"sender": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}}`, alice),
		"missing preference":     ok(`"parts": {"blocks": 1, "attachments": 0, "bytes": 10}`),
		"missing parts":          ok(`"preference": ["pow"]`),
		"missing parts.blocks":   ok(`"preference": ["pow"], "parts": {"attachments": 0, "bytes": 10}`),
		"missing parts.attach":   ok(`"preference": ["pow"], "parts": {"blocks": 1, "bytes": 10}`),
		"missing parts.bytes":    ok(`"preference": ["pow"], "parts": {"blocks": 1, "attachments": 0}`),
		"sender not a hash":      fmt.Sprintf(`{"sender": "alice@example.org", "recipient": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}}`, bob),
		"unknown worktype only":  ok(`"preference": ["memory-hard"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}`),
		"empty preference":       ok(`"preference": [], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}`),
		"preference not a list":  ok(`"preference": "pow", "parts": {"blocks": 1, "attachments": 0, "bytes": 10}`),
		"parts.bytes not number": ok(`"preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": "10"}`),
	}
	for name, body := range cases {
		s.api.check(400, "POST", "/v1/tickets", []byte(body), name+`: docs/protocol.md §3.6 "every field but subscription_id is required (400 otherwise)"`)
	}
	// subscription_id is optional, and may be given.
	s.api.check(201, "POST", "/v1/tickets", []byte(ok(`"preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}`)), "without subscription_id")
	s.api.check(201, "POST", "/v1/tickets", []byte(ok(`"subscription_id": "list-42", "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}`)), "with subscription_id")
	// "The server chooses the worktype from the preference list."
	r := s.api.check(201, "POST", "/v1/tickets", []byte(ok(`"preference": ["memory-hard", "pow"], "parts": {"blocks": 0, "attachments": 0, "bytes": 0}`)), "pow among others")
	if r.obj["worktype"] != "pow" {
		t.Errorf("preference [memory-hard, pow]: worktype %v, want pow", r.obj["worktype"])
	}
}

// TestTicketRequestAnswers: 201 with the §3.2 ticket shape, 404 unknown
// recipient, 413 too large.
func TestTicketRequestAnswers(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 3})
	alice := hashAddr(t, "alice@example.org")
	req := func(rcpt string, bytes int64) []byte {
		return []byte(fmt.Sprintf(`{"sender": %q, "recipient": %q, "preference": ["pow"], "parts": {"blocks": 2, "attachments": 1, "bytes": %d}}`, alice, rcpt, bytes))
	}
	tk := s.request(req(hashAddr(t, "Bob@Example.NET"), 5000))
	if id, _ := tk["ticket_id"].(string); id == "" {
		t.Errorf("201 answer without ticket_id: %v", tk)
	}
	if v, ok := tk["valid"].(bool); !ok || v {
		t.Errorf("ticket for an unknown sender: valid %v, want false", tk["valid"])
	}
	if got, want := num(t, tk, "expires"), s.clock.Now().Add(expiry).Unix(); got != want {
		t.Errorf("expires %d, want now + expiry = %d", got, want)
	}
	c := challengeOf(t, tk)
	if c.bits != 8 || c.count != 3 {
		t.Errorf("challenge bits %d count %d, want the server's 8 and 3", c.bits, c.count)
	}

	s.api.check(404, "POST", "/v1/tickets", req(hashAddr(t, "nobody@example.net"), 5000), `§3.2 "404 unknown recipient"`)
	s.api.check(404, "POST", "/v1/tickets", req(hashAddr(t, "bob@example.org"), 5000), `§3.2 "404 unknown recipient" (other domain)`)
	s.api.check(413, "POST", "/v1/tickets", req(s.bob.AddressHash, 1<<40), `§3.2 "413 message too large"`)
}

// TestTicketTrustedSender: §3.2 "A ticket is valid: true at once (no work)
// when … the sender is on the recipient's allow list" or "the recipient
// has written to the sender before" — and §3.7: "only a signed request
// earns a no-work ticket"; an unsigned one (version 1) still gets a
// ticket, with work, "never an error".
func TestTicketTrustedSender(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 3})
	m := s.sample(nil)
	s.trust("carol@example.org")
	tk := s.request(m.ticketRequest(hashAddr(t, "carol@example.org"), s.bob.AddressHash))
	if v, _ := tk["valid"].(bool); v {
		t.Fatalf("unsigned request naming an allowed sender: ticket %v is valid without work (§3.7)", tk)
	}
	if _, ok := tk["pow"]; !ok {
		t.Fatalf("unsigned request naming an allowed sender: ticket %v names no work", tk)
	}
	tk = s.signedRequest(m, "Carol@Example.org")
	if v, _ := tk["valid"].(bool); !v {
		t.Fatalf("signed request of an allowed sender: ticket %v, want valid: true at once", tk)
	}
	if got, want := num(t, tk, "expires"), s.clock.Now().Add(expiry).Unix(); got != want {
		t.Errorf("expires %d, want %d", got, want)
	}
	id := str(t, tk, "ticket_id")
	s.upload(id, m, m.header(t, hashAddr(t, "carol@example.org"), s.bob.AddressHash, s.bobKey, false))
	s.api.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)

	if err := s.st.NoteCorrespondent(context.Background(), s.bob.ID, store.Correspondent{Hash: hashAddr(t, "dave@example.org"), Address: "dave@example.org"}); err != nil {
		t.Fatal(err)
	}
	tk = s.signedRequest(m, "dave@example.org")
	if v, _ := tk["valid"].(bool); !v {
		t.Errorf("signed request of a sender bob wrote to: ticket %v, want valid: true at once", tk)
	}
	// Someone else still works, signed or not.
	tk = s.signedRequest(m, "eve@example.org")
	if v, _ := tk["valid"].(bool); v {
		t.Errorf("unknown sender: ticket %v is valid without work", tk)
	}
	// A signature by another domain's server key earns nothing: frank is
	// trusted, but example.org's server may not speak for example.com.
	s.trust("frank@example.com")
	tk = s.signedRequestBy(m, "frank@example.com", "example.org")
	if v, _ := tk["valid"].(bool); v {
		t.Errorf("request for frank@example.com signed by example.org: ticket %v is valid without work", tk)
	}
}

// TestTicketIDNARecipient: §3.6 hash(a) hashes the domain in its ASCII
// (IDNA) form and the whole string lowercased.
func TestTicketIDNARecipient(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1, domains: []string{"example.net", "xn--bcher-kva.example"}, users: []string{"jörg@xn--bcher-kva.example"}})
	body := fmt.Sprintf(`{"sender": %q, "recipient": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 10}}`,
		hashAddr(t, "alice@example.org"), hashAddr(t, "JÖRG@Bücher.Example"))
	s.api.check(201, "POST", "/v1/tickets", []byte(body), `§3.6 hash(a): "the whole string lowercased, domain in its ASCII (IDNA) form"`)
}

// TestTicketRateLimited: §3.2 "429 rate limited (Retry-After)".
func TestTicketRateLimited(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1, rate: 2})
	m := s.sample(nil)
	body := m.ticketRequest(hashAddr(t, "alice@example.org"), s.bob.AddressHash)
	var r *reply
	for i := 0; i < 5; i++ {
		if r = s.api.send("POST", "/v1/tickets", body); r.status == 429 {
			break
		}
	}
	if r.status != 429 {
		t.Fatalf("5 requests at a limit of 2 a minute: last HTTP %d, want 429", r.status)
	}
	checkErrorBody(t, "429", r)
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 0 {
		t.Errorf("429 Retry-After %q, want delay-seconds (§3.2 \"429 rate limited (Retry-After)\")", r.header.Get("Retry-After"))
	}
}
