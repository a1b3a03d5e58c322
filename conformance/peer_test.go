package conformance_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// peer is an independent ticket API and Web Key Directory for one domain,
// written from docs/protocol.md §3 alone: what a foreign implementation would
// run. It records what senders do and every protocol violation it sees.
type peer struct {
	t       testing.TB
	domain  string
	users   map[string]*openpgp.Entity // address → key (public part served)
	receipt *openpgp.Entity
	bits    int
	count   int
	srv     *httptest.Server
	caFile  string // PEM of srv's certificate, for a [[route]] ca

	mu         sync.Mutex
	forced     map[string]int // recipient address → status every ticket request for it gets
	throttle   int            // how many ticket requests to answer 429 (Retry-After: 1)
	badReceipt bool           // sign receipts over other bytes than the header (§3.3.3 "fail")
	asked      map[string]int // recipient hash → ticket requests seen
	tickets    map[string]*peerTicket
	violations []string
	completed  chan *peerTicket
}

// peerTicket is one ticket and everything uploaded on it.
type peerTicket struct {
	id        string
	request   []byte // the POST /v1/tickets body as sent
	signature string // its Tollbridge-Signature header (§3.7), "" if none
	sender    string
	recipient string
	data      [32]byte
	proofs    map[uint64]bool
	valid     bool
	expires   int64
	done      bool
	uploads   map[string][]byte
	complete  []byte // header bytes at completion
}

func newPeer(t testing.TB, domain string, bits, count int) *peer {
	t.Helper()
	p := &peer{t: t, domain: domain, users: map[string]*openpgp.Entity{}, bits: bits, count: count,
		receipt: newKey(t, "receipts@"+domain), tickets: map[string]*peerTicket{}, forced: map[string]int{}, asked: map[string]int{}, completed: make(chan *peerTicket, 16)}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.caFile = filepath.Join(t.TempDir(), "peer-ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// violate records a protocol violation by the client.
func (p *peer) violate(format string, args ...any) {
	p.mu.Lock()
	p.violations = append(p.violations, fmt.Sprintf(format, args...))
	p.mu.Unlock()
}

func (p *peer) reply(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func (p *peer) fail(w http.ResponseWriter, status int, msg string, extra ...any) {
	body := map[string]any{"error": msg}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	p.reply(w, status, body)
}

func (p *peer) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/.well-known/openpgpkey/"):
		p.serveWKD(w, r)
	case path == "/v1/tickets" && r.Method == http.MethodPost:
		p.newTicket(w, r)
	case strings.HasPrefix(path, "/v1/tickets/"):
		p.onTicket(w, r, strings.Split(strings.TrimPrefix(path, "/v1/tickets/"), "/"))
	default:
		p.violate("%s %s: no such endpoint", r.Method, path)
		p.fail(w, 404, "no such endpoint")
	}
}

func (p *peer) serveWKD(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/.well-known/openpgpkey/"+p.domain+"/policy" {
		w.WriteHeader(200)
		return
	}
	for _, e := range append(p.userKeys(), p.receipt) {
		for _, id := range e.Identities {
			addr := id.UserId.Email
			if path, _, _ := strings.Cut(wkdPath(addr), "?"); path == r.URL.Path {
				if l := r.URL.Query().Get("l"); !strings.EqualFold(l, strings.Split(addr, "@")[0]) {
					p.violate("WKD request %s: l=%q, want the local part (§3.1)", r.URL, l)
				}
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(publicKey(p.t, e))
				return
			}
		}
	}
	p.fail(w, 404, "no such key")
}

func (p *peer) userKeys() []*openpgp.Entity {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*openpgp.Entity
	for _, e := range p.users {
		out = append(out, e)
	}
	return out
}

// newTicket is POST /v1/tickets, checked field by field against §3.2/§3.6.
func (p *peer) newTicket(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := decodeObj(body)
	parts, _ := q["parts"].(map[string]any)
	pref, _ := q["preference"].([]any)
	sender, _ := q["sender"].(string)
	rcpt, _ := q["recipient"].(string)
	if q == nil || sender == "" || rcpt == "" || parts == nil || pref == nil ||
		parts["blocks"] == nil || parts["attachments"] == nil || parts["bytes"] == nil {
		p.violate("ticket request %s lacks a required field (§3.6)", body)
		p.fail(w, 400, "malformed")
		return
	}
	p.mu.Lock()
	p.asked[rcpt]++
	throttled := p.throttle > 0
	if throttled {
		p.throttle--
	}
	var local *openpgp.Entity
	forced := 0
	for addr, e := range p.users {
		if h, _ := addrHash(addr); h == rcpt {
			local, forced = e, p.forced[addr]
		}
	}
	p.mu.Unlock()
	switch {
	case throttled:
		w.Header().Set("Retry-After", "1")
		p.fail(w, 429, "slow down")
		return
	case forced != 0:
		p.fail(w, forced, "forced by the test")
		return
	case local == nil:
		p.fail(w, 404, "unknown recipient")
		return
	}
	tk := &peerTicket{id: "t_" + randHex(8), request: body, signature: r.Header.Get("Tollbridge-Signature"), sender: sender, recipient: rcpt,
		proofs: map[uint64]bool{}, uploads: map[string][]byte{}, expires: time.Now().Add(time.Hour).Unix()}
	rand.Read(tk.data[:])
	p.mu.Lock()
	p.tickets[tk.id] = tk
	p.mu.Unlock()
	p.reply(w, 201, p.answer(tk))
}

func (p *peer) answer(tk *peerTicket) map[string]any {
	a := map[string]any{"ticket_id": tk.id, "valid": tk.valid, "expires": tk.expires}
	if !tk.valid {
		a["worktype"] = "pow"
		a["pow"] = map[string]any{"bits": p.bits, "data": base64.StdEncoding.EncodeToString(tk.data[:]), "count": p.count}
		a["remaining"] = p.count - len(tk.proofs)
	}
	return a
}

func (p *peer) onTicket(w http.ResponseWriter, r *http.Request, segs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tk := p.tickets[segs[0]]
	if tk == nil {
		p.fail(w, 404, "unknown ticket")
		return
	}
	switch {
	case len(segs) == 1 && r.Method == http.MethodPost:
		p.work(w, r, tk)
	case len(segs) == 2 && segs[1] == "complete" && r.Method == http.MethodPost:
		p.complete(w, tk)
	case r.Method == http.MethodPut && (len(segs) == 2 && (segs[1] == "header" || segs[1] == "catalog") ||
		len(segs) == 3 && (segs[1] == "blocks" || segs[1] == "attachments")):
		switch {
		case tk.done:
			p.violate("upload after completion")
			p.fail(w, 409, "completed")
		case !tk.valid:
			p.violate("upload %s on a ticket that is not valid yet", r.URL.Path)
			p.fail(w, 403, "not yet valid")
		default:
			b, _ := io.ReadAll(r.Body)
			tk.uploads[strings.Join(segs[1:], "/")] = b
			p.reply(w, 200, map[string]any{"size": len(b), "sha256": sha256Hex(b)})
		}
	default:
		p.violate("%s %s: wrong method or path", r.Method, r.URL.Path)
		p.fail(w, 405, "wrong method")
	}
}

// work is POST /v1/tickets/{id}: §3.2 proofs, checked with this suite's
// own hash.
func (p *peer) work(w http.ResponseWriter, r *http.Request, tk *peerTicket) {
	body, _ := io.ReadAll(r.Body)
	proofs, ok := parseProofs(body)
	if !ok {
		p.violate("proof post %s is not {\"pow\": {\"proofs\": [integers]}} (§3.2)", body)
		p.fail(w, 400, "malformed")
		return
	}
	c := challenge{bits: p.bits, data: tk.data, count: p.count}
	for _, pr := range proofs {
		if !c.solves(pr) {
			p.violate("wrong proof %d", pr)
			p.fail(w, 422, "wrong proof", "ticket_id", tk.id, "valid", false, "worktype", "pow",
				"pow", map[string]any{"bits": p.bits, "data": base64.StdEncoding.EncodeToString(tk.data[:]), "count": p.count})
			return
		}
	}
	for _, pr := range proofs {
		if tk.proofs[pr] {
			p.violate("proof %d sent twice", pr)
		}
		tk.proofs[pr] = true
	}
	if len(tk.proofs) >= p.count {
		tk.valid = true
		tk.expires = time.Now().Add(time.Hour).Unix()
	}
	p.reply(w, 200, p.answer(tk))
}

// complete is POST /v1/tickets/{id}/complete: the §3.6 checks, then a 202
// with a receipt signed over the header bytes.
func (p *peer) complete(w http.ResponseWriter, tk *peerTicket) {
	switch {
	case tk.done:
		p.fail(w, 409, "completed")
		return
	case !tk.valid:
		p.violate("complete on a ticket that is not valid")
		p.fail(w, 403, "not yet valid")
		return
	}
	raw, ok := tk.uploads["header"]
	h := decodeObj(raw)
	if !ok || h == nil {
		p.fail(w, 422, "header missing", "part", "header")
		return
	}
	cat, _ := h["catalog"].(map[string]any)
	if h["from"] != tk.sender || h["to"] != tk.recipient || cat == nil {
		p.violate("header from/to %v/%v do not match the ticket's %s/%s", h["from"], h["to"], tk.sender, tk.recipient)
		p.fail(w, 422, "header does not match the ticket", "part", "header")
		return
	}
	if !uploadMatches(tk.uploads["catalog"], cat) {
		p.fail(w, 422, "catalog", "part", "catalog")
		return
	}
	list, _ := h["parts"].([]any)
	for _, x := range list {
		pm, _ := x.(map[string]any)
		id, _ := pm["id"].(string)
		if !uploadMatches(tk.uploads[fmt.Sprint(pm["kind"])+"s/"+id], pm) {
			p.fail(w, 422, "part "+id, "part", id)
			return
		}
	}
	signed := raw
	if p.badReceipt {
		signed = append(bytes.Clone(raw), ' ')
	}
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, p.receipt, bytes.NewReader(signed), nil); err != nil {
		p.fail(w, 500, err.Error())
		return
	}
	tk.done, tk.complete = true, raw
	p.reply(w, 202, map[string]any{"message_id": "m_" + randHex(8), "received": time.Now().Unix(),
		"receipt": base64.StdEncoding.EncodeToString(sig.Bytes())})
	p.completed <- tk
}

// uploadMatches checks uploaded bytes against {"size", "sha256"}.
func uploadMatches(b []byte, ref map[string]any) bool {
	if b == nil || ref == nil {
		return false
	}
	n, _ := ref["size"].(json.Number)
	return n.String() == fmt.Sprint(len(b)) && ref["sha256"] == sha256Hex(b)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// awaitCompleted waits for n completed deliveries at the peer, failing on
// any protocol violation it saw.
func (p *peer) awaitCompleted(t *testing.T, n int) []*peerTicket {
	t.Helper()
	var out []*peerTicket
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case tk := <-p.completed:
			out = append(out, tk)
		case <-timeout:
			t.Fatalf("%d of %d deliveries completed at the peer in 30 s; violations: %v", len(out), n, p.violations)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.violations {
		t.Errorf("peer: the bridge broke the protocol: %s", v)
	}
	p.violations = nil
	return out
}
