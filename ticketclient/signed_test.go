package ticketclient_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"tollbridge/pow"
	"tollbridge/protocol"
	"tollbridge/ticketclient"
)

// TestSignedTicketRequests: with a Signer, a request names the sender's
// domain and created, and carries a detached signature over the exact
// body bytes; two requests of the same shape never send the same body
// (the server would take the second for a replay, §3.7).
func TestSignedTicketRequests(t *testing.T) {
	t.Parallel()
	key, err := openpgp.NewEntity("", "", "receipts@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	type seen struct {
		body []byte
		sig  string
	}
	var got []seen
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{body, r.Header.Get(protocol.SignatureHeader)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		w.Write([]byte(`{"ticket_id": "t_1", "valid": true, "expires": 1}`))
	}))
	defer srv.Close()
	now := time.Unix(1_800_000_000, 0)
	signer := func(domain string, body []byte) ([]byte, error) {
		if domain != "example.org" {
			t.Errorf("signer asked for %q", domain)
		}
		var b bytes.Buffer
		err := openpgp.DetachSign(&b, key, bytes.NewReader(body), nil)
		return b.Bytes(), err
	}
	c, err := ticketclient.New([]ticketclient.Route{{Domain: "example.net", URL: srv.URL, CA: caFile(t, srv)}},
		pow.NewRegistry(pow.HashWork{}), ticketclient.Options{Signer: signer, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := c.Discover(t.Context(), "example.net")
	if err != nil {
		t.Fatal(err)
	}
	q := protocol.TicketRequest{Sender: "s", Recipient: "r", SenderDomain: "example.org", Preference: []string{"pow"}, Parts: protocol.Parts{Blocks: 1, Bytes: 10}}
	for range 3 {
		if _, err := ep.RequestTicket(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	unsigned := q
	unsigned.SenderDomain = ""
	if _, err := ep.RequestTicket(t.Context(), unsigned); err != nil {
		t.Fatal(err)
	}
	bodies := map[string]bool{}
	for i, s := range got[:3] {
		var m map[string]any
		json.Unmarshal(s.body, &m)
		if m["sender_domain"] != "example.org" {
			t.Errorf("request %d: sender_domain %v", i, m["sender_domain"])
		}
		if c, _ := m["created"].(float64); int64(c) < now.Unix() || int64(c) > now.Unix()+2 {
			t.Errorf("request %d: created %v, want within seconds of %d", i, m["created"], now.Unix())
		}
		if bodies[string(s.body)] {
			t.Errorf("request %d: same body sent twice: %s", i, s.body)
		}
		bodies[string(s.body)] = true
		sig, err := base64.StdEncoding.DecodeString(s.sig)
		if err != nil {
			t.Fatalf("request %d: signature header %q: %v", i, s.sig, err)
		}
		if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{key}, bytes.NewReader(s.body), bytes.NewReader(sig), nil); err != nil {
			t.Errorf("request %d: signature does not verify over the body: %v", i, err)
		}
	}
	if last := got[3]; last.sig != "" || bytes.Contains(last.body, []byte("created")) || bytes.Contains(last.body, []byte("sender_domain")) {
		t.Errorf("request without a sender domain went out signed: %s %q", last.body, last.sig)
	}
}
