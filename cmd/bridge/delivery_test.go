package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// threeSites is alice's, bob's (and carol's) and erin's bridges.
func threeSites() []*qsSite {
	return []*qsSite{
		{Name: "org", Domain: "example.org", User: "alice@example.org"},
		{Name: "net", Domain: "example.net", User: "bob@example.net"},
		{Name: "com", Domain: "example.com", User: "erin@example.com"},
	}
}

const fanOutMessage = "From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.net>, carol@example.net\r\n" +
	"Cc: erin@example.com, frank@legacy.example\r\n" +
	"Bcc: dave@example.org\r\n" +
	"Subject: fan out\r\n" +
	"Message-ID: <fan.1@example.org>\r\n" +
	"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"One message, five recipients, three routes.\r\n"

// TestFanOutAllRoutes sends one message To + Cc + Bcc to three ticketed
// recipients on two servers, one local recipient and one legacy one.
func TestFanOutAllRoutes(t *testing.T) {
	t.Parallel()
	relay := startSmarthost(t)
	s := startSites(t, t.TempDir(), threeSites(), relay.addr, 6, 2)
	s.addUser(1, "carol@example.net")
	s.addUser(0, "dave@example.org")
	rcpts := []string{"bob@example.net", "carol@example.net", "erin@example.com", "frank@legacy.example", "dave@example.org"}
	if err := s.submit(0, "alice@example.org", "pw-alice@example.org", rcpts, fanOutMessage); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all deliveries", 60*time.Second, func() bool {
		return s.unfiled(1, "bob@example.net") == 1 && s.unfiled(1, "carol@example.net") == 1 &&
			s.unfiled(2, "erin@example.com") == 1 && s.unfiled(0, "dave@example.org") == 1 && len(relay.messages()) == 1
	})
	got := relay.messages()[0]
	want := strings.Replace(fanOutMessage, "Bcc: dave@example.org\r\n", "", 1)
	if string(got.data) != want || got.from != "alice@example.org" || strings.Join(got.to, ",") != "frank@legacy.example" {
		t.Fatalf("legacy relay got from=%s to=%v:\n%q\nwant\n%q", got.from, got.to, got.data, want)
	}
	if len(got.dkim) != 2 {
		t.Errorf("legacy mail has %d DKIM signatures, want 2 (Ed25519, RSA)", len(got.dkim))
	}
	waitFor(t, "empty queue", 10*time.Second, func() bool {
		q, _ := s.bridges[0].st.Queue(t.Context())
		return len(q) == 0
	})
	// Domains that took ticketed mail are remembered: never downgraded.
	for d, ticketed := range map[string]bool{"example.net": true, "example.com": true, "legacy.example": false} {
		if e, err := s.bridges[0].st.TicketedEvidence(t.Context(), d); err != nil || (e.Endpoint != "") != ticketed {
			t.Errorf("%s: ticketed evidence %+v, %v", d, e, err)
		}
	}
	ds, _ := s.bridges[0].st.Deliveries(t.Context(), 10)
	receipts := 0
	for _, d := range ds {
		if d.Outcome != "delivered" {
			t.Errorf("delivery %+v", d)
		}
		if len(d.Receipt) > 0 {
			receipts++
		}
	}
	if len(ds) != 5 || receipts != 3 {
		t.Errorf("%d deliveries, %d with receipts; want 5 and 3", len(ds), receipts)
	}
	var m bytes.Buffer
	s.bridges[0].metrics.write(&m)
	for _, want := range []string{`tollbridge_messages_accepted_total{listener="submission"} 1`,
		`tollbridge_messages_delivered_total{route="ticket"} 3`, `tollbridge_messages_delivered_total{route="local"} 1`,
		`tollbridge_messages_delivered_total{route="legacy"} 1`, "tollbridge_queue_depth 0"} {
		if !strings.Contains(m.String(), want+"\n") {
			t.Errorf("sender's metrics lack %q:\n%s", want, m.String())
		}
	}
	m.Reset()
	s.bridges[1].metrics.write(&m)
	for _, want := range []string{"tollbridge_tickets_issued_total 2", "tollbridge_tickets_validated_total 2", "tollbridge_messages_received_total 2"} {
		if !strings.Contains(m.String(), want+"\n") {
			t.Errorf("receiver's metrics lack %q:\n%s", want, m.String())
		}
	}
}

func twoSites() []*qsSite {
	return []*qsSite{
		{Name: "org", Domain: "example.org", User: "alice@example.org"},
		{Name: "net", Domain: "example.net", User: "bob@example.net"},
	}
}

func plainMessage(from, to, subject string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@example.org>\r\n\r\n" + subject + "\r\n"
}

// TestRetryUntilPeerComesBack: the receiving bridge is down; the message
// waits, is retried, and arrives once the bridge is up.
func TestRetryUntilPeerComesBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	org := startSites(t, dir, twoSites(), "", 4, 1, 0)
	if err := org.submit(0, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, plainMessage("alice@example.org", "bob@example.net", "later")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two failed tries", 20*time.Second, func() bool {
		q, _ := org.bridges[0].st.Queue(t.Context())
		return len(q) == 1 && q[0].Tries >= 2 && q[0].State == "waiting" && q[0].LastError != ""
	})
	net := restartSites(t, org.layout, 1)
	waitFor(t, "delivery after the peer came back", 30*time.Second, func() bool {
		return net.unfiled(1, "bob@example.net") == 1
	})
}

// TestUnknownRecipientBounces: a 404 from the peer bounces at once with a
// DSN in the sender's store.
func TestUnknownRecipientBounces(t *testing.T) {
	t.Parallel()
	s := startSites(t, t.TempDir(), twoSites(), "", 4, 1)
	if err := s.submit(0, "alice@example.org", "pw-alice@example.org", []string{"nobody@example.net"}, plainMessage("alice@example.org", "nobody@example.net", "lost")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bounce", 20*time.Second, func() bool { return s.unfiled(0, "alice@example.org") == 1 })
	ds, _ := s.bridges[0].st.Deliveries(t.Context(), 10)
	if len(ds) != 1 || ds[0].Outcome != "bounced" || !strings.Contains(ds[0].Detail, "5.1.1") {
		t.Fatalf("deliveries = %+v", ds)
	}
	// Alice's client shows the bounce: a multipart/report naming the
	// recipient and the status, with the original header.
	box := inbox(t, s.bridges[0].addr("imap"), "alice@example.org", "pw-alice@example.org")
	if len(box) != 1 {
		t.Fatalf("alice has %d messages, want the bounce", len(box))
	}
	for _, dsn := range box {
		body, verdict := stripTrace(dsn)
		for _, want := range []string{"Content-Type: multipart/report; report-type=delivery-status",
			"Final-Recipient: rfc822; nobody@example.net", "Status: 5.1.1", "Subject: lost"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("bounce lacks %q:\n%s", want, body)
			}
		}
		if verdict != "none" {
			t.Errorf("bounce verdict %q", verdict)
		}
	}
}
