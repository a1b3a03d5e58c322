package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tollbridge/keyring"
	"tollbridge/pow"
)

// heavy skips a test unless TOLLBRIDGE_HEAVY=1 (.ci/run sets it): such a
// test loads the machine for a while.
func heavy(t *testing.T) {
	t.Helper()
	if os.Getenv("TOLLBRIDGE_HEAVY") != "1" {
		t.Skip("heavy test: set TOLLBRIDGE_HEAVY=1 to run it")
	}
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// hostileHeader is a header of about n bytes nested almost as deep as
// encoding/json allows ({"a":{"a":…"padding"…}}): it once cost the
// duplicate-key check memory quadratic in the depth.
func hostileHeader(n int) []byte {
	const depth = 9990
	pad := n - 6*depth - 2
	return []byte(strings.Repeat(`{"a":`, depth) + `"` + strings.Repeat("x", pad) + `"` + strings.Repeat(`}`, depth))
}

// hammerClient is one sender hammering a ticket API with hostile headers.
type hammerClient struct {
	t         *testing.T
	http      *http.Client
	base      string
	recipient string
	completes atomic.Int64
}

func (c *hammerClient) call(ctx context.Context, method, path string, body []byte) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m)
	return resp.StatusCode, m, nil
}

// ticket gets a valid ticket (the work is one proof of one bit).
func (c *hammerClient) ticket(ctx context.Context, sender string) (string, error) {
	q, _ := json.Marshal(map[string]any{"sender": sender, "recipient": c.recipient, "preference": []string{"pow"},
		"parts": map[string]any{"blocks": 1, "attachments": 0, "bytes": 1000}})
	status, ans, err := c.call(ctx, "POST", "/v1/tickets", q)
	if err != nil || status != 201 {
		return "", fmt.Errorf("ticket: %d %v %v", status, ans, err)
	}
	id := ans["ticket_id"].(string)
	if ans["valid"] == true {
		return id, nil
	}
	raw, _ := json.Marshal(ans["pow"])
	ch, err := pow.ParseChallenge(raw)
	if err != nil {
		return "", err
	}
	var proofs []uint64
	err = pow.Solve(ctx, ch, pow.SolveOptions{Workers: 1}, func(p []uint64) error { proofs = append(proofs, p...); return nil })
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]any{"pow": map[string]any{"proofs": proofs}})
	if status, ans, err := c.call(ctx, "POST", "/v1/tickets/"+id, body); err != nil || status != 200 {
		return "", fmt.Errorf("work: %d %v %v", status, ans, err)
	}
	return id, nil
}

// hammer takes tickets rounds times; on each it uploads header and
// completes until the ticket is closed (410), at most tries times.
func (c *hammerClient) hammer(ctx context.Context, sender string, header []byte, rounds, tries int) error {
	for range rounds {
		id, err := c.ticket(ctx, sender)
		if err != nil {
			return err
		}
		if status, ans, err := c.call(ctx, "PUT", "/v1/tickets/"+id+"/header", header); err != nil || status != 200 {
			return fmt.Errorf("header: %d %v %v", status, ans, err)
		}
		for range tries {
			status, ans, err := c.call(ctx, "POST", "/v1/tickets/"+id+"/complete", nil)
			if err != nil {
				return err
			}
			c.completes.Add(1)
			if status == http.StatusGone {
				break
			}
			if status != http.StatusUnprocessableEntity {
				return fmt.Errorf("complete: %d %v", status, ans)
			}
		}
	}
	return nil
}

// TestHammerCompleteRSS: 16 clients hammer POST /complete of a real
// bridge process with 256 KB headers nested ~10,000 deep, on many
// tickets; the bridge's peak RSS stays under 200 MB. (Before the nesting
// bound, 16 parallel completes took a bridge to gigabytes.)
func TestHammerCompleteRSS(t *testing.T) {
	heavy(t)
	const (
		clients = 16
		rounds  = 4  // tickets per client
		tries   = 12 // completes per ticket, at most
		limit   = 200 << 20
	)
	l := processLayout(t, 0, 1)
	p := serveProcess(t, l.configPath(l.Sites[1])) // bob@example.net's bridge
	pem, err := os.ReadFile(p.cfg.TLS.Cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: clients,
	}}
	bob, _ := keyring.AddressHash("bob@example.net")
	header := hostileHeader(256<<10 - 1024)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The peak is watched as the clients run, so that a bridge that
	// blows up is stopped early rather than taking the machine with it.
	var peak atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			if v, err := peakRSS(p.cmd.Process.Pid); err == nil {
				peak.Store(v)
				if v > limit {
					cancel()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	hc := &hammerClient{t: t, http: client, base: "https://" + p.cfg.Ticket.Listen, recipient: bob}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender, _ := keyring.AddressHash(fmt.Sprintf("sender%d@example.org", i))
			if err := hc.hammer(ctx, sender, header, rounds, tries); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	stopped := ctx.Err() != nil
	cancel()
	<-watched
	if v, err := peakRSS(p.cmd.Process.Pid); err == nil {
		peak.Store(v)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d completes with %d-byte headers in %s; bridge peak RSS (VmHWM) %d MiB", hc.completes.Load(), len(header), time.Since(start).Round(time.Millisecond), peak.Load()>>20)
	if stopped || peak.Load() >= limit {
		t.Fatalf("bridge peak RSS %d MiB, want < %d MiB", peak.Load()>>20, limit>>20)
	}
}
