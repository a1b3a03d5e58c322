package ticketserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"tollbridge/keyring"
	"tollbridge/store"
)

// signedEnv is a ticket server whose bob trusts alice@example.org (he
// wrote to her) and carol@example.com (allow list), and which finds the
// server keys of example.org and example.com as if by WKD.
type signedEnv struct {
	*env
	keys    map[string]*openpgp.Entity // sending servers' keys, by domain
	fetches atomic.Int32
}

func newSignedEnv(t *testing.T) *signedEnv {
	t.Helper()
	e := &signedEnv{env: newEnv(t, 30, 4), keys: map[string]*openpgp.Entity{}}
	for _, d := range []string{"example.org", "example.com", "evil.example"} {
		k, err := keyring.LoadOrCreateServiceKey(e.dir+"/"+d+".key", "receipts@"+d)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[d] = k
	}
	e.stop()
	e.cfg.ServerKey = func(ctx context.Context, domain string) (*openpgp.Entity, error) {
		e.fetches.Add(1)
		if domain == "unreachable.example" {
			<-ctx.Done() // a key server that never answers
			return nil, ctx.Err()
		}
		if k := e.keys[domain]; k != nil {
			return k, nil
		}
		return nil, keyring.ErrNoSuchUser
	}
	e.start()
	ctx := context.Background()
	if err := e.st.NoteCorrespondent(ctx, e.bob.ID, store.Correspondent{Hash: alice, Address: "alice@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Allow(ctx, e.bob.ID, hash("carol@example.com"), "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	return e
}

// signedBody is a version 1.1 ticket request from sender's hash naming
// domain, created at created.
func (e *signedEnv) signedBody(sender, domain string, created time.Time) []byte {
	q := request(hash(sender), e.bob.AddressHash, 100)
	q["sender_domain"] = domain
	q["created"] = created.Unix()
	b, err := json.Marshal(q)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// sign is the Tollbridge-Signature of body by key: base64 of a detached
// binary signature.
func sign(t testing.TB, key *openpgp.Entity, body []byte) string {
	t.Helper()
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, key, bytes.NewReader(body), nil); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig.Bytes())
}

// post sends a ticket request with the given signature header ("" for
// none) and says whether the ticket came valid at once.
func (e *signedEnv) post(body []byte, signature string) bool {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/tickets", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Tollbridge-Signature", signature)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		e.t.Fatalf("ticket request: status %d, want 201 (a stranger's request still gets a ticket): %s", resp.StatusCode, raw)
	}
	var ans struct {
		Valid    bool            `json:"valid"`
		Worktype string          `json:"worktype"`
		Pow      json.RawMessage `json:"pow"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		e.t.Fatal(err)
	}
	if ans.Valid != (ans.Worktype == "") || ans.Valid != (ans.Pow == nil) {
		e.t.Fatalf("inconsistent ticket: %s", raw)
	}
	return ans.Valid
}

// TestForgedTrustedSenderWorks is the attack of issue 9 finding 2: after
// bob wrote to alice, anyone could claim alice's hash and get a free
// ticket. Only a request signed by example.org's server key is trusted.
func TestForgedTrustedSenderWorks(t *testing.T) {
	t.Parallel()
	e := newSignedEnv(t)
	now := e.clk.Now()

	// Version 1 requests (no signature) from a trusted sender: work.
	if e.post(mustJSON(t, request(alice, e.bob.AddressHash, 100)), "") {
		t.Fatal("unsigned request claiming a correspondent got a no-work ticket")
	}
	if e.post(mustJSON(t, request(hash("carol@example.com"), e.bob.AddressHash, 100)), "") {
		t.Fatal("unsigned request claiming an allowed sender got a no-work ticket")
	}
	if n := e.fetches.Load(); n != 0 {
		t.Errorf("unsigned requests fetched %d server keys, want none", n)
	}

	// Signed by the right servers: no work.
	body := e.signedBody("alice@example.org", "example.org", now)
	if !e.post(body, sign(t, e.keys["example.org"], body)) {
		t.Error("request signed by example.org for a correspondent: want a no-work ticket")
	}
	body = e.signedBody("carol@example.com", "EXAMPLE.com", now.Add(-299*time.Second))
	if !e.post(body, sign(t, e.keys["example.com"], body)) {
		t.Error("request signed by example.com for an allowed sender: want a no-work ticket")
	}
}

// TestSignedRequestRejections: anything less than a fresh, unreplayed
// signature by the trusted address's own domain is a stranger's request.
func TestSignedRequestRejections(t *testing.T) {
	t.Parallel()
	e := newSignedEnv(t)
	now := e.clk.Now()
	orgKey, evilKey := e.keys["example.org"], e.keys["evil.example"]

	cases := []struct {
		name string
		body []byte
		sig  func(body []byte) string
	}{
		{"another domain signs for alice", e.signedBody("alice@example.org", "evil.example", now),
			func(b []byte) string { return sign(t, evilKey, b) }},
		{"another domain's key under alice's domain", e.signedBody("alice@example.org", "example.org", now),
			func(b []byte) string { return sign(t, evilKey, b) }},
		{"stale created", e.signedBody("alice@example.org", "example.org", now.Add(-301*time.Second)),
			func(b []byte) string { return sign(t, orgKey, b) }},
		{"created in the future", e.signedBody("alice@example.org", "example.org", now.Add(301*time.Second)),
			func(b []byte) string { return sign(t, orgKey, b) }},
		{"no sender_domain", mustJSON(t, map[string]any{"sender": alice, "recipient": e.bob.AddressHash, "created": now.Unix(),
			"preference": []string{"pow"}, "parts": map[string]any{"blocks": 1, "attachments": 1, "bytes": 100}}),
			func(b []byte) string { return sign(t, orgKey, b) }},
		{"signature over other bytes", e.signedBody("alice@example.org", "example.org", now),
			func(b []byte) string { return sign(t, orgKey, append(b, ' ')) }},
		{"not base64", e.signedBody("alice@example.org", "example.org", now),
			func([]byte) string { return "!!not base64!!" }},
		{"garbage signature", e.signedBody("alice@example.org", "example.org", now),
			func([]byte) string { return base64.StdEncoding.EncodeToString([]byte("\xc2\x01garbage")) }},
		{"text signature", e.signedBody("alice@example.org", "example.org", now),
			func(b []byte) string { return textSign(t, orgKey, b) }},
		{"stranger signs for itself", e.signedBody("eve@evil.example", "evil.example", now),
			func(b []byte) string { return sign(t, evilKey, b) }},
	}
	for _, c := range cases {
		if e.post(c.body, c.sig(c.body)) {
			t.Errorf("%s: got a no-work ticket", c.name)
		}
	}

	// The same signed body is honoured once in the replay window.
	body := e.signedBody("alice@example.org", "example.org", now)
	sig := sign(t, orgKey, body)
	if !e.post(body, sig) {
		t.Fatal("first signed request: want a no-work ticket")
	}
	if e.post(body, sig) {
		t.Error("replayed signed request got a second no-work ticket")
	}
	e.clk.Add(601 * time.Second) // past the window, but now the body is stale
	if e.post(body, sig) {
		t.Error("replayed stale request got a no-work ticket")
	}
}

// TestSignedRequestUnreachableKey: a sending server whose key cannot be
// had within the time box gets a ticket with work, not an error.
func TestSignedRequestUnreachableKey(t *testing.T) {
	t.Parallel()
	e := newSignedEnv(t)
	ctx := context.Background()
	if err := e.st.NoteCorrespondent(ctx, e.bob.ID, store.Correspondent{Hash: hash("dan@unreachable.example"), Address: "dan@unreachable.example"}); err != nil {
		t.Fatal(err)
	}
	body := e.signedBody("dan@unreachable.example", "unreachable.example", e.clk.Now())
	if e.post(body, sign(t, e.keys["example.org"], body)) {
		t.Error("unreachable server key: got a no-work ticket")
	}
}

// TestTrustWithoutAddress: correspondents noted before plain addresses
// were kept grant nothing, even signed (their domain is unknown).
func TestTrustWithoutAddress(t *testing.T) {
	t.Parallel()
	e := newSignedEnv(t)
	dave := hash("dave@example.org")
	if err := e.st.NoteCorrespondent(context.Background(), e.bob.ID, store.Correspondent{Hash: dave}); err != nil {
		t.Fatal(err)
	}
	body := e.signedBody("dave@example.org", "example.org", e.clk.Now())
	if e.post(body, sign(t, e.keys["example.org"], body)) {
		t.Error("trusted hash without an address: got a no-work ticket")
	}
	if _, err := e.st.TrustedAddress(context.Background(), e.bob.ID, dave); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// textSign makes a text-mode (0x01) detached signature, which the
// protocol refuses: it would also cover the body with other line endings.
func textSign(t testing.TB, key *openpgp.Entity, body []byte) string {
	t.Helper()
	var sig bytes.Buffer
	if err := openpgp.DetachSignText(&sig, key, bytes.NewReader(body), &packet.Config{}); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig.Bytes())
}

// TestDomainAllow: a config [[allow]] for bob's domain trusts an address
// or a whole domain, but still only for requests signed by that domain's
// server key: "@example.com" is no ticket for a request signed by another
// domain or not signed at all.
func TestDomainAllow(t *testing.T) {
	t.Parallel()
	e := newSignedEnv(t)
	e.stop()
	e.cfg.DomainAllow = func(domain string) []string {
		if domain != "example.net" {
			return nil
		}
		return []string{"Dave@Evil.Example", "@example.com"}
	}
	e.start()
	now := e.clk.Now()
	body := e.signedBody("erin@example.com", "example.com", now)
	if !e.post(body, sign(t, e.keys["example.com"], body)) {
		t.Error("signed request from @example.com: want a no-work ticket")
	}
	body = e.signedBody("frank@example.com", "example.com", now)
	if e.post(body, "") {
		t.Error("unsigned request naming example.com got a no-work ticket")
	}
	body = e.signedBody("erin@example.com", "evil.example", now)
	if e.post(body, sign(t, e.keys["evil.example"], body)) {
		t.Error("a request signed by evil.example for an example.com sender got a no-work ticket")
	}
	body = e.signedBody("dave@evil.example", "evil.example", now)
	if !e.post(body, sign(t, e.keys["evil.example"], body)) {
		t.Error("signed request from the allowed address: want a no-work ticket")
	}
	body = e.signedBody("eve@evil.example", "evil.example", now)
	if e.post(body, sign(t, e.keys["evil.example"], body)) {
		t.Error("another address of evil.example got a no-work ticket")
	}
}
