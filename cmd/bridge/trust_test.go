package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"tollbridge/keyring"
)

// TestTrustNeedsSignedRequests is issue 9's finding 2 through two real
// bridges: after alice wrote to bob, bob's bridge's signed request earns a
// no-work ticket at alice's and his reply arrives as pass, while the same
// request from anyone else (unsigned, a version 1 sender or a forger)
// costs work, and an unsigned message landing on a no-work ticket is
// filed as fail.
func TestTrustNeedsSignedRequests(t *testing.T) {
	t.Parallel()
	s := startSites(t, t.TempDir(), twoSites(), "", 6, 2)
	if err := s.submit(0, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"},
		plainMessage("alice@example.org", "bob@example.net", "hello.bob")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's mail at bob's", 30*time.Second, func() bool { return s.unfiled(1, "bob@example.net") == 1 })

	// A forger claims bob at alice's ticket API: a ticket, with work.
	forged := fmt.Sprintf(`{"sender": %q, "recipient": %q, "preference": ["pow"], "parts": {"blocks": 1, "attachments": 0, "bytes": 100}}`,
		keyring.HashNormalized("bob@example.net"), keyring.HashNormalized("alice@example.org"))
	if valid := postTicket(t, s.bridges[0].addr("ticket"), forged); valid {
		t.Fatal("an unsigned request claiming bob got a no-work ticket at alice's bridge")
	}

	// Bob replies: his bridge signs, alice's grants a ticket without work.
	issued := func() float64 { return metric(t, s.bridges[0], "tollbridge_tickets_issued_total") }
	worked := func() float64 { return metric(t, s.bridges[0], "tollbridge_tickets_validated_total") }
	issuedBefore, workedBefore := issued(), worked()
	reply := "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: re\r\nMessage-ID: <re.1@example.net>\r\n\r\nhi back\r\n"
	if err := s.submit(1, "bob@example.net", "pw-bob@example.net", []string{"alice@example.org"}, reply); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's reply at alice's", 30*time.Second, func() bool { return issued() == issuedBefore+1 && s.unfiled(0, "alice@example.org") == 1 })
	if worked() != workedBefore {
		t.Errorf("bob's signed reply needed work (%v tickets made valid by work, was %v)", worked(), workedBefore)
	}
	got, ok := inbox(t, s.bridges[0].addr("imap"), "alice@example.org", "pw-alice@example.org")["re.1@example.net"]
	if !ok {
		t.Fatal("bob's reply is not in alice's INBOX")
	}
	if _, verdict := stripTrace(got); verdict != "pass" {
		t.Errorf("bob's reply shows tollbridge=%s, want pass", verdict)
	}
}

// postTicket posts a ticket request to the ticket API at addr and says
// whether the ticket came valid at once.
func postTicket(t *testing.T, addr, body string) bool {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Post("https://"+addr+"/v1/tickets", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Valid bool `json:"valid"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&ans) != nil {
		t.Fatalf("ticket request: HTTP %d", resp.StatusCode)
	}
	return ans.Valid
}

// metric reads one unlabelled counter of a bridge's metrics.
func metric(t *testing.T, b *bridge, name string) float64 {
	t.Helper()
	var m bytes.Buffer
	b.metrics.write(&m)
	for _, line := range strings.Split(m.String(), "\n") {
		var v float64
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}
