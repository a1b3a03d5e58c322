package smtpin

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/imapout"
	"tollbridge/keyring"
	"tollbridge/store"
)

// serveIMAP runs imapout on e's store on a loopback listener, the way
// `bridge serve` does, and returns its address.
func (e *env) serveIMAP(t *testing.T) string {
	t.Helper()
	srv := imapout.New(imapout.Options{Store: e.st, Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
		Hostname: "mail.example.org", Unlocker: keyring.NewUnlocker(2),
		SpoolDir: t.TempDir(), Guard: &keyring.Guard{Delay: -1, Limit: 5}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	// Registered after newEnv's cleanup, so it runs first: the IMAP server
	// stops before the store closes.
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return ln.Addr().String()
}

// sendMX delivers msg over the MX from an external envelope sender.
func (e *env) sendMX(msg string) {
	e.t.Helper()
	c := e.dial(e.mx, false)
	if err := c.Mail("someone@legacy.example", nil); err != nil {
		e.t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.org", nil); err != nil {
		e.t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		e.t.Fatal(err)
	}
	w.Write([]byte(msg))
	if err := w.Close(); err != nil {
		e.t.Fatalf("DATA: %v", err)
	}
}

// verdictRE finds the bridge's own Authentication-Results field: the
// verdict, then the legacy checks' results on lines of their own.
var verdictRE = regexp.MustCompile(`(?m)^Authentication-Results: mail\.example\.org; tollbridge=(\w+)(?:;\r\n\t[^\r\n;]*)*\r\n`)

// imapVerdicts logs in as alice (which files waiting mail) and returns,
// for each message of INBOX and Junk, its Message-ID marker's mailbox and
// its tollbridge= verdict.
func imapVerdicts(t *testing.T, addr string, st *store.Store, userID int64) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, m := range imapMessages(t, addr, st, userID) {
		v := verdictRE.FindAllSubmatch(m.body, -1)
		if len(v) != 1 {
			t.Errorf("%s: %d verdicts:\n%s", id, len(v), m.body)
			continue
		}
		out[id] = m.box + " " + string(v[0][1])
	}
	return out
}

// imapMessage is a message as alice's mail client sees it.
type imapMessage struct {
	box  string // INBOX or Junk
	body []byte // BODY[]
}

// imapMessages logs in as alice (which files waiting mail) and returns
// the messages of INBOX and Junk by their Message-ID marker.
func imapMessages(t *testing.T, addr string, st *store.Store, userID int64) map[string]imapMessage {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", "alice-pw").Wait(); err != nil {
		t.Fatal(err)
	}
	// The login files waiting mail in the background: wait for it.
	for i := 0; ; i++ {
		n, err := st.UnfiledCount(context.Background(), userID)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if i == 500 {
			t.Fatalf("%d messages still unfiled after 10 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := map[string]imapMessage{}
	for _, box := range []string{"INBOX", "Junk"} {
		d, err := c.Select(box, nil).Wait()
		if err != nil {
			t.Fatalf("select %s: %v", box, err)
		}
		if d.NumMessages == 0 {
			continue
		}
		var all imap.SeqSet
		all.AddRange(1, d.NumMessages)
		section := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			t.Fatalf("fetch %s: %v", box, err)
		}
		for _, m := range msgs {
			body := m.FindBodySection(section)
			id := regexp.MustCompile(`Message-ID: <([^>]+)>`).FindSubmatch(body)
			if id == nil {
				t.Errorf("%s: message without marker:\n%s", box, body)
				continue
			}
			out[string(id[1])] = imapMessage{box, body}
		}
	}
	return out
}

// TestMXFromVerdict delivers legacy mail over a real MX listener and reads
// it back with a real IMAP client: docs/protocol.md §3.7, "fail when … the mail is
// unsigned but … the From: address (MX path) is a local user or has a
// pinned key"; fail goes to Junk. MAIL FROM is external every time: only
// the From: field differs.
func TestMXFromVerdict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	imapAddr := e.serveIMAP(t)
	carol := addUser(t, e.st, "carol@example.org", "carol-pw") // only for a key to pin
	if _, err := e.st.PinKey(context.Background(), "carol@ticketed.example", carol.Fingerprint, carol.PublicKey); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ id, from, want string }{
		{"honest", "From: Someone <someone@legacy.example>\r\n", "INBOX none"},
		{"honest-folded", "From: Someone\r\n <SOMEONE@Legacy.Example>\r\n", "INBOX none"},
		{"local-user", "From: Alice <alice@example.org>\r\n", "Junk fail"},
		{"local-user-case", "From: ALICE@Example.ORG\r\n", "Junk fail"},
		{"local-domain", "From: \"The CEO\" <ceo@example.org>\r\n", "Junk fail"},
		{"local-folded", "From: Alice\r\n\t<alice@example.org>\r\n", "Junk fail"},
		{"pinned", "From: Carol <carol@ticketed.example>\r\n", "Junk fail"},
		{"pinned-case", "From: Carol@Ticketed.Example\r\n", "Junk fail"},
		{"no-from", "", "Junk fail"},
		{"empty-from", "From: \r\n", "Junk fail"},
		{"two-addresses", "From: someone@legacy.example, alice@example.org\r\n", "Junk fail"},
		{"two-fields", "From: someone@legacy.example\r\nFrom: alice@example.org\r\n", "Junk fail"},
		{"two-external", "From: a@legacy.example, b@legacy.example\r\n", "Junk fail"},
		{"unparsable", "From: \"Alice <alice@example.org>\r\n", "Junk fail"},
	}
	for _, c := range cases {
		e.sendMX(c.from + "To: alice@example.org\r\nSubject: " + c.id + "\r\nMessage-ID: <" + c.id + "@legacy.example>\r\n\r\nhello\r\n")
	}
	got := imapVerdicts(t, imapAddr, e.st, e.alice.ID)
	if len(got) != len(cases) {
		t.Errorf("INBOX and Junk hold %d of the %d messages", len(got), len(cases))
	}
	for _, c := range cases {
		if got[c.id+"@legacy.example"] != c.want {
			t.Errorf("%s (%q): %q, want %q", c.id, c.from, got[c.id+"@legacy.example"], c.want)
		}
	}
	// Why a message went to Junk is logged under the id its Received:
	// field names, so an admin can find it.
	logs := e.logs.String()
	for _, reason := range []string{"is a local user", "is in a local domain", "has a pinned key", "names no address", "names 2 addresses"} {
		if !strings.Contains(logs, reason) {
			t.Errorf("no log line says %q:\n%s", reason, logs)
		}
	}
	if n := strings.Count(logs, "legacy mail is tollbridge=fail"); n != 12 {
		t.Errorf("%d Junk log lines, want 12", n)
	}
	if !regexp.MustCompile(`legacy mail is tollbridge=fail[^\n]* id=[0-9a-f]{12} reason=`).MatchString(logs) {
		t.Errorf("Junk log lines name no message id:\n%s", logs)
	}
	if bytes.Contains([]byte(logs), []byte("level=ERROR")) {
		t.Errorf("errors logged:\n%s", logs)
	}
}
