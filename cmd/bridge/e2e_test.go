package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// corpusMessage reads a message of translate's corpus (real Thunderbird and
// Apple Mail output shapes).
func corpusMessage(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../translate/testdata/corpus/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replyMessage is a Thunderbird-shaped reply with References.
const replyMessage = "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"Message-ID: <7d1c2b3a-reply@example.net>\r\n" +
	"Date: Wed, 26 Nov 2025 12:03:41 +0100\r\n" +
	"MIME-Version: 1.0\r\n" +
	"User-Agent: Mozilla Thunderbird\r\n" +
	"Subject: Re: Logo proposal\r\n" +
	"Content-Language: en-US\r\n" +
	"To: Alice Example <alice@example.org>\r\n" +
	"References: <e2a9b7c1-0d3f-4b8e-a6c5-1f2e3d4c5b6a@example.org>\r\n" +
	"From: Bob Example <bob@example.net>\r\n" +
	"In-Reply-To: <e2a9b7c1-0d3f-4b8e-a6c5-1f2e3d4c5b6a@example.org>\r\n" +
	"\r\n" +
	"Looks great, Alice. Grüße!\r\n" +
	"\r\n" +
	"On 26.11.25 11:47, Alice Example wrote:\r\n" +
	"> here is the new logo (inline). What do you think?\r\n"

// groupMessage goes To two, Cc a legacy address and Bcc a local one.
const groupMessage = "From: Alice Example <alice@example.org>\r\n" +
	"To: Bob Example <bob@example.net>, Carol <carol@example.net>\r\n" +
	"Cc: frank@legacy.example\r\n" +
	"Bcc: Dave <dave@example.org>\r\n" +
	"Subject: Team lunch\r\n" +
	"Message-ID: <lunch-2026@example.org>\r\n" +
	"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n" +
	"Content-Transfer-Encoding: 7bit\r\n" +
	"\r\n" +
	"Friday at noon?\r\n"

// inbox fetches every message of user's INBOX over IMAP, by Message-ID.
func inbox(t *testing.T, addr, user, pass string) map[string][]byte {
	t.Helper()
	c, mbox := selectInbox(t, addr, user, pass)
	defer c.Close()
	out := map[string][]byte{}
	if mbox.NumMessages == 0 {
		return out
	}
	var seq imap.SeqSet
	seq.AddRange(1, mbox.NumMessages)
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(seq, &imap.FetchOptions{Envelope: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		out[m.Envelope.MessageID] = m.FindBodySection(section)
	}
	return out
}

var traceField = regexp.MustCompile(`^(Received|Authentication-Results):[^\r\n]*\r\n([ \t][^\r\n]*\r\n)*`)

// stripTrace removes the trace fields the receiving bridge puts in front
// and returns the rest and the Authentication-Results verdict.
func stripTrace(b []byte) ([]byte, string) {
	verdict := ""
	for {
		loc := traceField.FindIndex(b)
		if loc == nil {
			return b, verdict
		}
		field := string(b[:loc[1]])
		if strings.HasPrefix(field, "Authentication-Results:") {
			if _, v, ok := strings.Cut(field, "tollbridge="); ok {
				verdict = strings.TrimRight(strings.Fields(v)[0], ";")
			}
		}
		b = b[loc[1]:]
	}
}

// TestMailClientsEndToEnd: Thunderbird- and Apple Mail-shaped messages
// between alice and bob and to a group (with Bcc) and a legacy domain,
// each read back over IMAP by its recipients and compared byte for byte
// after the trace fields.
func TestMailClientsEndToEnd(t *testing.T) {
	t.Parallel()
	relay := startSmarthost(t)
	s := startSites(t, t.TempDir(), twoSites(), relay.addr, 8, 2)
	s.addUser(1, "carol@example.net")
	s.addUser(0, "dave@example.org")
	alice, bob := "alice@example.org", "bob@example.net"
	type sent struct {
		from   string
		rcpts  []string
		msg    string
		seenBy []string
	}
	tb := func(name string) string { return corpusMessage(t, name) }
	mail := []sent{
		{alice, []string{bob}, tb("03-thunderbird-alternative-flowed.eml"), []string{bob}},
		{alice, []string{bob}, tb("04-thunderbird-mixed-pdf.eml"), []string{bob}},
		{alice, []string{bob}, tb("05-thunderbird-related-inline-image.eml"), []string{bob}},
		{bob, []string{alice}, tb("06-apple-mail-alternative-qp.eml"), []string{alice}},
		{bob, []string{alice}, tb("07-apple-mail-attachment-jpeg.eml"), []string{alice}},
		{bob, []string{alice}, replyMessage, []string{alice}},
		{alice, []string{bob, "carol@example.net", "frank@legacy.example", "dave@example.org"}, groupMessage,
			[]string{bob, "carol@example.net", "dave@example.org"}},
	}
	site := map[string]int{alice: 0, "dave@example.org": 0, bob: 1, "carol@example.net": 1}
	for _, m := range mail {
		if err := s.submit(site[m.from], m.from, "pw-"+m.from, m.rcpts, m.msg); err != nil {
			t.Fatalf("submit from %s: %v", m.from, err)
		}
	}
	want := map[string]map[string][]byte{} // user → Message-ID → bytes
	for _, m := range mail {
		id := messageID(m.msg)
		for _, u := range m.seenBy {
			if want[u] == nil {
				want[u] = map[string][]byte{}
			}
			want[u][id] = []byte(withoutBcc(m.msg))
		}
	}
	for user, msgs := range want {
		addr := s.bridges[site[user]].addr("imap")
		var got map[string][]byte
		waitForEvery(t, "mail for "+user, 60*time.Second, 200*time.Millisecond, func() bool {
			got = inbox(t, addr, user, "pw-"+user)
			return len(got) >= len(msgs)
		})
		for id, w := range msgs {
			body, verdict := stripTrace(got[id])
			if !bytes.Equal(body, w) {
				t.Errorf("%s: message %s differs after the trace fields:\ngot  %q\nwant %q", user, id, head(body), head(w))
			}
			if verdict != "pass" {
				t.Errorf("%s: message %s: tollbridge=%s, want pass", user, id, verdict)
			}
		}
	}
	if bcc := want["bob@example.net"]["lunch-2026@example.org"]; bytes.Contains(bcc, []byte("dave")) {
		t.Error("Bcc visible to bob")
	}
	waitFor(t, "legacy relay", 30*time.Second, func() bool { return len(relay.messages()) == 1 })
	if got := relay.messages()[0].data; string(got) != withoutBcc(groupMessage) {
		t.Errorf("legacy recipient got %q", got)
	}
}

func messageID(msg string) string {
	m := regexp.MustCompile(`(?im)^Message-ID:\s*<([^>]+)>`).FindStringSubmatch(msg)
	return m[1]
}

func withoutBcc(msg string) string {
	return regexp.MustCompile(`(?m)^Bcc:[^\r\n]*\r\n`).ReplaceAllString(msg, "")
}

func head(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}
