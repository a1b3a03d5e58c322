package ticketserver

import (
	"context"
	"net/http/httptest"
	"testing"

	"tollbridge/internal/pgtest"
	"tollbridge/store"
)

// TestTicketAcrossNodes: two ticket servers of one domain on one
// PostgreSQL database (and one blob store) serve one ticket between them:
// issued by node 1, its work posted to node 2, its parts uploaded to
// either, completed on node 2 and stored for bob as node 1 sees it.
// Nothing of a ticket lives in a server's memory.
func TestTicketAcrossNodes(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, 4, 4, store.Options{Postgres: pgtest.Schema(t, pgtest.Server(t)), Node: "node1"})
	opts := e.opts
	opts.Now, opts.Node = e.clk.Now, "node2"
	st2, err := store.Open(context.Background(), e.dir+"/data", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	node1 := e.srv
	node2Opts := e.cfg
	node2Opts.Store, node2Opts.Works = st2, e.srvWorks()
	node2 := httptest.NewTLSServer(New(node2Opts))
	defer node2.Close()
	on := func(srv *httptest.Server) { e.srv = srv }
	defer on(node1)

	m := e.message(alice)
	ans := e.expect(201, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, m.size()))
	id := ans["ticket_id"].(string)
	if ans["valid"] == true {
		t.Fatal("ticket valid without work: the test needs work")
	}
	proofs := solve(t, ans, 4)
	on(node2)
	if ans := e.expect(200, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": proofs}}); ans["valid"] != true {
		t.Fatalf("not valid after work on node 2: %v", ans)
	}
	for i, part := range []struct {
		path string
		b    []byte
	}{{"header", m.header}, {"catalog", m.catalog}, {"blocks/b1", m.b1}, {"attachments/a1", m.a1}} {
		on([]*httptest.Server{node1, node2}[i%2])
		e.expect(200, "PUT", "/v1/tickets/"+id+"/"+part.path, part.b)
	}
	on(node2)
	e.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)
	on(node1)
	e.expect(409, "POST", "/v1/tickets/"+id+"/complete", nil)
	e.assertStored(m)
}
