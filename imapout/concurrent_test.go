package imapout

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestConcurrentSessionsNeverSeeHalfMessages has ten sessions of one user
// append, fetch, flag and expunge in one mailbox at once (issue 13 item
// 10). A message another session expunged may be missing from a FETCH
// (NO [EXPUNGEISSUED]), but no FETCH may fail an integrity check, and
// every body sent must be a whole message.
func TestConcurrentSessionsNeverSeeHalfMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	logs := &lockedBuffer{}
	e := newEnvLogging(t, logs)
	u := e.addUser("load@example.org")
	const sessions = 10
	clients := make([]*imapclient.Client, sessions)
	for i := range clients {
		clients[i] = e.login(u)
		if _, err := clients[i].Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(4 * time.Second)
	var mu sync.Mutex
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 13))
			for n := 0; time.Now().Before(deadline); n++ {
				if err := loadRound(c, rng, i, n); err != nil {
					report("session %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", logs)
	}
}

// loadRound is one round of a load session: APPEND, FETCH the last few
// messages whole, flag one \Deleted and EXPUNGE.
func loadRound(c *imapclient.Client, rng *rand.Rand, session, n int) error {
	body := strings.Repeat(fmt.Sprintf("line %d of round %d of session %d\r\n", rng.IntN(1000), n, session), 20+rng.IntN(200))
	msg := []byte(fmt.Sprintf("From: a@example.org\r\nTo: load@example.org\r\nSubject: %d/%d\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n%s\r\n"+
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b--\r\nEND\r\n",
		session, n, body))
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	cmd.Write(msg)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if err := c.Noop().Wait(); err != nil {
		return fmt.Errorf("noop: %w", err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{whole},
	}).Collect()
	var ierr *imap.Error
	if err != nil && !(errors.As(err, &ierr) && ierr.Code == codeExpungeIssued) {
		return fmt.Errorf("fetch: %w", err)
	}
	for _, m := range msgs {
		b := m.FindBodySection(whole)
		if int64(len(b)) != m.RFC822Size || !bytes.HasSuffix(b, []byte("--b--\r\nEND\r\n")) {
			return fmt.Errorf("fetch: UID %d: %d bytes of %d, ending %q", m.UID, len(b), m.RFC822Size, b[max(0, len(b)-20):])
		}
	}
	if len(msgs) > 0 {
		seq := uint32(1 + rng.IntN(len(msgs)))
		if err := c.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil &&
			!(errors.As(err, &ierr) && ierr.Code == codeExpungeIssued) {
			return fmt.Errorf("store: %w", err)
		}
	}
	if err := c.Expunge().Close(); err != nil {
		return fmt.Errorf("expunge: %w", err)
	}
	return nil
}
