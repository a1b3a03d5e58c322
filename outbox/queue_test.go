package outbox

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tollbridge/intake"
	"tollbridge/internal/testkit"
	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/store"
	"tollbridge/ticketclient"
)

// queue is an outbox whose clock the test moves, driven one step at a
// time (claim, then attempt) instead of by Run: no goroutine, no sleep.
type queue struct {
	t     *testing.T
	clk   *testkit.Clock
	st    *store.Store
	o     *Outbox
	alice *store.User

	mu     sync.Mutex
	dsns   []string
	sealer *intake.Sealer
}

// newQueue returns an outbox for example.org, user alice, retrying for
// 48 hours, with legacy domains resolved by testDNS (whose broken.example
// fails every look-up, a temporary error).
func newQueue(t *testing.T) *queue {
	t.Helper()
	q := &queue{t: t, clk: testkit.NewClock(testkit.Epoch)}
	dir := t.TempDir()
	q.st = teststore.OpenDir(t, dir, store.Options{Now: q.clk.Now})
	q.alice, _ = teststore.AddUser(t, q.st, "alice@example.org", "pw")
	outboxKey, err := keyring.LoadOrCreateServiceKey(filepath.Join(dir, "outbox.key"), "outbox@mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	tickets, err := ticketclient.New(nil, nil, ticketclient.Options{NoSRV: true})
	if err != nil {
		t.Fatal(err)
	}
	q.sealer = &intake.Sealer{Store: q.st}
	q.o = New(Options{
		Store: q.st, OutboxKey: outboxKey, Tickets: tickets, Plaintext: headersOnly{}, Bounce: q.bounce, Now: q.clk.Now,
		Hostname: "mail.example.org", Domains: []string{"example.org"}, RetryFor: 48 * time.Hour,
		LookupMX: testDNS.lookupMX, LookupHost: testDNS.lookupHost,
	})
	return q
}

// bounce is the LocalDeliverer: it keeps the DSN and stores it sealed.
func (q *queue) bounce(ctx context.Context, u *store.User, raw []byte) error {
	q.mu.Lock()
	q.dsns = append(q.dsns, string(raw))
	q.mu.Unlock()
	ms, sd, err := q.sealer.SealFor(bytes.NewReader(raw), int64(len(raw)), "", []*store.User{u})
	if err != nil {
		return err
	}
	ms[0].Source = store.SourceDSN
	if _, err := q.st.DeliverMessages(ctx, ms); err != nil {
		sd.Abort()
		return err
	}
	return nil
}

// send queues a message from alice to rcpts, as submission does.
func (q *queue) send(rcpts ...string) {
	q.t.Helper()
	raw := "From: alice@example.org\r\nTo: " + strings.Join(rcpts, ", ") + "\r\nSubject: queued\r\n\r\nhello\r\n"
	sd, err := q.sealer.Seal(strings.NewReader(raw), int64(len(raw)), q.alice.Address, nil, intake.Options{StripBcc: true})
	if err != nil {
		q.t.Fatal(err)
	}
	pkesk, err := sd.Key.Wrap(q.o.key)
	if err != nil {
		q.t.Fatal(err)
	}
	m := &store.OutboxMessage{UserID: q.alice.ID, Sender: q.alice.Address, SessionKey: pkesk, Parts: sd.Parts, Size: sd.Size, Blobs: sd.Blobs}
	if err := q.st.EnqueueOutbox(q.t.Context(), m, rcpts); err != nil {
		q.t.Fatal(err)
	}
}

// step claims what is due now, as the dispatcher does, and attempts each
// in turn; it returns what was claimed.
func (q *queue) step() []*store.OutboxRecipient {
	q.t.Helper()
	due, err := q.st.ClaimDue(q.t.Context(), 10, nil, q.o.backoff)
	if err != nil {
		q.t.Fatal(err)
	}
	for _, r := range due {
		q.o.attempt(q.t.Context(), r)
		// As the outbox's loop does: the claim ends with the attempt.
		if err := q.st.ReleaseClaim(q.t.Context(), r.ID); err != nil {
			q.t.Fatal(err)
		}
	}
	return due
}

// pending is the one recipient still queued.
func (q *queue) pending() *store.QueueEntry {
	q.t.Helper()
	qs, err := q.st.Queue(q.t.Context())
	if err != nil || len(qs) != 1 {
		q.t.Fatalf("queue = %v, %v; want one entry", qs, err)
	}
	return qs[0]
}

// outcomes are the deliveries log's outcome and detail, newest first.
func (q *queue) outcomes() []string {
	q.t.Helper()
	ds, err := q.st.Deliveries(q.t.Context(), 10)
	if err != nil {
		q.t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Outcome+" "+d.Detail)
	}
	return out
}

// A temporary failure is retried 1 minute later, then 2, 4, … up to an
// hour (docs/rules.md §4), and never before it is due.
func TestRetryBacksOffDoublingToAnHour(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.send("bob@broken.example")
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		if got := q.step(); len(got) != 1 || got[0].Tries != i+1 {
			t.Fatalf("try %d: claimed %+v", i+1, got)
		}
		p := q.pending()
		if wait := p.NextAttempt.Sub(q.clk.Now()); wait != w*time.Minute {
			t.Errorf("after try %d the next is in %s, want %s", i+1, wait, w*time.Minute)
		}
		if p.State != "waiting" || !strings.Contains(p.LastError, "4.4.0") {
			t.Errorf("after try %d: state %q, last error %q", i+1, p.State, p.LastError)
		}
		q.clk.Add(w*time.Minute - time.Second)
		if got := q.step(); len(got) != 0 {
			t.Fatalf("try %d claimed a second early: %+v", i+2, got)
		}
		q.clk.Add(time.Second)
	}
	if got := q.outcomes(); len(got) != 0 {
		t.Errorf("deliveries = %q, want none yet", got)
	}
}

// A recipient still failing after retry_for bounces (4.4.7) with a DSN in
// the sender's INBOX, and leaves the queue; before that it waits.
func TestExpiryBounces(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.send("bob@broken.example")
	q.step()
	q.clk.Add(48*time.Hour - time.Second)
	q.step()
	if p := q.pending(); p.Tries != 2 || p.State != "waiting" {
		t.Fatalf("a second before expiry: %+v", p)
	}
	q.clk.Add(time.Hour)
	if got := q.step(); len(got) != 1 {
		t.Fatalf("claimed %+v after expiry", got)
	}
	if qs, _ := q.st.Queue(t.Context()); len(qs) != 0 {
		t.Errorf("still queued: %+v", qs[0])
	}
	got := q.outcomes()
	if len(got) != 1 || !strings.HasPrefix(got[0], store.OutcomeBounced+" 4.4.7 gave up after 48h0m0s") {
		t.Fatalf("deliveries = %q, want one 4.4.7 bounce", got)
	}
	q.checkDSN("Status: 4.4.7", "Final-Recipient: rfc822; bob@broken.example", "Subject: queued")
}

// A permanent error bounces on the first try, whatever retry_for says.
func TestPermanentErrorBouncesAtOnce(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.send("nobody@example.org")
	if got := q.step(); len(got) != 1 || got[0].Tries != 1 {
		t.Fatalf("claimed %+v", got)
	}
	got := q.outcomes()
	if len(got) != 1 || !strings.HasPrefix(got[0], store.OutcomeBounced+" 5.1.1") {
		t.Fatalf("deliveries = %q, want one 5.1.1 bounce", got)
	}
	if qs, _ := q.st.Queue(t.Context()); len(qs) != 0 {
		t.Errorf("still queued: %+v", qs[0])
	}
	q.checkDSN("Status: 5.1.1", "Final-Recipient: rfc822; nobody@example.org")
	if n, err := q.st.UnfiledCount(t.Context(), q.alice.ID); err != nil || n != 1 {
		t.Errorf("alice has %d messages waiting (%v), want the bounce", n, err)
	}
}

// checkDSN checks the one DSN sent to alice.
func (q *queue) checkDSN(want ...string) {
	q.t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.dsns) != 1 {
		q.t.Fatalf("%d DSNs, want 1", len(q.dsns))
	}
	for _, w := range want {
		if !strings.Contains(q.dsns[0], w) {
			q.t.Errorf("DSN lacks %q:\n%s", w, q.dsns[0])
		}
	}
}

// ClaimDue hands out only due recipients not already busy, at most limit,
// and counts the try; FinishRecipient closes one recipient once, and the
// message goes with its last recipient.
func TestClaimDueAndFinishRecipient(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := t.Context()
	q.send("a@legacy.example", "b@legacy.example", "c@legacy.example")
	never := func(int) time.Duration { return time.Hour }
	first, err := q.st.ClaimDue(ctx, 2, nil, never)
	if err != nil || len(first) != 2 {
		t.Fatalf("ClaimDue(2) = %d, %v", len(first), err)
	}
	busy := map[int64]bool{first[0].ID: true}
	rest, err := q.st.ClaimDue(ctx, 10, busy, never)
	if err != nil || len(rest) != 1 || rest[0].Recipient != "c@legacy.example" || rest[0].Tries != 1 {
		t.Fatalf("ClaimDue after two claimed = %+v, %v; want c, try 1", rest, err)
	}
	if again, _ := q.st.ClaimDue(ctx, 10, nil, never); len(again) != 0 {
		t.Fatalf("claimed again before due: %+v", again)
	}
	all := append(first, rest...)
	id := all[0].OutboxID
	for i, r := range all {
		if err := q.st.FinishRecipient(ctx, r, store.Delivery{Outcome: store.OutcomeDelivered, Detail: "legacy"}); err != nil {
			t.Fatal(err)
		}
		_, err := q.st.OutboxMessage(ctx, id)
		if last := i == len(all)-1; last != errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after %d of %d finished: OutboxMessage err = %v", i+1, len(all), err)
		}
	}
	if err := q.st.FinishRecipient(ctx, all[0], store.Delivery{Outcome: store.OutcomeBounced}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finishing twice: %v, want ErrNotFound", err)
	}
	if got := q.outcomes(); len(got) != 3 {
		t.Errorf("deliveries = %q, want 3", got)
	}
	q.clk.Add(2 * time.Hour)
	if got, _ := q.st.ClaimDue(ctx, 10, nil, never); len(got) != 0 {
		t.Errorf("finished recipients claimed: %+v", got)
	}
}
