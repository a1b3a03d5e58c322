package ticketserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientFrom is an HTTPS client of e's server whose connections come from
// the loopback address ip (any of 127.0.0.0/8), so tests can be several
// clients.
func (e *env) clientFrom(ip string) *http.Client {
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr.DialContext = d.DialContext
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// ticketFrom gets a valid ticket for m as client c.
func (e *env) ticketFrom(c *http.Client, m *message) string {
	e.t.Helper()
	status, ans, _ := e.callWith(c, "POST", "/v1/tickets", request(alice, e.bob.AddressHash, m.size()))
	if status != 201 {
		e.t.Fatalf("ticket: %d %v", status, ans)
	}
	id := ans["ticket_id"].(string)
	if ans["valid"] != true {
		proofs := solve(e.t, ans, 4)
		if status, ans, _ = e.callWith(c, "POST", "/v1/tickets/"+id, map[string]any{"pow": map[string]any{"proofs": proofs}}); status != 200 || ans["valid"] != true {
			e.t.Fatalf("work: %d %v", status, ans)
		}
	}
	return id
}

// put uploads one part as client c and returns the status.
func (e *env) put(c *http.Client, id, path string, b []byte) (int, map[string]any, http.Header) {
	e.t.Helper()
	return e.callWith(c, "PUT", "/v1/tickets/"+id+"/"+path, b)
}

// uploadFrom uploads all of m as client c, expecting 200s.
func (e *env) uploadFrom(c *http.Client, id string, m *message) {
	e.t.Helper()
	for _, p := range []struct {
		path string
		b    []byte
	}{{"header", m.header}, {"catalog", m.catalog}, {"blocks/b1", m.b1}, {"attachments/a1", m.a1}} {
		if status, ans, _ := e.put(c, id, p.path, p.b); status != 200 {
			e.t.Fatalf("PUT %s: %d %v", p.path, status, ans)
		}
	}
}

// TestPartCountsCannotOverflow: blocks + attachments of 2^62 each wrapped
// to a negative sum, and a ticket was issued for a nonsense count.
func TestPartCountsCannotOverflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	q := request(alice, e.bob.AddressHash, 100)
	q["parts"] = map[string]any{"blocks": int64(1) << 62, "attachments": int64(1) << 62, "bytes": 100}
	e.expect(413, "POST", "/v1/tickets", q)
	q["parts"] = map[string]any{"blocks": int64(1) << 62, "attachments": 0, "bytes": 100}
	e.expect(413, "POST", "/v1/tickets", q)
	q["parts"] = map[string]any{"blocks": maxParts / 2, "attachments": maxParts - maxParts/2, "bytes": 100}
	e.expect(201, "POST", "/v1/tickets", q)
}

// TestDeepHeaderAndFailedCompletes: a header nested deeper than a header
// needs is a 422 before anything decodes it, and a ticket whose completion
// failed maxFailedCompletes times is closed: 410 from then on, its uploads
// deleted, so one ticket cannot be hammered.
func TestDeepHeaderAndFailedCompletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	m := e.message(alice)
	id := e.validTicket(m)
	e.upload(id, m)
	deep := []byte(strings.Repeat(`{"a":`, 9000) + `1` + strings.Repeat(`}`, 9000))
	e.expect(200, "PUT", "/v1/tickets/"+id+"/header", deep)
	for i := 1; i <= maxFailedCompletes; i++ {
		ans := e.expect(422, "POST", "/v1/tickets/"+id+"/complete", nil)
		if ans["part"] != "header" || !strings.Contains(ans["error"].(string), "nested deeper") {
			t.Fatalf("complete %d: %v", i, ans)
		}
		if closed := strings.Contains(ans["error"].(string), "closed"); closed != (i == maxFailedCompletes) {
			t.Fatalf("complete %d: %v", i, ans)
		}
	}
	e.expect(410, "POST", "/v1/tickets/"+id+"/complete", nil)
	e.expect(410, "PUT", "/v1/tickets/"+id+"/header", m.header)
	if ups, err := e.st.Uploads(context.Background(), id); err != nil || len(ups) != 0 {
		t.Fatalf("closed ticket keeps uploads %v, %v", ups, err)
	}
	if n := blobFiles(t, e); n != 0 {
		t.Fatalf("closed ticket left %d blob files", n)
	}
	// A sender that fixes its upload in time still delivers.
	id = e.validTicket(m)
	e.upload(id, m)
	e.expect(200, "PUT", "/v1/tickets/"+id+"/blocks/b1", []byte("\xd2wrong"))
	e.expect(422, "POST", "/v1/tickets/"+id+"/complete", nil)
	e.expect(200, "PUT", "/v1/tickets/"+id+"/blocks/b1", m.b1)
	e.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)
}

// blobFiles counts the files in e's blob store, temporary ones included.
func blobFiles(t *testing.T, e *env) int {
	n := 0
	filepath.Walk(filepath.Join(e.dir, "data", "blobs"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestPendingQuota: bytes uploaded to tickets that have not completed are
// bounded per client and in all (429 with Retry-After beyond); another
// client is not held to the first one's quota; completing frees it.
func TestPendingQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	m := e.message(alice)
	one := m.size() + int64(len(m.header)) // what one message holds pending
	e.stop()
	e.cfg.MaxPendingBytesPerClient = 2*one + one/5
	e.cfg.MaxPendingBytes = 3*one + one/2
	e.start()
	a, b := e.clientFrom("127.0.0.1"), e.clientFrom("127.0.0.2")

	a1, a2, a3 := e.ticketFrom(a, m), e.ticketFrom(a, m), e.ticketFrom(a, m)
	e.uploadFrom(a, a1, m)
	e.uploadFrom(a, a2, m)
	e.put(a, a3, "header", m.header)
	over := func(c *http.Client, id, who string) {
		t.Helper()
		status, ans, h := e.put(c, id, "attachments/a1", m.a1)
		if status != 429 || h.Get("Retry-After") == "" || ans["error"] == nil {
			t.Fatalf("%s over quota: %d %v Retry-After=%q", who, status, ans, h.Get("Retry-After"))
		}
	}
	over(a, a3, "client a")

	b1, b2 := e.ticketFrom(b, m), e.ticketFrom(b, m)
	e.uploadFrom(b, b1, m) // a's quota is a's
	e.put(b, b2, "header", m.header)
	over(b, b2, "client b (server total)")

	if status, ans, _ := e.callWith(a, "POST", "/v1/tickets/"+a1+"/complete", nil); status != 202 {
		t.Fatalf("complete: %d %v", status, ans)
	}
	for _, p := range []struct {
		path string
		b    []byte
	}{{"attachments/a1", m.a1}, {"catalog", m.catalog}, {"blocks/b1", m.b1}} {
		if status, ans, _ := e.put(a, a3, p.path, p.b); status != 200 {
			t.Fatalf("after completing a ticket, PUT %s: %d %v", p.path, status, ans)
		}
	}
	ctx := context.Background()
	if client, total, err := e.st.PendingBytes(ctx, "127.0.0.1"); err != nil || client != 2*one || total != 3*one+int64(len(m.header)) {
		t.Fatalf("pending: client %d, total %d, %v; one message is %d", client, total, err, one)
	}
}

// TestSlowUploadCutOff: an upload slower than the minimum rate is cut off
// long before the upload deadline, and nothing of it is kept; uploads at
// normal speed are not affected.
func TestSlowUploadCutOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, 1)
	e.stop()
	e.cfg.MinUploadRate, e.cfg.UploadRateWindow = 1000, 100*time.Millisecond
	e.start()
	m := e.message(alice)
	id := e.validTicket(m)
	e.upload(id, m) // full speed passes

	slow := e.validTicket(m)
	pr, pw := io.Pipe()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // 10 bytes every 20 ms: 500 bytes/s
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(m.a1); i += 10 {
			select {
			case <-stop:
				pw.CloseWithError(io.ErrClosedPipe)
				return
			case <-tick.C:
			}
			if _, err := pw.Write(m.a1[i : i+10]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", e.srv.URL+"/v1/tickets/"+slow+"/attachments/a1", pr)
	req.ContentLength = int64(len(m.a1))
	resp, err := e.srv.Client().Do(req)
	if ctx.Err() != nil {
		t.Fatal("a 500 bytes/s upload was not cut off within 20 s")
	}
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Fatalf("slow upload: %d %s (close %v)", resp.StatusCode, body, resp.Close)
		}
	}
	if ups, err := e.st.Uploads(context.Background(), slow); err != nil || len(ups) != 0 {
		t.Fatalf("slow upload stored: %v %v", ups, err)
	}
	// The handler may still be ending when the client saw its connection go.
	for i := 0; ; i++ {
		tmp, _ := os.ReadDir(filepath.Join(e.dir, "data", "blobs", "tmp"))
		if len(tmp) == 0 {
			break
		}
		if i == 100 {
			t.Fatalf("slow upload left %d temporary files", len(tmp))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.expect(202, "POST", "/v1/tickets/"+id+"/complete", nil)
}
