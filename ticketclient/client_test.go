package ticketclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/protocol"
	"tollbridge/store"
	"tollbridge/ticketclient"
	"tollbridge/ticketserver"
)

// peer is a receiving bridge's ticket API with user bob@example.net.
type peer struct {
	st      *store.Store
	bob     *store.User
	receipt *openpgp.Entity
	srv     *httptest.Server
}

func newPeer(t *testing.T, bits, count int) *peer {
	t.Helper()
	return newPeerWith(t, pow.NewRegistry(pow.HashWork{}), bits, count)
}

// newPeerWith is newPeer offering the worktypes of works.
func newPeerWith(t *testing.T, works *pow.Registry, bits, count int) *peer {
	t.Helper()
	dir := t.TempDir()
	st := teststore.OpenDir(t, dir, store.Options{})
	rk, _ := keyring.LoadOrCreateServiceKey(dir+"/receipts.key", "receipts@example.net")
	bob, _ := teststore.AddUser(t, st, "bob@example.net", "pw")
	s := ticketserver.New(ticketserver.Options{
		Store: st, Works: works,
		Hostname: "mail.example.net", Domains: []string{"example.net"},
		Difficulty: pow.Difficulty{Bits: bits, Count: count}, Expiry: 30 * time.Minute,
		MaxMessageBytes: 1 << 20, ReceiptKeys: map[string]*openpgp.Entity{"example.net": rk},
	})
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	return &peer{st: st, bob: bob, receipt: rk, srv: srv}
}

// caFile writes the test server's certificate as a route's ca file.
func caFile(t *testing.T, srv *httptest.Server) string {
	p := filepath.Join(t.TempDir(), "peer.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newClient(t *testing.T, url, ca string) *ticketclient.Client {
	t.Helper()
	c, err := ticketclient.New([]ticketclient.Route{{Domain: "example.net", URL: url, CA: ca}},
		pow.NewRegistry(pow.HashWork{}), ticketclient.Options{Backoff: 10 * time.Millisecond, NoSRV: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// pkesk is a PKESK v3 packet in the shape seal writes for an ECDH key
// (key id, algorithm 18, a 263-bit MPI, a 48-octet wrapped key): the
// server checks its framing, not its cryptography.
func pkesk() []byte {
	body := append([]byte{3, 1, 2, 3, 4, 5, 6, 7, 8, 18, 0x01, 0x07}, bytes.Repeat([]byte{0x40}, 33)...)
	body = append(append(body, 48), bytes.Repeat([]byte{0xbb}, 48)...)
	return append([]byte{0xc1, byte(len(body))}, body...)
}

// message builds an opaque, sealed-looking message for bob.
func message(p *peer) (*ticketclient.Message, []byte) {
	catalog := []byte("\xd2catalog ciphertext")
	b1 := []byte("\xd2block ciphertext")
	a1 := bytes.Repeat([]byte("\xd2attachment"), 3000)
	from, _ := keyring.AddressHash("alice@example.org")
	h, _ := json.Marshal(map[string]any{
		"version": 1, "from": from, "to": p.bob.AddressHash, "key_fingerprint": p.bob.Fingerprint,
		"encrypted_key": base64.StdEncoding.EncodeToString(pkesk()),
		"catalog":       map[string]any{"size": len(catalog), "sha256": sum(catalog)},
		"parts": []any{
			map[string]any{"id": "b1", "kind": "block", "size": len(b1), "sha256": sum(b1)},
			map[string]any{"id": "a1", "kind": "attachment", "size": len(a1), "sha256": sum(a1)},
		},
	})
	return &ticketclient.Message{
		Sender: from, Recipient: p.bob.AddressHash,
		Header: ticketclient.BytesBlob(h), Catalog: ticketclient.BytesBlob(catalog),
		Parts: []ticketclient.Part{
			{ID: "b1", Kind: "block", Blob: ticketclient.BytesBlob(b1)},
			{ID: "a1", Kind: "attachment", Blob: ticketclient.BytesBlob(a1)},
		},
	}, h
}

func TestDeliverWithWork(t *testing.T) {
	t.Parallel()
	p := newPeer(t, 10, 4)
	c := newClient(t, p.srv.URL, caFile(t, p.srv))
	ctx := context.Background()
	ep, err := c.Discover(ctx, "Example.NET")
	if err != nil {
		t.Fatal(err)
	}
	m, header := message(p)
	var mu sync.Mutex
	var stages []string
	var tickets []*protocol.Ticket
	maxFound := 0
	r, err := c.Deliver(ctx, ep, m, nil, ticketclient.Hooks{
		Ticket: func(tk *protocol.Ticket) error { tickets = append(tickets, tk); return nil },
		Stage: func(s string, pr pow.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if len(stages) == 0 || stages[len(stages)-1] != s {
				stages = append(stages, s)
			}
			maxFound = max(maxFound, pr.Found)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{p.receipt}, bytes.NewReader(header), bytes.NewReader(r.Receipt), nil); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if got := strings.Join(stages, ","); got != "ticket,working,uploading,completing" || maxFound != 4 {
		t.Errorf("stages = %s, proofs seen %d", got, maxFound)
	}
	if n, _ := p.st.UnfiledCount(ctx, p.bob.ID); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
	// Resuming the completed ticket reports the earlier delivery and does
	// not deliver twice.
	_, err = c.Deliver(ctx, ep, m, tickets[0], ticketclient.Hooks{})
	if !errors.Is(err, ticketclient.ErrAlreadyCompleted) {
		t.Fatalf("resume after completion: %v", err)
	}
	if n, _ := p.st.UnfiledCount(ctx, p.bob.ID); n != 1 {
		t.Fatalf("bob has %d messages after resume", n)
	}
}

func TestResumeAfterInterruptedUpload(t *testing.T) {
	t.Parallel()
	p := newPeer(t, 4, 2)
	c := newClient(t, p.srv.URL, caFile(t, p.srv))
	ctx := context.Background()
	ep, _ := c.Discover(ctx, "example.net")
	m, _ := message(p)
	var first *protocol.Ticket
	// Crash right after the ticket is noted: nothing is uploaded.
	_, err := c.Deliver(ctx, ep, m, nil, ticketclient.Hooks{Ticket: func(tk *protocol.Ticket) error {
		first = tk
		return errors.New("simulated crash")
	}})
	if err == nil || first == nil {
		t.Fatal("crash hook did not stop the delivery")
	}
	if _, err := c.Deliver(ctx, ep, m, first, ticketclient.Hooks{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if n, _ := p.st.UnfiledCount(ctx, p.bob.ID); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
}

// TestResumeLegacyTicketRecord: an outbox record of a ticket not yet
// valid, kept in the form used before tickets were kept as the server
// answers them ("challenge" instead of the worktype's name), resumes with
// a new ticket rather than failing on work whose challenge it lacks.
func TestResumeLegacyTicketRecord(t *testing.T) {
	t.Parallel()
	p := newPeer(t, 4, 2)
	c := newClient(t, p.srv.URL, caFile(t, p.srv))
	ctx := context.Background()
	ep, _ := c.Discover(ctx, "example.net")
	m, _ := message(p)
	var first *protocol.Ticket
	_, err := c.Deliver(ctx, ep, m, nil, ticketclient.Hooks{Ticket: func(tk *protocol.Ticket) error {
		first = tk
		return errors.New("simulated crash")
	}})
	if err == nil || first == nil || first.Valid {
		t.Fatalf("want a crash on a ticket that needs work: %v, %+v", err, first)
	}
	legacy, _ := json.Marshal(map[string]any{"ticket_id": first.ID, "valid": false, "expires": first.Expires,
		"worktype": first.Worktype, "challenge": first.Challenge})
	var resume protocol.Ticket
	if err := json.Unmarshal(legacy, &resume); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deliver(ctx, ep, m, &resume, ticketclient.Hooks{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if n, _ := p.st.UnfiledCount(ctx, p.bob.ID); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
}

func TestPermanentAndTemporaryErrors(t *testing.T) {
	t.Parallel()
	p := newPeer(t, 1, 1)
	var fails atomic.Int32
	target, _ := url.Parse(p.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = p.srv.Client().Transport
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/blocks/b1") && r.Method == "PUT" && fails.Add(1) == 1:
			// Swallow the first upload of b1: complete will name it.
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"size": 0, "sha256": ""}`))
		case r.URL.Path == "/v1/tickets" && fails.Load() < 0:
			w.WriteHeader(503)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	defer front.Close()
	c := newClient(t, front.URL, caFile(t, front))
	ctx := context.Background()
	ep, _ := c.Discover(ctx, "example.net")
	m, _ := message(p)
	if _, err := c.Deliver(ctx, ep, m, nil, ticketclient.Hooks{}); err != nil {
		t.Fatalf("delivery with a lost part: %v", err)
	}

	m.Recipient, _ = keyring.AddressHash("nobody@example.net")
	_, err := c.Deliver(ctx, ep, m, nil, ticketclient.Hooks{})
	if ticketclient.StatusOf(err) != 404 || ticketclient.IsTemporary(err) {
		t.Fatalf("unknown recipient: %v", err)
	}

	fails.Store(-100) // the server is down: 503 on every ticket request
	m, _ = message(p)
	_, err = c.Deliver(ctx, ep, m, nil, ticketclient.Hooks{})
	if ticketclient.StatusOf(err) != 503 || !ticketclient.IsTemporary(err) {
		t.Fatalf("server down: %v", err)
	}
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	lookups := map[string]func() ([]*net.SRV, error){
		"srv.example": func() ([]*net.SRV, error) {
			return []*net.SRV{{Target: "mail.srv.example.", Port: 8443}}, nil
		},
		"legacy.example": func() ([]*net.SRV, error) {
			return nil, &net.DNSError{Err: "no such host", Name: "_tollbridge._tcp.legacy.example", IsNotFound: true}
		},
		"flaky.example": func() ([]*net.SRV, error) {
			return nil, &net.DNSError{Err: "server misbehaving", Name: "_tollbridge._tcp.flaky.example", IsTemporary: true}
		},
	}
	c, err := ticketclient.New([]ticketclient.Route{{Domain: "route.example", URL: "https://127.0.0.1:9443/"}}, pow.NewRegistry(pow.HashWork{}),
		ticketclient.Options{LookupSRV: func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
			if service != "tollbridge" || proto != "tcp" {
				t.Errorf("lookup %s %s", service, proto)
			}
			srvs, err := lookups[name]()
			return "", srvs, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if e, err := c.Discover(ctx, "route.example"); err != nil || e.URL != "https://127.0.0.1:9443" {
		t.Errorf("route: %+v %v", e, err)
	}
	if e, err := c.Discover(ctx, "srv.example"); err != nil || e.URL != "https://mail.srv.example:8443" {
		t.Errorf("srv: %+v %v", e, err)
	}
	if _, err := c.Discover(ctx, "legacy.example"); !errors.Is(err, ticketclient.ErrLegacy) {
		t.Errorf("legacy: %v", err)
	}
	if _, err := c.Discover(ctx, "flaky.example"); errors.Is(err, ticketclient.ErrLegacy) || !ticketclient.IsTemporary(err) {
		t.Errorf("dns failure must be temporary, not legacy: %v", err)
	}
	if _, err := ticketclient.New([]ticketclient.Route{{Domain: "x.example", URL: "https://x", CA: "/nonexistent.pem"}}, pow.NewRegistry(), ticketclient.Options{}); err == nil {
		t.Error("missing ca file accepted")
	}
}
