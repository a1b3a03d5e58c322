package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEventsAcrossNodes: a message filed through one node is announced to
// the Hub subscribers of another (PostgreSQL's LISTEN/NOTIFY); a node does
// not hear its own events twice.
func TestEventsAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes(t)
	if a.dialect != postgresDialect {
		t.Skip("nodes share events on PostgreSQL only")
	}
	u := testUser(t, a, "alice@example.org")
	onB, stopB := b.Hub().Subscribe(u.ID)
	defer stopB()
	onA, stopA := a.Hub().Subscribe(u.ID)
	defer stopA()
	d := fileTest(t, a, u, "INBOX", "hello")
	want := Event{Kind: EventNewMessage, UserID: u.ID, MailboxID: d.MailboxID, UID: d.UID}
	select {
	case e := <-onB:
		if e != want {
			t.Fatalf("node2 heard %+v, want %+v", e, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node2 heard nothing of node1's new message")
	}
	if e := <-onA; e != want {
		t.Fatalf("node1 heard %+v, want %+v", e, want)
	}
	// node1's own event comes back from PostgreSQL too; the listener
	// must drop it. A second, later event shows the first was not doubled.
	fileTest(t, b, u, "INBOX", "second")
	select {
	case e := <-onA:
		if e.UID != d.UID+1 {
			t.Fatalf("node1 heard %+v after its own event, want UID %d from node2", e, d.UID+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node1 heard nothing of node2's message")
	}
}

// TestUIDsAcrossNodes: messages filed into one mailbox through two nodes
// at once get unique UIDs, and UIDNEXT is above them all.
func TestUIDsAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, _ := twoNodes(t)
	u := testUser(t, a, "alice@example.org")
	const n = 40
	var mu sync.Mutex
	var uids []int
	var wg sync.WaitGroup
	for w := range 4 {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			for i := range n / 4 {
				ref, err := s.Blobs().Put(strings.NewReader(fmt.Sprintf("m%d-%d", w, i)))
				if err != nil {
					t.Error(err)
					return
				}
				d, err := s.DeliverMessage(ctx, &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceMX,
					Blobs: map[string]BlobRef{"catalog": ref}, Mailbox: "INBOX"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				uids = append(uids, int(d.UID))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Ints(uids)
	for i, uid := range uids {
		if uid != i+1 {
			t.Fatalf("UIDs %v: want 1..%d, each once", uids, n)
		}
	}
	if box, err := b.MailboxByName(ctx, u.ID, "INBOX"); err != nil || box.UIDNext != n+1 {
		t.Fatalf("UIDNEXT %+v %v, want %d", box, err, n+1)
	}
}
