package ticketclient_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"tollbridge/pow"
	"tollbridge/ticketclient"
)

// TestWorkRefusedHere: a worktype this side lacks, or a challenge costing
// more than MaxWork, fails the delivery with an error naming why, not a
// status the server never sent.
func TestWorkRefusedHere(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		answer string
		want   error
	}{
		{"unknown worktype", `{"ticket_id": "t_1", "valid": false, "expires": 1, "worktype": "cuckoo", "cuckoo": {"n": 1}}`, ticketclient.ErrUnsupportedWork},
		{"too hard", `{"ticket_id": "t_1", "valid": false, "expires": 1, "worktype": "pow", "pow": {"bits": 40, "count": 64, "data": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`, ticketclient.ErrWorkTooHard},
	} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(c.answer))
		}))
		cl, err := ticketclient.New([]ticketclient.Route{{Domain: "example.net", URL: srv.URL, CA: caFile(t, srv)}},
			pow.NewRegistry(pow.HashWork{}), ticketclient.Options{NoSRV: true})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := cl.Discover(t.Context(), "example.net")
		if err != nil {
			t.Fatal(err)
		}
		m := &ticketclient.Message{Sender: "s", Recipient: "r", Header: ticketclient.BytesBlob("{}"), Catalog: ticketclient.BytesBlob("c")}
		_, err = cl.Deliver(t.Context(), ep, m, nil, ticketclient.Hooks{})
		if !errors.Is(err, c.want) || ticketclient.StatusOf(err) != 0 {
			t.Errorf("%s: Deliver = %v, want %v and no HTTP status", c.name, err, c.want)
		}
		srv.Close()
	}
}
