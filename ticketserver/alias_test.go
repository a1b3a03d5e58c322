package ticketserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"

	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/store"
)

// liveDir is the env's current store as a keyring.Directory (the env
// reopens its store on restart).
type liveDir struct{ e *env }

func (d liveDir) dir() store.Directory { return store.Directory{St: d.e.st} }
func (d liveDir) IsUser(ctx context.Context, a string) (bool, error) {
	return d.dir().IsUser(ctx, a)
}
func (d liveDir) AliasTargets(ctx context.Context, a string) ([]string, error) {
	return d.dir().AliasTargets(ctx, a)
}
func (d liveDir) AddressByHash(ctx context.Context, h string) (string, error) {
	return d.dir().AddressByHash(ctx, h)
}
func (d liveDir) AddressByWKDName(ctx context.Context, n string) (string, error) {
	return d.dir().AddressByWKDName(ctx, n)
}

// aliasEnv is newEnv with carol@example.net, the config alias
// team@ (bob), the stored alias help@ (bob), the stored alias both@ (bob
// and carol), postmaster bob and subaddresses with "+".
func aliasEnv(t *testing.T) *env {
	e := newEnv(t, 4, 2)
	carol, _, err := keyring.Generate("carol@example.net", []byte("pw"), teststore.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(context.Background(), &store.User{Address: carol.Address, AddressHash: keyring.HashNormalized(carol.Address),
		WKDName: "example.net/" + keyring.WKDHash("carol"), Fingerprint: carol.Fingerprint, PublicKey: carol.Public, PrivateKey: carol.Private}); err != nil {
		t.Fatal(err)
	}
	r, err := keyring.NewResolver(liveDir{e}, e.cfg.Domains, keyring.Addresses{
		Aliases:    map[string][]string{"team@example.net": {"bob@example.net"}},
		Postmaster: []string{"bob@example.net"}, Delimiters: "+",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.cfg.Recipients = r
	e.start()
	for addr, targets := range map[string][]string{"help@example.net": {"bob@example.net"}, "both@example.net": {"bob@example.net", "carol@example.net"}} {
		local, _ := keyring.SplitAddress(addr)
		a := &store.Alias{Address: addr, AddressHash: keyring.HashNormalized(addr), WKDName: "example.net/" + keyring.WKDHash(local), Targets: targets}
		if err := e.st.AddAlias(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// wkd fetches address's key path as a sender would (with ?l=, or without).
func (e *env) wkd(address string, withL bool) (int, []byte) {
	e.t.Helper()
	u, _ := keyring.WKDURL(e.srv.URL, address)
	if !withL {
		u, _, _ = strings.Cut(u, "?")
	}
	resp, err := e.srv.Client().Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestWKDForAliases: WKD answers an alias, postmaster@ and a subaddress
// (named by ?l=) with the one target's key; several targets, unknown
// addresses and a subaddress without ?l= are 404.
func TestWKDForAliases(t *testing.T) {
	t.Parallel()
	e := aliasEnv(t)
	for _, c := range []struct {
		addr   string
		withL  bool
		status int
	}{
		{"team@example.net", false, 200},
		{"help@example.net", true, 200},
		{"postmaster@example.net", true, 200},
		{"abuse@example.net", false, 200},
		{"Bob+Lists@example.net", true, 200},
		{"bob+lists@example.net", false, 404},
		{"both@example.net", true, 404},
		{"nobody+x@example.net", true, 404},
		{"receipts+x@example.net", true, 404},
	} {
		status, key := e.wkd(c.addr, c.withL)
		if status != c.status {
			t.Errorf("WKD %s (l=%v): %d, want %d", c.addr, c.withL, status, c.status)
		}
		if status == 200 && !bytes.Equal(key, e.bob.PublicKey) {
			t.Errorf("WKD %s served another key than bob's", c.addr)
		}
	}
}

// TestTicketForAlias: a ticket for hash(alias) is issued for the target
// and the message lands in the target's store; so for a subaddress once
// WKD was asked for it (a hash alone gives nothing back); an alias with
// several targets is 404.
func TestTicketForAlias(t *testing.T) {
	t.Parallel()
	e := aliasEnv(t)
	e.expect(404, "POST", "/v1/tickets", request(alice, hash("both@example.net"), 10))
	e.expect(404, "POST", "/v1/tickets", request(alice, hash("bob+x@example.net"), 10))
	if status, _ := e.wkd("bob+x@example.net", true); status != 200 {
		t.Fatalf("WKD bob+x: %d", status)
	}
	for i, alias := range []string{"team@example.net", "help@example.net", "bob+x@example.net"} {
		m := e.message(alice)
		var h map[string]any
		json.Unmarshal(m.header, &h)
		h["to"] = hash(alias)
		m.header, _ = json.Marshal(h)
		ans := e.expect(201, "POST", "/v1/tickets", request(alice, hash(alias), m.size()))
		id := ans["ticket_id"].(string)
		proofs := solve(t, ans, 2)
		e.expect(200, "POST", "/v1/tickets/"+url.PathEscape(id), map[string]any{"pow": map[string]any{"proofs": proofs}})
		e.upload(id, m)
		e.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)
		if n, err := e.st.UnfiledCount(context.Background(), e.bob.ID); err != nil || n != i+1 {
			t.Fatalf("%s: bob has %d messages, %v", alias, n, err)
		}
	}
}
