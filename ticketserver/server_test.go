package ticketserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/internal/testkit"
	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/store"
)

// env is one ticket server on a real TLS listener with user bob@example.net.
type env struct {
	t       testing.TB
	dir     string
	clk     *testkit.Clock
	st      *store.Store
	srv     *httptest.Server
	bob     *store.User
	receipt *openpgp.Entity
	cfg     Options
	works   *pow.Registry // nil: pow alone
	opts    store.Options // how start opens the store (Now is set there)
}

func newEnv(t testing.TB, bits, count int) *env {
	t.Helper()
	return newEnvWith(t, bits, count, store.Options{})
}

// newEnvWith is newEnv with the store opened with opts.
func newEnvWith(t testing.TB, bits, count int, opts store.Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clk: testkit.NewClock(testkit.Epoch), opts: opts}
	rk, err := keyring.LoadOrCreateServiceKey(e.dir+"/receipts.key", "receipts@example.net")
	if err != nil {
		t.Fatal(err)
	}
	e.receipt = rk
	e.cfg = Options{
		Hostname: "mail.example.net", Domains: []string{"example.net"},
		Difficulty: pow.Difficulty{Bits: bits, Count: count}, Expiry: 30 * time.Minute,
		RatePerMinute: 1000, MaxMessageBytes: 1 << 20,
		ReceiptKeys: map[string]*openpgp.Entity{"example.net": rk},
	}
	e.start()
	e.bob, _ = teststore.AddUser(t, e.st, "bob@example.net", "pw")
	return e
}

// start opens the store and serves it (again, after stop).
func (e *env) start() {
	opts := e.opts
	opts.Now = e.clk.Now
	st, err := store.Open(context.Background(), e.dir+"/data", opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	srvOpts := e.cfg
	srvOpts.Store, srvOpts.Works = st, e.srvWorks()
	s := New(srvOpts)
	e.srv = httptest.NewTLSServer(s)
	e.t.Cleanup(e.stop)
}

func (e *env) srvWorks() *pow.Registry {
	if e.works != nil {
		return e.works
	}
	return pow.NewRegistry(pow.HashWork{})
}

// workTicketID requests a ticket that still needs work.
func (e *env) workTicketID() string {
	return e.expect(201, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, 10))["ticket_id"].(string)
}

func (e *env) stop() {
	if e.srv != nil {
		e.srv.Close()
		e.st.Close()
		e.srv = nil
	}
}

// call sends a request and decodes the JSON answer.
func (e *env) call(method, path string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	return e.callWith(e.srv.Client(), method, path, body)
}

// callWith is call through client c.
func (e *env) callWith(c *http.Client, method, path string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if resp.Header.Get("Content-Type") == "application/json" {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	} else {
		m = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, m, resp.Header
}

func (e *env) expect(status int, method, path string, body any) map[string]any {
	e.t.Helper()
	got, m, _ := e.call(method, path, body)
	if got != status {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, status, m)
	}
	if status >= 400 && m["error"] == nil {
		e.t.Fatalf("%s %s: error answer without \"error\": %v", method, path, m)
	}
	return m
}

func hash(s string) string { h, _ := keyring.AddressHash(s); return h }

var alice = hash("alice@example.org")

func request(sender, recipient string, bytes int64) map[string]any {
	return map[string]any{"sender": sender, "recipient": recipient, "preference": []string{"pow"},
		"parts": map[string]any{"blocks": 1, "attachments": 1, "bytes": bytes}}
}

// solve finds n valid proofs for a ticket answer's challenge.
func solve(t testing.TB, ans map[string]any, n int) []uint64 {
	t.Helper()
	raw, _ := json.Marshal(ans["pow"])
	c, err := pow.ParseChallenge(raw)
	if err != nil {
		t.Fatal(err)
	}
	var proofs []uint64
	err = pow.Solve(context.Background(), c, pow.SolveOptions{Needed: n}, func(p []uint64) error {
		proofs = append(proofs, p...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return proofs
}

// message is an opaque sealed-looking message and its header for bob.
type message struct {
	catalog, b1, a1 []byte
	header          []byte
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func (e *env) message(from string) *message {
	m := &message{catalog: []byte("\xd2encrypted catalog"), b1: []byte("\xd2encrypted block"), a1: bytes.Repeat([]byte{0xd2, 7}, 5000)}
	h := map[string]any{
		"version": 1, "from": from, "to": e.bob.AddressHash, "key_fingerprint": e.bob.Fingerprint,
		"encrypted_key": base64.StdEncoding.EncodeToString(pkesk()),
		"catalog":       map[string]any{"size": len(m.catalog), "sha256": sum(m.catalog)},
		"parts": []any{
			map[string]any{"id": "b1", "kind": "block", "size": len(m.b1), "sha256": sum(m.b1)},
			map[string]any{"id": "a1", "kind": "attachment", "size": len(m.a1), "sha256": sum(m.a1)},
		},
	}
	m.header, _ = json.Marshal(h)
	return m
}

// pkesk is a PKESK v3 packet in the shape seal writes for an ECDH key
// (key id, algorithm 18, a 263-bit MPI, a 48-octet wrapped key): the
// server checks its framing, not its cryptography.
func pkesk() []byte {
	body := append([]byte{3, 1, 2, 3, 4, 5, 6, 7, 8, 18, 0x01, 0x07}, bytes.Repeat([]byte{0x40}, 33)...)
	body = append(append(body, 48), bytes.Repeat([]byte{0xbb}, 48)...)
	return append([]byte{0xc1, byte(len(body))}, body...)
}

func (m *message) size() int64 { return int64(len(m.catalog) + len(m.b1) + len(m.a1)) }

// validTicket gets a ticket and does its work.
func (e *env) validTicket(m *message) string {
	e.t.Helper()
	ans := e.expect(201, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, m.size()))
	id := ans["ticket_id"].(string)
	if ans["valid"] != true {
		proofs := solve(e.t, ans, 4)
		ans = e.expect(200, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": proofs}})
		if ans["valid"] != true {
			e.t.Fatalf("not valid after work: %v", ans)
		}
	}
	return id
}

func (e *env) upload(id string, m *message) {
	e.t.Helper()
	for path, b := range map[string][]byte{"header": m.header, "catalog": m.catalog, "blocks/b1": m.b1, "attachments/a1": m.a1} {
		ans := e.expect(200, "PUT", "/v1/tickets/"+id+"/"+path, b)
		if ans["sha256"] != sum(b) || ans["size"].(json.Number).String() != fmt.Sprint(len(b)) {
			e.t.Fatalf("PUT %s answer %v", path, ans)
		}
	}
}

func TestTicketRequestStatuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 8, 4)
	ans := e.expect(201, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, 1000))
	if ans["valid"] != false || ans["worktype"] != "pow" || !strings.HasPrefix(ans["ticket_id"].(string), "t_") {
		t.Fatalf("ticket = %v", ans)
	}
	ch := ans["pow"].(map[string]any)
	if ch["bits"].(json.Number).String() != "8" || ch["count"].(json.Number).String() != "4" || len(ch["data"].(string)) != 44 {
		t.Fatalf("challenge = %v", ch)
	}
	if exp, _ := ans["expires"].(json.Number).Int64(); exp != e.clk.Now().Add(30*time.Minute).Unix() {
		t.Fatalf("expires = %v", ans["expires"])
	}

	for _, missing := range []string{"sender", "recipient", "preference", "parts"} {
		q := request(alice, e.bob.AddressHash, 1)
		delete(q, missing)
		if m := e.expect(400, "POST", "/v1/tickets", q); !strings.Contains(m["error"].(string), missing) {
			t.Errorf("missing %s: error %q does not name it", missing, m["error"])
		}
	}
	q := request(alice, e.bob.AddressHash, 1)
	q["parts"] = map[string]any{"blocks": 1, "bytes": 1}
	e.expect(400, "POST", "/v1/tickets", q)
	e.expect(400, "POST", "/v1/tickets", request("ALICE", e.bob.AddressHash, 1))
	e.expect(400, "POST", "/v1/tickets", `{"sender": `)
	e.expect(400, "POST", "/v1/tickets", `[]`)
	q = request(alice, e.bob.AddressHash, 1)
	q["preference"] = []string{"math"}
	e.expect(400, "POST", "/v1/tickets", q)
	e.expect(404, "POST", "/v1/tickets", request(alice, hash("nobody@example.net"), 1))
	e.expect(413, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, 1<<30))
	e.expect(405, "GET", "/v1/tickets", nil)
	e.expect(404, "GET", "/v2/whatever", nil)
	e.expect(404, "POST", "/v1/tickets/t_x/frobnicate", nil)

	// subscription_id is optional and accepted.
	q = request(alice, e.bob.AddressHash, 1)
	q["subscription_id"] = "list-1"
	e.expect(201, "POST", "/v1/tickets", q)
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	e.stop()
	e.cfg.RatePerMinute = 3
	e.start()
	for i := 0; i < 3; i++ {
		e.expect(201, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, 1))
	}
	status, m, h := e.call("POST", "/v1/tickets", request(alice, e.bob.AddressHash, 1))
	if status != 429 || h.Get("Retry-After") == "" || m["error"] == nil {
		t.Fatalf("4th request: %d %v Retry-After=%q", status, m, h.Get("Retry-After"))
	}
	e.clk.Add(time.Minute)
	e.expect(201, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, 1))
}

func TestWorkStatuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 12, 3)
	ans := e.expect(201, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, 100))
	id := ans["ticket_id"].(string)
	proofs := solve(t, ans, 3)

	e.expect(404, "POST", "/v1/tickets/t_unknown", map[string]any{"pow": map[string]any{"proofs": []int{1}}})
	e.expect(400, "POST", "/v1/tickets/"+id, `{"pow": {"proofs": [1.5]}}`)
	e.expect(400, "POST", "/v1/tickets/"+id, `{"math": {}}`)
	e.expect(405, "GET", "/v1/tickets/"+id, nil)
	// One wrong proof among good ones: none count, same challenge back.
	bad := e.expect(422, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": []uint64{proofs[0], findWrong(t, ans)}}})
	if fmt.Sprint(bad["pow"]) != fmt.Sprint(ans["pow"]) || bad["remaining"].(json.Number).String() != "3" {
		t.Fatalf("422 answer = %v", bad)
	}
	// Upload before valid is 403.
	e.expect(403, "PUT", "/v1/tickets/"+id+"/catalog", "x")
	e.expect(403, "POST", "/v1/tickets/"+id+"/complete", nil)
	got := e.expect(200, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": []uint64{proofs[0], proofs[0]}}})
	if got["valid"] != false || got["remaining"].(json.Number).String() != "2" {
		t.Fatalf("after one proof: %v", got)
	}
	// A proof already counted is not counted again.
	got = e.expect(200, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": []uint64{proofs[0], proofs[1]}}})
	if got["remaining"].(json.Number).String() != "1" {
		t.Fatalf("after repeat: %v", got)
	}
	e.clk.Add(10 * time.Minute)
	got = e.expect(200, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": []uint64{proofs[2]}}})
	if got["valid"] != true || got["remaining"] != nil || got["pow"] != nil {
		t.Fatalf("valid answer: %v", got)
	}
	// The expiry restarts when the ticket becomes valid.
	if exp, _ := got["expires"].(json.Number).Int64(); exp != e.clk.Now().Add(30*time.Minute).Unix() {
		t.Fatalf("expiry not restarted: %v", got["expires"])
	}
	e.clk.Add(30 * time.Minute)
	e.expect(410, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": []uint64{proofs[2]}}})
	e.expect(410, "PUT", "/v1/tickets/"+id+"/header", "{}")
	e.expect(410, "POST", "/v1/tickets/"+id+"/complete", nil)
}

// findWrong returns a proof that does not solve the challenge.
func findWrong(t *testing.T, ans map[string]any) uint64 {
	raw, _ := json.Marshal(ans["pow"])
	c, _ := pow.ParseChallenge(raw)
	for p := uint64(0); ; p++ {
		if !pow.Verify((*[32]byte)(&c.Data), c.Bits, p) {
			return p
		}
	}
}

func TestUploadAndComplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4, 4)
	m := e.message(alice)
	id := e.validTicket(m)

	e.expect(404, "PUT", "/v1/tickets/t_nope/catalog", "x")
	e.expect(400, "PUT", "/v1/tickets/"+id+"/blocks/b%20x", "x")
	e.expect(404, "PUT", "/v1/tickets/"+id+"/blocks/..%2f..", "x")
	e.expect(405, "POST", "/v1/tickets/"+id+"/catalog", "x")
	e.expect(413, "PUT", "/v1/tickets/"+id+"/catalog", bytes.Repeat([]byte("x"), int(m.size())+1))
	e.expect(413, "PUT", "/v1/tickets/"+id+"/header", bytes.Repeat([]byte("x"), maxHeaderBytes+1))

	// Complete with nothing uploaded names the header.
	if ans := e.expect(422, "POST", "/v1/tickets/"+id+"/complete", nil); ans["part"] != "header" {
		t.Fatalf("422 part = %v", ans["part"])
	}
	e.upload(id, m)
	// A mismatching part is named, and the ticket stays open.
	e.expect(200, "PUT", "/v1/tickets/"+id+"/blocks/b1", []byte("\xd2tampered block"))
	if ans := e.expect(422, "POST", "/v1/tickets/"+id+"/complete", nil); ans["part"] != "b1" {
		t.Fatalf("422 part = %v (%v)", ans["part"], ans["error"])
	}
	e.expect(200, "PUT", "/v1/tickets/"+id+"/blocks/b1", m.b1) // PUT replaces until completion
	ans := e.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)
	sig, _ := base64.StdEncoding.DecodeString(ans["receipt"].(string))
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{e.receiptFromWKD()}, bytes.NewReader(m.header), bytes.NewReader(sig), nil); err != nil {
		t.Fatalf("receipt does not verify with receipts@example.net from WKD: %v", err)
	}
	if !strings.HasPrefix(ans["message_id"].(string), "m_") {
		t.Fatalf("message_id = %v", ans["message_id"])
	}
	e.expect(409, "POST", "/v1/tickets/"+id+"/complete", nil)
	e.expect(409, "PUT", "/v1/tickets/"+id+"/catalog", m.catalog)
	e.expect(409, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": []int{1}}})
	e.assertStored(m)
}

func TestCompleteChecksHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	for name, mutate := range map[string]func(map[string]any){
		"from":        func(h map[string]any) { h["from"] = hash("mallory@example.org") },
		"to":          func(h map[string]any) { h["to"] = hash("carol@example.net") },
		"fingerprint": func(h map[string]any) { h["key_fingerprint"] = strings.Repeat("0", 40) },
		"version":     func(h map[string]any) { h["version"] = 2 },
		"key":         func(h map[string]any) { h["encrypted_key"] = "!!" },
		"kind":        func(h map[string]any) { h["parts"].([]any)[0].(map[string]any)["kind"] = "inline" },
	} {
		m := e.message(alice)
		id := e.validTicket(m)
		e.upload(id, m)
		var h map[string]any
		json.Unmarshal(m.header, &h)
		mutate(h)
		bad, _ := json.Marshal(h)
		e.expect(200, "PUT", "/v1/tickets/"+id+"/header", bad)
		if ans := e.expect(422, "POST", "/v1/tickets/"+id+"/complete", nil); ans["part"] != "header" {
			t.Errorf("%s: part = %v", name, ans["part"])
		}
	}
}

func (e *env) receiptFromWKD() *openpgp.Entity {
	e.t.Helper()
	u, _ := keyring.WKDURL(e.srv.URL, "receipts@example.net")
	resp, err := e.srv.Client().Get(u)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("WKD receipts key: %v %v", err, resp)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	k, err := keyring.ReadKey(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// assertStored checks the recipient's store holds the message and its parts.
func (e *env) assertStored(m *message) {
	e.t.Helper()
	n, err := e.st.UnfiledCount(context.Background(), e.bob.ID)
	if err != nil || n != 1 {
		e.t.Fatalf("unfiled messages for bob = %d, %v", n, err)
	}
	for _, b := range [][]byte{m.catalog, m.b1, m.a1} {
		f, err := e.st.Blobs().Open(sum(b))
		if err != nil {
			e.t.Fatalf("blob missing: %v", err)
		}
		f.Close()
	}
}

func TestRestartDuringUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4, 2)
	m := e.message(alice)
	id := e.validTicket(m)
	e.expect(200, "PUT", "/v1/tickets/"+id+"/header", m.header)
	e.expect(200, "PUT", "/v1/tickets/"+id+"/catalog", m.catalog)
	e.stop()
	e.start()
	e.expect(200, "PUT", "/v1/tickets/"+id+"/blocks/b1", m.b1)
	e.expect(200, "PUT", "/v1/tickets/"+id+"/attachments/a1", m.a1)
	e.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)
	e.assertStored(m)
}

func TestExpiredUploadsSwept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	m := e.message(alice)
	id := e.validTicket(m)
	e.upload(id, m)
	e.clk.Add(31 * time.Minute)
	ctx := context.Background()
	if up, _, err := e.st.SweepTickets(ctx, 24*time.Hour); err != nil || up != 4 {
		t.Fatalf("swept %d uploads, %v", up, err)
	}
	e.clk.Add(2 * time.Hour)
	if n, err := e.st.SweepBlobs(ctx, time.Hour); err != nil || n != 4 {
		t.Fatalf("swept %d blobs, %v", n, err)
	}
	e.expect(410, "POST", "/v1/tickets/"+id+"/complete", nil)
}

func TestWKD(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	u, _ := keyring.WKDURL(e.srv.URL, "Bob@example.net")
	resp, err := e.srv.Client().Get(u)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("WKD bob: %v %v", err, resp)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, e.bob.PublicKey) {
		t.Fatal("WKD served another key")
	}
	u, _ = keyring.WKDURL(e.srv.URL, "nobody@example.net")
	e.expect(404, "GET", strings.TrimPrefix(u, e.srv.URL), nil)
	u, _ = keyring.WKDURL(e.srv.URL, "bob@example.com") // not our domain
	e.expect(404, "GET", strings.TrimPrefix(u, e.srv.URL), nil)
	status, m, _ := e.call("GET", "/.well-known/openpgpkey/example.net/policy", nil)
	if status != 200 || m["raw"] != "" {
		t.Fatalf("policy: %d %v", status, m)
	}
	e.expect(405, "POST", "/.well-known/openpgpkey/example.net/policy", nil)
	e.expect(404, "GET", "/.well-known/openpgpkey/example.net/hu/../../etc", nil)
}

// TestCompleteRefusesUnreadableHeader: a header whose encrypted_key is
// no PKESK packet (here one that announces 94 octets and holds 14) is a
// 422 naming encrypted_key, not a 202 for mail nobody can open; the
// server needs no help from seal to see it.
func TestCompleteRefusesUnreadableHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	m := e.message(alice)
	var h map[string]any
	json.Unmarshal(m.header, &h)
	h["encrypted_key"] = base64.StdEncoding.EncodeToString([]byte("\xc1\x5e\x03pkesk-bytes"))
	m.header, _ = json.Marshal(h)
	id := e.validTicket(m)
	e.upload(id, m)
	if ans := e.expect(422, "POST", "/v1/tickets/"+id+"/complete", nil); ans["part"] != "header" || !strings.Contains(ans["error"].(string), "encrypted_key") {
		t.Fatalf("422 answer = %v", ans)
	}
}
