package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestIMAPModSeqUniqueUnderConcurrency: sessions changing flags, appending
// and expunging at once each get a modseq of their own, and the mailbox's
// ends at the highest.
func TestIMAPModSeqUniqueUnderConcurrency(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "alice@example.org")
	var inbox int64
	for i := range 8 {
		inbox = fileTest(t, s, u, "INBOX", fmt.Sprint(i)).MailboxID
	}
	start, err := s.MailboxState(ctx, inbox)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				flag := fmt.Sprintf("$k%d", (w*10+i)%3)
				_, modseq, err := s.StoreFlags(ctx, inbox, []uint32{uint32(1 + (w+i)%8)}, FlagsSet, []string{flag, fmt.Sprint("$w", w, "i", i)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[modseq]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	end, _ := s.MailboxState(ctx, inbox)
	for m, n := range seen {
		if n != 1 || m <= start.ModSeq || m > end.ModSeq {
			t.Errorf("modseq %d given %d times (start %d, end %d)", m, n, start.ModSeq, end.ModSeq)
		}
	}
	if len(seen) != 40 || end.ModSeq != start.ModSeq+40 {
		t.Errorf("%d distinct modseqs, mailbox went %d → %d", len(seen), start.ModSeq, end.ModSeq)
	}
}

func TestIMAPStoreFlagsUnchangedSince(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "alice@example.org")
	inbox := fileTest(t, s, u, "INBOX", "a").MailboxID
	fileTest(t, s, u, "INBOX", "b")
	st, _ := s.MailboxState(ctx, inbox)
	if _, _, err := s.StoreFlags(ctx, inbox, []uint32{2}, FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	states, modseq, err := s.StoreFlagsUnchangedSince(ctx, inbox, []uint32{1, 2}, FlagsAdd, []string{`\Seen`}, st.ModSeq)
	if err != nil || len(states) != 2 || modseq == 0 {
		t.Fatalf("%+v %d %v", states, modseq, err)
	}
	if !states[0].Changed || states[0].Modified || states[1].Changed || !states[1].Modified {
		t.Errorf("states %+v", states)
	}
	if fmt.Sprint(states[1].Flags) != `[\Flagged]` {
		t.Errorf("modified message's flags %v", states[1].Flags)
	}
}

// TestIMAPPruneExpunged: pruning forgets old records, raises the floor to
// the last forgotten modseq, keeps newer records, and ExpungedAfter says
// when its answer is no longer complete.
func TestIMAPPruneExpunged(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "alice@example.org")
	var inbox int64
	for i := range 4 {
		inbox = fileTest(t, s, u, "INBOX", fmt.Sprint(i)).MailboxID
	}
	before, _ := s.MailboxState(ctx, inbox)
	expunge := func(uid uint32) {
		if _, _, err := s.StoreFlags(ctx, inbox, []uint32{uid}, FlagsAdd, []string{`\Deleted`}); err != nil {
			t.Fatal(err)
		}
		if gone, _, err := s.ExpungeMessages(ctx, inbox, 10, nil); err != nil || len(gone) != 1 {
			t.Fatal(gone, err)
		}
	}
	expunge(1)
	expunge(2)
	if n, err := s.PruneExpunged(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("young records pruned: %d %v", n, err)
	}
	mid, _ := s.MailboxState(ctx, inbox)
	if n, err := s.PruneExpunged(ctx, -time.Minute); err != nil || n != 2 {
		t.Fatalf("prune: %d %v", n, err)
	}
	expunge(3)
	after, _ := s.MailboxState(ctx, inbox)
	if after.ExpungedFloor != mid.ModSeq {
		t.Errorf("floor %d, want %d", after.ExpungedFloor, mid.ModSeq)
	}
	if uids, complete, err := s.ExpungedAfter(ctx, inbox, before.ModSeq, after.ModSeq); err != nil || complete || len(uids) != 1 {
		t.Errorf("from before the floor: %v complete=%v %v", uids, complete, err)
	}
	if uids, complete, err := s.ExpungedAfter(ctx, inbox, mid.ModSeq, after.ModSeq); err != nil || !complete || len(uids) != 1 || uids[0] != 3 {
		t.Errorf("from the floor: %v complete=%v %v", uids, complete, err)
	}
}

// IndexRows after a modseq gives what an IMAP index read then lacks: the
// rows whose flags changed and the messages that arrived, with their
// message ids; ExpungedAfter gives the rest.
func TestIMAPIndexRows(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "alice@example.org")
	var first *Delivered
	for i := range 4 {
		d := fileTest(t, s, u, "INBOX", fmt.Sprint("m", i))
		if first == nil {
			first = d
		}
	}
	inbox := first.MailboxID
	all, err := s.IndexRows(ctx, inbox, 0)
	if err != nil || len(all) != 4 || all[0].UID != 1 || all[3].UID != 4 || all[0].MessageID != first.MessageID {
		t.Fatalf("whole mailbox: %+v, %v", all, err)
	}
	at, _ := s.MailboxState(ctx, inbox)
	if _, _, err := s.StoreFlags(ctx, inbox, []uint32{2, 4}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ExpungeMessages(ctx, inbox, 4, []uint32{4}); err != nil {
		t.Fatal(err)
	}
	fresh := fileTest(t, s, u, "INBOX", "m4")
	changed, err := s.IndexRows(ctx, inbox, at.ModSeq)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 || changed[0].UID != 2 || fmt.Sprint(changed[0].Flags) != `[\Deleted]` ||
		changed[1].UID != 5 || changed[1].MessageID != fresh.MessageID || changed[1].ModSeq <= at.ModSeq {
		t.Errorf("changed after %d: %+v", at.ModSeq, changed)
	}
	gone, complete, err := s.ExpungedAfter(ctx, inbox, at.ModSeq, 1<<62)
	if err != nil || !complete || fmt.Sprint(gone) != "[4]" {
		t.Errorf("expunged after %d: %v %v %v", at.ModSeq, gone, complete, err)
	}
}

// On SQLite, ChangedFlags (every Poll after a change) reads the changed
// rows through the modseq index, not every UID of the mailbox.
func TestSQLiteOnlyChangedFlagsPlan(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	if s.dialect != sqliteDialect {
		t.Skip("SQLite's query plan")
	}
	rows, err := s.read.Query(`EXPLAIN QUERY PLAN `+changedFlagsQuery, 1, 5, 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "INDEX mailbox_messages_modseq") {
		t.Errorf("ChangedFlags' plan: %s", got)
	}
}
