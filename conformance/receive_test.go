package conformance_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// deliverByHand runs the whole §3.2–3.3 exchange as an independent
// sender: ticket, this suite's own proof-of-work, uploads in an unusual
// order, complete; it checks the receipt and returns the header bytes.
func deliverByHand(t *testing.T, a *api, m *sealed, from, to string, rcpt *openpgp.Entity) []byte {
	t.Helper()
	header := m.header(t, hashAddr(t, from), hashAddr(t, to), rcpt, true)
	r := uploadByHand(t, a, m, from, to, header)
	if r.status != 202 {
		t.Fatalf("complete: HTTP %d, want 202: %s", r.status, r.body)
	}
	checkReceiptWith(t, a, r, header, strings.Split(to, "@")[1], time.Time{})
	return header
}

// uploadByHand gets and works a ticket, uploads m with the given header
// and returns the answer to complete.
func uploadByHand(t *testing.T, a *api, m *sealed, from, to string, header []byte) *reply {
	t.Helper()
	tk := a.expect(201, "POST", "/v1/tickets", m.ticketRequest(hashAddr(t, from), hashAddr(t, to))).obj
	id := str(t, tk, "ticket_id")
	if v, _ := tk["valid"].(bool); !v {
		c := challengeOf(t, tk)
		proofs := c.solve(t, c.count, nil)
		for i, p := range proofs {
			r := a.expect(200, "POST", "/v1/tickets/"+id, proofsBody(p))
			if i < len(proofs)-1 {
				remaining(t, "proof post", r, int64(len(proofs)-1-i))
			} else if v, _ := r.obj["valid"].(bool); !v {
				t.Fatalf("all proofs posted, ticket not valid: %s", r.body)
			}
		}
	}
	// "in any order": parts first, header last.
	for i := len(m.parts) - 1; i >= 0; i-- {
		p := m.parts[i]
		a.expect(200, "PUT", "/v1/tickets/"+id+"/"+p.kind+"s/"+p.id, p.sealed)
	}
	a.expect(200, "PUT", "/v1/tickets/"+id+"/catalog", m.catalog)
	a.expect(200, "PUT", "/v1/tickets/"+id+"/header", header)
	return a.send("POST", "/v1/tickets/"+id+"/complete", nil)
}

// mailbox fetches every message of a mailbox over IMAP (BODY.PEEK[]).
func mailbox(t *testing.T, addr, user, pass, name string) [][]byte {
	t.Helper()
	msgs, err := tryMailbox(addr, user, pass, name)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func tryMailbox(addr, user, pass, name string) ([][]byte, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		return nil, fmt.Errorf("IMAP login %s: %w", user, err)
	}
	box, err := c.Select(name, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("IMAP select %s: %w", name, err)
	}
	if box.NumMessages == 0 {
		return nil, nil
	}
	var seq imap.SeqSet
	seq.AddRange(1, box.NumMessages)
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(seq, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("IMAP fetch %s: %w", name, err)
	}
	var out [][]byte
	for _, m := range msgs {
		out = append(out, m.FindBodySection(section))
	}
	return out, nil
}

var traceField = regexp.MustCompile(`^(?i:Received|Authentication-Results):[^\r\n]*\r\n([ \t][^\r\n]*\r\n)*`)

// splitTrace removes the trace fields a receiving bridge puts in front
// (§3.4 "Received:, Authentication-Results:") and returns the rest and the
// tollbridge= verdict.
func splitTrace(b []byte) ([]byte, string) {
	verdict := ""
	for {
		loc := traceField.FindIndex(b)
		if loc == nil {
			return b, verdict
		}
		if f := string(b[:loc[1]]); strings.HasPrefix(strings.ToLower(f), "authentication-results:") {
			if _, v, ok := strings.Cut(f, "tollbridge="); ok {
				verdict = strings.TrimRight(strings.Fields(v)[0], ";")
			}
		}
		b = b[loc[1]:]
	}
}

// expectMail checks that a mailbox holds exactly the given messages, each
// rebuilt byte for byte with the given verdict.
func expectMail(t *testing.T, box string, got [][]byte, want map[string]string, verdicts map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s holds %d messages, want %d", box, len(got), len(want))
	}
	for _, g := range got {
		body, verdict := splitTrace(g)
		name := ""
		for n, w := range want {
			if bytes.Contains(body, []byte(strings.SplitN(strings.SplitN(w, "Message-ID: ", 2)[1], "\r\n", 2)[0])) {
				name = n
			}
		}
		if name == "" {
			t.Errorf("%s: unexpected message:\n%.500s", box, g)
			continue
		}
		if string(body) != want[name] {
			t.Errorf("%s: message %s does not rebuild byte for byte (§3.4 \"byte for byte what the sender's client submitted\"):\ngot:  %q\nwant: %q", box, name, body, want[name])
		}
		if verdict != verdicts[name] {
			t.Errorf("%s: message %s: tollbridge=%q, want %q (§3.4)", box, name, verdict, verdicts[name])
		}
	}
}

// waitBounce waits up to 15 s for a DSN about rcpt among bob's INBOX
// messages after the first before.
func waitBounce(t *testing.T, b *bridgeProc, before int, rcpt string) bool {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		inbox := mailbox(t, b.imap, "bob@example.net", "pw-bob@example.net", "INBOX")
		for _, m := range inbox[min(before, len(inbox)):] {
			if bytes.Contains(m, []byte("multipart/report")) && bytes.Contains(m, []byte(rcpt)) {
				return true
			}
		}
	}
	return false
}
