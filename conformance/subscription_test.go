package conformance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Subscriptions (docs/protocol.md §3.2.4): vector (f) judged by this
// suite's own reading of the rules, and a ticket server held to them from
// its HTTP API. The site's store is used only to mint and revoke ids (what
// a subscriber's bridge does on delivering a -subscribe message) and to
// read the ids a list's side keeps.

// subscriptionIDSyntax is §3.2.4's "1–128 characters of A–Z a–z 0–9 _ -".
var subscriptionIDSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// subsVector is subscriptions.json.
type subsVector struct {
	Addresses []struct {
		To, Action, List string
	} `json:"addresses"`
	Minted []struct {
		ID       string `json:"id"`
		User     string `json:"user"`
		List     string `json:"list"`
		ListHash string `json:"list_hash"`
		Revoked  bool   `json:"revoked"`
	} `json:"minted"`
	Requests []struct {
		Name           string `json:"name"`
		Sender         string `json:"sender"`
		SenderHash     string `json:"sender_hash"`
		RecipientHash  string `json:"recipient_hash"`
		SenderDomain   string `json:"sender_domain"`
		SubscriptionID string `json:"subscription_id"`
		Signed         bool   `json:"signed"`
		NoWork         bool   `json:"no_work"`
	} `json:"requests"`
}

// listAction reads a (un)subscribe address (§3.2.4): the local part ends
// in -subscribe or -unsubscribe, compared without regard to ASCII case,
// and the rest is not empty; list is the rest with the domain.
func listAction(to string) (action, list string) {
	at := strings.LastIndexByte(to, '@')
	if at < 0 {
		return "none", ""
	}
	local := to[:at]
	for _, a := range []string{"unsubscribe", "subscribe"} {
		suffix := "-" + a
		if len(local) > len(suffix) && strings.EqualFold(local[len(local)-len(suffix):], suffix) {
			return a, local[:len(local)-len(suffix)] + to[at:]
		}
	}
	return "none", ""
}

// TestVectorsSubscriptions checks vector (f): the addresses' actions, the
// hashes and id syntax, and each request's no_work against §3.2.4's claim
// rule: a live id minted for the ticket's recipient and for the list whose
// hash is sender, in a request signed for the sender's own domain.
func TestVectorsSubscriptions(t *testing.T) {
	startVectorTest(t)
	var v subsVector
	readJSONVector(t, "subscriptions.json", &v)
	for _, a := range v.Addresses {
		if action, list := listAction(a.To); action != a.Action || list != a.List {
			t.Errorf("%s: %s %q, vector says %s %q", a.To, action, list, a.Action, a.List)
		}
	}
	for _, m := range v.Minted {
		if !subscriptionIDSyntax.MatchString(m.ID) {
			t.Errorf("minted id %q is not 1-128 of A-Z a-z 0-9 _ -", m.ID)
		}
		if m.ListHash != hashAddr(t, m.List) {
			t.Errorf("minted %s: list_hash %s, want hash(%s)", m.ID, m.ListHash, m.List)
		}
	}
	var granted, refused int
	for _, q := range v.Requests {
		if q.SenderHash != hashAddr(t, q.Sender) {
			t.Errorf("%s: sender_hash is not hash(%s)", q.Name, q.Sender)
		}
		noWork := false
		for _, m := range v.Minted {
			noWork = noWork || (m.ID == q.SubscriptionID && !m.Revoked && q.Signed &&
				hashAddr(t, m.User) == q.RecipientHash && m.ListHash == q.SenderHash &&
				strings.EqualFold(q.Sender[strings.LastIndexByte(q.Sender, '@')+1:], q.SenderDomain))
		}
		if noWork != q.NoWork {
			t.Errorf("%s: no_work %v by §3.2.4, vector says %v", q.Name, noWork, q.NoWork)
		}
		if q.NoWork {
			granted++
		} else {
			refused++
		}
	}
	if granted == 0 || refused == 0 {
		t.Errorf("vector grants %d and refuses %d requests: it should show both", granted, refused)
	}
}

// subscriptionRequest posts a version 1.1 ticket request to bob from
// sender with sender_domain domain and subscription_id id, signed by
// signer (nil: unsigned). Whatever the id, the answer must be a 201
// (§3.2.4 "never an error").
func (s *site) subscriptionRequest(m *sealed, sender, domain, id string, signer *openpgp.Entity) map[string]any {
	s.t.Helper()
	var q map[string]any
	if err := json.Unmarshal(m.ticketRequest(hashAddr(s.t, sender), s.bob.AddressHash), &q); err != nil {
		s.t.Fatal(err)
	}
	q["sender_domain"], q["subscription_id"] = domain, id
	q["created"] = s.clock.Now().Unix() - int64(s.signed) // one body once (§3.7 replay)
	s.signed++
	body, err := json.Marshal(q)
	if err != nil {
		s.t.Fatal(err)
	}
	h := http.Header{}
	if signer != nil {
		var sig bytes.Buffer
		if err := openpgp.DetachSign(&sig, signer, bytes.NewReader(body), nil); err != nil {
			s.t.Fatal(err)
		}
		h.Set("Tollbridge-Signature", base64.StdEncoding.EncodeToString(sig.Bytes()))
	}
	r := s.api.sendWith("POST", "/v1/tickets", body, h)
	if r.status != 201 {
		s.t.Fatalf("ticket request with subscription_id %q: HTTP %d, want 201 (never an error): %.400s", id, r.status, r.body)
	}
	return r.obj
}

// subscribe mints (or takes) the live id of user for list, as a
// subscriber's bridge does on delivering a -subscribe message.
func (s *site) subscribe(userID int64, list string) string {
	s.t.Helper()
	id, err := s.st.Subscribe(context.Background(), userID, list, hashAddr(s.t, list))
	if err != nil {
		s.t.Fatal(err)
	}
	if !subscriptionIDSyntax.MatchString(id) {
		s.t.Errorf("minted id %q is not 1-128 of A-Z a-z 0-9 _ - (§3.2.4)", id)
	}
	return id
}

// TestSubscriptionClaimAtServer: §3.2.4 "The subscriber's server grants a
// no-work ticket when subscription_id is an id it minted that is live, for
// the ticket's recipient user, for the list whose hash is the request's
// sender, and §3.7.3 holds … An unknown id, a revoked one, one minted for
// another recipient or another list, or any request that fails §3.7.3 is a
// stranger's: a ticket with work, never an error."
func TestSubscriptionClaimAtServer(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 3})
	s.senders["example.com"] = newServerKey(t, "example.com")
	org := s.senders["example.org"]
	carol, _ := s.addUser("carol@example.net")
	const news = "news@example.org"
	revoked := s.subscribe(s.bob.ID, news)
	if _, err := s.st.Unsubscribe(context.Background(), s.bob.ID, hashAddr(t, news)); err != nil {
		t.Fatal(err)
	}
	live := s.subscribe(s.bob.ID, news)
	if live == revoked {
		t.Fatalf("subscribing after a revocation gave the revoked id %s again", live)
	}
	carols := s.subscribe(carol.ID, news)
	digest := s.subscribe(s.bob.ID, "digest@example.org")
	m := s.sample(nil)
	for _, c := range []struct {
		what, sender, domain, id string
		signer                   *openpgp.Entity
	}{
		{"live id, unsigned", news, "example.org", live, nil},
		{"live id, signed by another domain's key", news, "example.org", live, s.senders["example.com"]},
		{"live id, sender_domain another domain", news, "example.com", live, s.senders["example.com"]},
		{"revoked id", news, "example.org", revoked, org},
		{"unknown id", news, "example.org", "s_ffffffffffffffffffffffffffffffff", org},
		{"id minted for another recipient", news, "example.org", carols, org},
		{"id minted for another list", news, "example.org", digest, org},
		{"live id from another address of the list's domain", "bounces@example.org", "example.org", live, org},
	} {
		tk := s.subscriptionRequest(m, c.sender, c.domain, c.id, c.signer)
		if v, _ := tk["valid"].(bool); v {
			t.Errorf("%s: ticket %v is valid without work", c.what, tk)
		}
		if _, ok := tk["pow"]; !ok {
			t.Errorf("%s: ticket %v names no work", c.what, tk)
		}
	}
	tk := s.subscriptionRequest(m, news, "example.org", live, org)
	if v, _ := tk["valid"].(bool); !v {
		t.Errorf("live id, signed by the list's domain: ticket %v, want valid: true at once", tk)
	}
}

// TestSubscriptionOfferAtServer: §3.2.4 "on a ticket request whose
// subscription_id it did not mint itself (in any state), [the list's
// server] treats the id as an offer: when the request is signed and the
// signature checks … it keeps (its recipient user, sender hash,
// sender_domain, id), replacing an earlier id …; an unsigned or badly
// signed offer is ignored. The offer is not trust". Here bob is the list.
func TestSubscriptionOfferAtServer(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 3})
	s.senders["example.com"] = newServerKey(t, "example.com")
	org := s.senders["example.org"]
	const alice = "alice@example.org"
	held := func() string {
		t.Helper()
		id, err := s.st.HeldSubscription(context.Background(), s.bob.ID, hashAddr(t, alice), "example.org")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	m := s.sample(nil)
	steps := []struct {
		what, id string
		signer   *openpgp.Entity
		want     string // the id held afterwards
	}{
		{"unsigned offer", "s_unsigned", nil, ""},
		{"offer signed by another domain's key", "s_badly_signed", s.senders["example.com"], ""},
		{"signed offer", "s_first", org, "s_first"},
		{"unsigned offer after a signed one", "s_unsigned2", nil, "s_first"},
		{"signed offer replacing the first", "s_second", org, "s_second"},
		{"an id bob's server minted (revoked)", s.mintedRevoked(alice), org, "s_second"},
	}
	for _, c := range steps {
		tk := s.subscriptionRequest(m, alice, "example.org", c.id, c.signer)
		if v, _ := tk["valid"].(bool); v {
			t.Errorf("%s: ticket %v is valid without work (an offer is not trust)", c.what, tk)
		}
		if got := held(); got != c.want {
			t.Errorf("after %s: bob holds %q for alice, want %q", c.what, got, c.want)
		}
	}
}

// mintedRevoked is an id bob's server minted for bob's subscription to
// list and revoked: never to be taken as an offer.
func (s *site) mintedRevoked(list string) string {
	s.t.Helper()
	id := s.subscribe(s.bob.ID, list)
	if _, err := s.st.Unsubscribe(context.Background(), s.bob.ID, hashAddr(s.t, list)); err != nil {
		s.t.Fatal(err)
	}
	return id
}
