package conformance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"tollbridge/internal/testkit"
	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/store"
	"tollbridge/ticketserver"
)

// The only place tollbridge packages are used on the receiving side: to
// start a ticket server over a store with one user, the way `bridge serve`
// and `bridge user add` do. Everything sent to it is built in this package.

// expiry is the ticket lifetime every in-process site uses.
const expiry = 30 * time.Minute

// site is one ticket server (HTTPS on 127.0.0.1:0) for example.net with
// user bob@example.net.
type site struct {
	t       *testing.T
	dir     string // the data directory is dir/data
	opts    siteOptions
	clock   *testkit.Clock
	st      *store.Store
	api     *api
	bob     *store.User
	bobKey  *openpgp.Entity // unlocked
	receipt *openpgp.Entity
	// receipts are the receipt keys of every domain of the site.
	receipts map[string]*openpgp.Entity
	// senders are the server keys of the sending domains this package
	// plays (§3.7), made here with go-crypto; the site finds them as if by
	// WKD.
	senders map[string]*openpgp.Entity
	signed  int // signed requests sent, so that no two bodies are the same
}

type siteOptions struct {
	bits, count int
	rate        int // ticket requests per minute; 0: no limit
	domains     []string
	users       []string // more users to create
	equihash    bool     // offer equihash (n 24, k 2, two proofs) first
}

func newSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	dir := t.TempDir()
	if o.domains == nil {
		o.domains = []string{"example.net"}
	}
	s := &site{t: t, dir: dir, opts: o, clock: testkit.NewClock(time.Unix(1_900_000_000, 0))}
	st, err := store.Open(context.Background(), dir+"/data", store.Options{Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.st = st
	t.Cleanup(func() { st.Close() })
	receipts := map[string]*openpgp.Entity{}
	for _, d := range o.domains {
		rk, err := keyring.LoadOrCreateServiceKey(dir+"/keys/receipts@"+d+".key", "receipts@"+d)
		if err != nil {
			t.Fatal(err)
		}
		receipts[d] = rk
	}
	s.receipt, s.receipts = receipts["example.net"], receipts
	s.senders = map[string]*openpgp.Entity{"example.org": newServerKey(t, "example.org")}
	works := pow.NewRegistry(pow.HashWork{})
	if o.equihash {
		works = pow.NewRegistry(pow.Equihash{N: 24, K: 2, Count: 2}, pow.HashWork{})
	}
	srv := s.server(works)
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	s.api = &api{t: t, base: hs.URL, hc: hs.Client()}
	s.bob, s.bobKey = s.addUser("bob@example.net")
	for _, u := range o.users {
		s.addUser(u)
	}
	return s
}

// server is a ticket server over the site's store offering works, as
// newSite starts one; tests start more to offer other worktypes.
func (s *site) server(works *pow.Registry) *ticketserver.Server {
	o := s.opts
	return ticketserver.New(ticketserver.Options{
		Store: s.st, Works: works,
		Hostname: "mail.example.net", Domains: o.domains,
		Difficulty: pow.Difficulty{Bits: o.bits, Count: o.count}, Expiry: expiry,
		RatePerMinute: o.rate, MaxMessageBytes: 1 << 20, ReceiptKeys: s.receipts,
		ServerKey: func(_ context.Context, domain string) (*openpgp.Entity, error) {
			if k := s.senders[domain]; k != nil {
				return k, nil
			}
			return nil, keyring.ErrNoSuchUser
		},
	})
}

// addUser creates a local user as `bridge user add` does.
func (s *site) addUser(address string) (*store.User, *openpgp.Entity) {
	s.t.Helper()
	return teststore.AddUser(s.t, s.st, address, "pw")
}

// trust puts sender on bob's allow list.
func (s *site) trust(sender string) {
	s.t.Helper()
	if err := s.st.Allow(context.Background(), s.bob.ID, hashAddr(s.t, sender), strings.ToLower(sender)); err != nil {
		s.t.Fatal(err)
	}
}

// signedRequest posts a version 1.1 ticket request (§3.7) from sender's
// hash: sender_domain and created added to the body, which the server key
// of that domain signs; the header carries the detached signature.
func (s *site) signedRequest(m *sealed, sender string) map[string]any {
	s.t.Helper()
	return s.signedRequestBy(m, sender, strings.ToLower(sender[strings.LastIndexByte(sender, '@')+1:]))
}

// signedRequestBy is signedRequest naming and signed by another domain.
func (s *site) signedRequestBy(m *sealed, sender, domain string) map[string]any {
	s.t.Helper()
	var q map[string]any
	if err := json.Unmarshal(m.ticketRequest(hashAddr(s.t, sender), s.bob.AddressHash), &q); err != nil {
		s.t.Fatal(err)
	}
	q["sender_domain"] = domain
	// The server honours one body once (§3.7's replay window); the clock
	// stands still here, so each request is dated a second earlier.
	q["created"] = s.clock.Now().Unix() - int64(s.signed)
	s.signed++
	body, err := json.Marshal(q)
	if err != nil {
		s.t.Fatal(err)
	}
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, s.senders[domain], bytes.NewReader(body), nil); err != nil {
		s.t.Fatal(err)
	}
	r := s.api.sendWith("POST", "/v1/tickets", body, http.Header{"Tollbridge-Signature": {base64.StdEncoding.EncodeToString(sig.Bytes())}})
	if r.status != 201 {
		s.t.Fatalf("signed ticket request: HTTP %d, want 201: %.400s", r.status, r.body)
	}
	return r.obj
}

// newServerKey makes a sending server's key as §3.7 describes it: Ed25519,
// v4, user ID receipts@DOMAIN.
func newServerKey(t *testing.T, domain string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("", "", "receipts@"+domain, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sample is a small sealed message from alice to bob of this site: one
// block, one attachment.
func (s *site) sample(signer *openpgp.Entity) *sealed {
	s.t.Helper()
	b1 := &part{id: "b1", kind: "block", plain: []byte("Hello Bob.\r\n")}
	a1 := &part{id: "a1", kind: "attachment", plain: []byte("%PDF-1.4 not really\n")}
	cat := simpleCatalog("alice@example.org", "bob@example.net", b1, a1)
	return sealMessage(s.t, cat, []*part{b1, a1}, signer)
}

// request posts a ticket request and returns the 201 answer.
func (s *site) request(body []byte) map[string]any {
	s.t.Helper()
	return s.api.expect(201, "POST", "/v1/tickets", body).obj
}

// validTicket returns the id of a ticket made valid by the allow list.
func (s *site) validTicket(m *sealed) string {
	s.t.Helper()
	s.trust("alice@example.org")
	tk := s.signedRequest(m, "alice@example.org")
	if v, _ := tk["valid"].(bool); !v {
		s.t.Fatalf("signed ticket request of an allowed sender is not valid at once (§3.2, §3.7): %v", tk)
	}
	return str(s.t, tk, "ticket_id")
}

// upload PUTs the whole message (header, catalog, parts) on ticket id.
func (s *site) upload(id string, m *sealed, header []byte) {
	s.t.Helper()
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/header", header)
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/catalog", m.catalog)
	for _, p := range m.parts {
		s.api.expect(200, "PUT", "/v1/tickets/"+id+"/"+p.kind+"s/"+p.id, p.sealed)
	}
}
