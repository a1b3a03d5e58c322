package ticketclient_test

import (
	"testing"
	"time"

	"tollbridge/pow"
	"tollbridge/protocol"
	"tollbridge/ticketclient"
)

// TestDeliverEquihash: a client that can do equihash gets it from a
// server that offers it, solves it and delivers; a pow-only client of the
// same server still gets pow and delivers too.
func TestDeliverEquihash(t *testing.T) {
	t.Parallel()
	p := newPeerWith(t, pow.NewRegistry(pow.Equihash{N: 60, K: 5, Count: 2}, pow.HashWork{}), 8, 2)
	for _, c := range []struct {
		works *pow.Registry
		want  string
	}{
		{pow.NewRegistry(pow.HashWork{}, pow.Equihash{}), "equihash"},
		{pow.NewRegistry(pow.HashWork{}), "pow"},
	} {
		cl, err := ticketclient.New([]ticketclient.Route{{Domain: "example.net", URL: p.srv.URL, CA: caFile(t, p.srv)}},
			c.works, ticketclient.Options{Backoff: 10 * time.Millisecond, NoSRV: true})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := cl.Discover(t.Context(), "example.net")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := message(p)
		var worktype string
		found := 0
		_, err = cl.Deliver(t.Context(), ep, m, nil, ticketclient.Hooks{
			Ticket: func(tk *protocol.Ticket) error {
				if worktype == "" {
					worktype = tk.Worktype
				}
				return nil
			},
			Stage: func(_ string, pr pow.Progress) { found = max(found, pr.Found) },
		})
		if err != nil || worktype != c.want || found != 2 {
			t.Errorf("client of %q: Deliver = %v, worktype %q, %d proofs; want %s and 2 proofs", c.works.Names(), err, worktype, found, c.want)
		}
	}
}
