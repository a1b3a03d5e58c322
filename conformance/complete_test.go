package conformance_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUploadAnswers: §3.6 "A PUT answers 200 {"size": N, "sha256": "…"}".
func TestUploadAnswers(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	m := s.sample(nil)
	id := s.validTicket(m)
	hdr := m.header(t, hashAddr(t, "alice@example.org"), s.bob.AddressHash, s.bobKey, true)
	for _, u := range []struct {
		path string
		body []byte
	}{{"header", hdr}, {"catalog", m.catalog}, {"blocks/b1", m.parts[0].sealed}, {"attachments/a1", m.parts[1].sealed}} {
		s.api.expect(200, "PUT", "/v1/tickets/"+id+"/"+u.path, u.body)
		r := s.api.expect(200, "PUT", "/v1/tickets/"+id+"/"+u.path, u.body) // idempotent
		if r.obj == nil || num(t, r.obj, "size") != int64(len(u.body)) || str(t, r.obj, "sha256") != sha256Hex(u.body) {
			t.Errorf("PUT %s: answer %s, want {\"size\": %d, \"sha256\": %q}", u.path, r.body, len(u.body), sha256Hex(u.body))
		}
	}
}

// TestCompleteNamesWhatIsWrong: §3.6 "complete with a missing or
// mismatching header, catalog or part answers 422 {"error": "…", "part":
// "<id|header|catalog>"} and the ticket stays open; the header's from/to
// must match the ticket and key_fingerprint the recipient's key". Each
// step has exactly one fault; uploads replace earlier ones until
// completion.
func TestCompleteNamesWhatIsWrong(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	m := s.sample(nil)
	id := s.validTicket(m)
	alice, bob := hashAddr(t, "alice@example.org"), s.bob.AddressHash
	base := "/v1/tickets/" + id
	put := func(name string, b []byte) { t.Helper(); s.api.expect(200, "PUT", base+"/"+name, b) }
	complete422 := func(want, why string) {
		t.Helper()
		r := s.api.check(422, "POST", base+"/complete", nil, why)
		if r.status == 422 && r.obj["part"] != want {
			t.Errorf("%s: 422 names part %v, want %q: %s", why, r.obj["part"], want, r.body)
		}
	}
	put("catalog", m.catalog)
	put("blocks/b1", m.parts[0].sealed)
	put("attachments/a1", m.parts[1].sealed)
	complete422("header", "header not uploaded")

	_, otherKey := s.addUser("bob2@example.net")
	for _, bad := range []struct{ name, header string }{
		{"from is not the ticket's sender", string(m.header(t, hashAddr(t, "eve@example.org"), bob, s.bobKey, false))},
		{"to is not the ticket's recipient", string(m.header(t, alice, hashAddr(t, "bob2@example.net"), s.bobKey, false))},
		{"key_fingerprint of another key", string(m.header(t, alice, bob, otherKey, false))},
		{"version 2", strings.Replace(string(m.header(t, alice, bob, s.bobKey, false)), `"version": 1`, `"version": 2`, 1)},
		{"not JSON", "{\"version\": 1,"},
	} {
		put("header", []byte(bad.header))
		complete422("header", bad.name)
	}
	good := m.header(t, alice, bob, s.bobKey, true)
	put("header", good)

	tampered := bytes.Clone(m.catalog)
	tampered[len(tampered)-1] ^= 1
	put("catalog", tampered)
	complete422("catalog", "catalog of the right size, wrong SHA-256")
	put("catalog", m.catalog)

	flipped := bytes.Clone(m.parts[0].sealed)
	flipped[len(flipped)/2] ^= 0x80
	put("blocks/b1", flipped)
	complete422("b1", "block b1 with one bit flipped")
	put("blocks/b1", m.parts[0].sealed)

	put("attachments/a1", m.parts[1].sealed[:len(m.parts[1].sealed)-1])
	complete422("a1", "attachment a1 one byte short")
	put("attachments/a1", m.parts[1].sealed)

	r := s.api.expect(202, "POST", base+"/complete", nil)
	checkReceipt(t, s, r, good)
}

// TestCompleteMissingPart: a part the header names that never arrived.
func TestCompleteMissingPart(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	b1 := &part{id: "b1", kind: "block", plain: []byte("text\r\n")}
	a1 := &part{id: "a1", kind: "attachment", plain: []byte("one")}
	a2 := &part{id: "a2", kind: "attachment", plain: []byte("two")}
	m := sealMessage(t, simpleCatalog("alice@example.org", "bob@example.net", b1, a1), []*part{b1, a1, a2}, nil)
	id := s.validTicket(m)
	hdr := m.header(t, hashAddr(t, "alice@example.org"), s.bob.AddressHash, s.bobKey, false)
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/header", hdr)
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/catalog", m.catalog)
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/blocks/b1", b1.sealed)
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/attachments/a1", a1.sealed)
	r := s.api.check(422, "POST", "/v1/tickets/"+id+"/complete", nil, "attachment a2 never uploaded")
	if r.obj["part"] != "a2" {
		t.Errorf("422 names %v, want a2: %s", r.obj["part"], r.body)
	}
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/attachments/a2", a2.sealed)
	s.api.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)
}

// checkReceipt holds a 202 to §3.3 and §3.6: message_id (the server's own
// id), received, and a receipt that is a detached binary signature over
// the header bytes exactly as uploaded, verifying with the key WKD serves
// for receipts@DOMAIN.
func checkReceipt(t *testing.T, s *site, r *reply, header []byte) {
	t.Helper()
	checkReceiptWith(t, s.api, r, header, "example.net", s.clock.Now())
}

func checkReceiptWith(t *testing.T, a *api, r *reply, header []byte, domain string, now time.Time) {
	t.Helper()
	if id, _ := r.obj["message_id"].(string); id == "" || strings.HasPrefix(id, "<") {
		t.Errorf("complete: message_id %v, want the server's own id (§3.6)", r.obj["message_id"])
	}
	got := num(t, r.obj, "received")
	if now.IsZero() { // a real server: its clock is ours, give or take
		if d := time.Since(time.Unix(got, 0)); d < -time.Hour || d > time.Hour {
			t.Errorf("complete: received %d is not now (Unix seconds)", got)
		}
	} else if got != now.Unix() {
		t.Errorf("complete: received %d, want the server's clock %d", got, now.Unix())
	}
	key := readPublicKey(t, a.expect(200, "GET", wkdPath("receipts@"+domain), nil).body)
	if err := verifyReceipt(header, str(t, r.obj, "receipt"), key, domain); err != nil {
		t.Errorf("receipt fails §3.3.3 with WKD's receipts@%s key over the header bytes as uploaded: %v", domain, err)
	}
}

// TestStatusPrecedence: §3.6 "Status precedence for anything addressed to
// a ticket (proofs, uploads, complete): unknown 404, completed 409,
// expired 410, not yet valid 403", and §3.3's 403/410/409 for uploads.
func TestStatusPrecedence(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 2})
	m := s.sample(nil)
	hdr := m.header(t, hashAddr(t, "alice@example.org"), s.bob.AddressHash, s.bobKey, false)

	done := s.validTicket(m) // completed below
	s.upload(done, m, hdr)
	s.api.expect(202, "POST", "/v1/tickets/"+done+"/complete", nil)
	open := s.validTicket(m) // valid, open
	unworked, c := s.workTicket(m)
	proof := c.solve(t, 1, nil)

	hit := func(id string, want int, what string) {
		t.Helper()
		base := "/v1/tickets/" + id
		s.api.check(want, "PUT", base+"/header", hdr, what+": header")
		s.api.check(want, "PUT", base+"/catalog", m.catalog, what+": catalog")
		s.api.check(want, "PUT", base+"/blocks/b1", m.parts[0].sealed, what+": block")
		s.api.check(want, "PUT", base+"/attachments/a1", m.parts[1].sealed, what+": attachment")
		s.api.check(want, "POST", base+"/complete", nil, what+": complete")
	}
	hit("t_no_such_ticket", 404, "unknown ticket")
	s.api.check(404, "POST", "/v1/tickets/t_no_such_ticket", proofsBody(proof...), "unknown ticket: proofs")
	hit(done, 409, "completed ticket")
	s.api.check(409, "POST", "/v1/tickets/"+done, proofsBody(proof...), "completed ticket: proofs")
	hit(unworked, 403, "ticket not yet valid")

	// One second before expiry everything still works.
	s.clock.Add(expiry - time.Second)
	s.api.check(200, "PUT", "/v1/tickets/"+open+"/catalog", m.catalog, "one second before expiry")
	s.clock.Add(time.Second)
	hit(open, 410, "expired valid ticket")
	hit(unworked, 410, "expired ticket not yet valid (410 before 403)")
	s.api.check(410, "POST", "/v1/tickets/"+unworked, proofsBody(proof...), "expired ticket: proofs")
	hit(done, 409, "completed and expired ticket (409 before 410)")
	s.api.check(409, "POST", "/v1/tickets/"+done, proofsBody(proof...), "completed and expired ticket: proofs")
}

// TestWrongMethod: §3.6 "Wrong method 405", with a JSON error.
func TestWrongMethod(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	id := s.validTicket(s.sample(nil))
	base := "/v1/tickets/" + id
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tickets"}, {"PUT", "/v1/tickets"}, {"DELETE", "/v1/tickets"},
		{"GET", base}, {"PUT", base}, {"DELETE", base},
		{"POST", base + "/header"}, {"GET", base + "/header"},
		{"POST", base + "/catalog"}, {"GET", base + "/blocks/b1"}, {"POST", base + "/attachments/a1"},
		{"GET", base + "/complete"}, {"PUT", base + "/complete"},
		{"POST", "/.well-known/openpgpkey/example.net/policy"},
		{"PUT", wkdPath("bob@example.net")},
	} {
		var body []byte
		if c.method == "PUT" || c.method == "POST" {
			body = []byte("{}")
		}
		s.api.check(405, c.method, c.path, body, `§3.6 "Wrong method 405"`)
	}
}

// TestWKD: §3.1 and §3.6: the user's binary key, 404 for anyone else, the
// receipts key, the empty policy file.
func TestWKD(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	r := s.api.expect(200, "GET", wkdPath("Bob@example.net"), nil)
	k := readPublicKey(t, r.body)
	if fingerprint(k) != s.bob.Fingerprint || !hasUserID(k, "bob@example.net") {
		t.Errorf("WKD key %s (ids %v) is not bob's %s", fingerprint(k), k.Identities, s.bob.Fingerprint)
	}
	s.api.check(404, "GET", wkdPath("nobody@example.net"), nil, `§3.1 "404 means no such user"`)
	s.api.check(404, "GET", wkdPath("bob@example.org"), nil, "another domain")
	rk := readPublicKey(t, s.api.expect(200, "GET", wkdPath("receipts@example.net"), nil).body)
	if fingerprint(rk) != fingerprint(s.receipt) {
		t.Errorf("WKD receipts@example.net key %s, want the receipt key %s", fingerprint(rk), fingerprint(s.receipt))
	}
	pol := s.api.expect(200, "GET", "/.well-known/openpgpkey/example.net/policy", nil)
	if len(pol.body) != 0 {
		t.Errorf("policy file %q, want empty (§3.6)", pol.body)
	}
}

// TestUnknownEndpoint: errors are JSON even off the API's paths.
func TestUnknownEndpoint(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	for _, p := range []string{"/", "/v2/tickets", "/v1/tickets/x/y/z/w"} {
		r := s.api.send("GET", p, nil)
		if r.status < 400 {
			t.Errorf("GET %s: HTTP %d", p, r.status)
		}
		checkErrorBody(t, "GET "+p, r)
	}
	req, _ := http.NewRequest("POST", s.api.base+"/v1/tickets", strings.NewReader(strings.Repeat("x", 1<<20)))
	resp, err := s.api.hc.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("1 MiB of junk as a ticket request: HTTP %d", resp.StatusCode)
		}
		checkErrorBody(t, fmt.Sprintf("POST 1 MiB junk (HTTP %d)", resp.StatusCode), &reply{status: resp.StatusCode, header: resp.Header, body: b, obj: decodeObj(b)})
	}
}
