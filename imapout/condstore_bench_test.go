package imapout

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkQResync resynchronizes a benchMessages INBOX after 100 flag
// changes: SELECT (QRESYNC (uidvalidity modseq)) against what a client
// without QRESYNC does, a SELECT and UID FETCH 1:* (FLAGS).
func BenchmarkQResync(b *testing.B) {
	ctx := context.Background()
	e, u := bigMailbox(b)
	bc := e.benchLogin(b, u)
	bc.do(b, "ENABLE QRESYNC")
	box, err := e.st.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	bc.do(b, "SELECT INBOX")
	round := 0
	change := func(b *testing.B) int64 {
		b.Helper()
		st, err := e.st.MailboxState(ctx, box.ID)
		if err != nil {
			b.Fatal(err)
		}
		op := "+"
		if round%2 == 1 {
			op = "-"
		}
		first := 1 + (round*100)%(benchMessages-100)
		round++
		bc.do(b, fmt.Sprintf(`STORE %d:%d %sFLAGS.SILENT (\Flagged)`, first, first+99, op))
		return st.ModSeq
	}
	b.Run("SELECT_QRESYNC", func(b *testing.B) {
		var n int64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			since := change(b)
			b.StartTimer()
			n = bc.do(b, fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d))", box.UIDValidity, since))
		}
		b.ReportMetric(float64(n), "bytes/resync")
	})
	b.Run("SELECT_UID_FETCH_FLAGS", func(b *testing.B) {
		var n int64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			change(b)
			b.StartTimer()
			n = bc.do(b, "SELECT INBOX") + bc.do(b, "UID FETCH 1:* (FLAGS)")
		}
		b.ReportMetric(float64(n), "bytes/resync")
	})
}
