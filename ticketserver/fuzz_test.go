package ticketserver

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// FuzzTicketJSON throws arbitrary bodies at the ticket request and proof
// endpoints: every answer must be one of the statuses §3 allows, with a
// JSON body carrying "error" for failures; nothing may panic.
func FuzzTicketJSON(f *testing.F) {
	e := newEnv(f, 2, 1)
	f.Cleanup(e.stop)
	seed, _ := json.Marshal(request(alice, e.bob.AddressHash, 10))
	f.Add(seed, []byte(`{"pow":{"proofs":[1,2,3]}}`))
	f.Add([]byte(`{"sender":null,"recipient":"","preference":[],"parts":{}}`), []byte(`{"pow":{"proofs":[1e3]}}`))
	f.Add([]byte(`{"parts":{"blocks":-1,"attachments":1.5,"bytes":"9"}}`), []byte(`{"pow":null}`))
	f.Add([]byte("\x00\xff{"), []byte(`{"pow":{"proofs":[18446744073709551616]}}`))
	opts := e.cfg
	opts.Store, opts.Works = e.st, e.srvWorks()
	srv := New(opts)
	ticket := e.workTicketID()
	f.Fuzz(func(t *testing.T, req, work []byte) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/tickets", bytes.NewReader(req)))
		checkAnswer(t, rec, 201, 400, 404, 413, 429)
		rec = httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/tickets/"+ticket, bytes.NewReader(work)))
		checkAnswer(t, rec, 200, 400, 413, 422)
	})
}

func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("status %d not in %v: %s", rec.Code, allowed, rec.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not a JSON object: %q", rec.Body)
	}
	if rec.Code >= 400 {
		if _, ok := m["error"].(string); !ok {
			t.Fatalf("error answer without error: %s", rec.Body)
		}
	}
}
