package imapout

import (
	"context"
	"testing"

	"tollbridge/store"
)

// BenchmarkFetchFlagsAfterChange is a client's resync without CONDSTORE
// (UID FETCH 1:* (FLAGS)) in a 10,000-message INBOX after a change by
// someone else: one flag set on one message before each fetch, as new
// mail or another client's action does between two resyncs.
func BenchmarkFetchFlagsAfterChange(b *testing.B) {
	ctx := context.Background()
	e, u := bigMailbox(b)
	bc := e.benchLogin(b, u)
	box, err := e.st.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	bc.do(b, "SELECT INBOX")
	bc.do(b, "UID FETCH 1:* (FLAGS)")
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		uid := uint32(1 + (i*37)%benchMessages)
		if _, _, err := e.st.StoreFlags(ctx, box.ID, []uint32{uid}, store.FlagsAdd, []string{`\Flagged`}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		bc.do(b, "UID FETCH 1:* (FLAGS)")
	}
}
