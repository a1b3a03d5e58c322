package imapout

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tollbridge/keyring"
	"tollbridge/store"
)

const benchMessages = 10000

// bigMailbox fills a user's INBOX with benchMessages messages: 100
// distinct messages are sealed (each its own session key and blobs), and
// every stored message row (with its own header) points at one of them,
// as if the same mail had arrived 100 times. Each row is opened, checked
// and described separately, like distinct mail. Every 100th message
// contains the word "needle".
func bigMailbox(b *testing.B) (*env, *store.User) {
	b.Helper()
	return mailboxOf(b, benchMessages)
}

// mailboxOf is bigMailbox with n messages.
func mailboxOf(b *testing.B, n int) (*env, *store.User) {
	b.Helper()
	e := newEnv(b)
	u := e.addUser("bob@example.net")
	pub, err := keyring.ReadKey(u.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	var sealed []*store.NewMessage
	for i := 0; i < 100; i++ {
		body := strings.Repeat(fmt.Sprintf("Line %d of a message body that is like ordinary mail.\r\n", i), 20)
		if i == 42 {
			body += "This one has a needle in it.\r\n"
		}
		raw := crlf(fmt.Sprintf("From: Sender %d <sender%d@example.com>\nTo: bob@example.net\nSubject: Message number %d\nDate: Tue, 24 Nov 2026 10:%02d:00 +0000\nMessage-ID: <%d@example.com>\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n",
			i, i, i, i%60, i)) + body + crlf("--b\nContent-Type: text/html; charset=utf-8\n\n<p>html</p>\n--b--\n")
		nm, err := sealMessage(e.st.Blobs(), []byte(raw), fmt.Sprintf("sender%d@example.com", i), u.Address, pub, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		sealed = append(sealed, nm)
	}
	var batchMsgs []*store.NewMessage
	for i := 0; i < n; i++ {
		m := *sealed[i%len(sealed)]
		m.UserID, m.Source, m.Mailbox, m.Auth = u.ID, store.SourceMX, "INBOX", "none"
		m.Trace = []byte("Received: from mx.example.com by mx.test; Tue, 24 Nov 2026 10:00:00 +0000\r\n")
		batchMsgs = append(batchMsgs, &m)
		if len(batchMsgs) == 1000 || i == n-1 {
			if _, err := e.st.DeliverMessages(context.Background(), batchMsgs); err != nil {
				b.Fatal(err)
			}
			batchMsgs = nil
		}
	}
	return e, u
}

// benchConn is a raw client that reads responses without keeping them.
type benchConn struct {
	c   net.Conn
	br  *bufio.Reader
	tag int
}

func (e *env) benchLogin(b *testing.B, u *store.User) *benchConn {
	b.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	bc := &benchConn{c: c, br: bufio.NewReaderSize(c, 64<<10)}
	bc.br.ReadString('\n')
	bc.do(b, fmt.Sprintf("LOGIN %s %s", u.Address, password(u.Address)))
	return bc
}

// do sends a command and discards the answer; it returns the bytes read.
func (bc *benchConn) do(b *testing.B, cmd string) int64 {
	bc.tag++
	tag := fmt.Sprintf("B%d ", bc.tag)
	fmt.Fprintf(bc.c, "%s%s\r\n", tag, cmd)
	var n int64
	for {
		line, err := bc.br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			n += int64(len(line))
			line, err = bc.br.ReadSlice('\n')
		}
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(line))
		if strings.HasPrefix(string(line), tag) {
			if !strings.HasPrefix(string(line[len(tag):]), "OK") {
				b.Fatalf("%s: %s", cmd, line)
			}
			return n
		}
		// Skip literals.
		if l := strings.TrimRight(string(line), "\r\n"); strings.HasSuffix(l, "}") {
			if i := strings.LastIndexByte(l, '{'); i >= 0 {
				var size int64
				fmt.Sscan(l[i+1:len(l)-1], &size)
				io.CopyN(io.Discard, bc.br, size)
				n += size
			}
		}
	}
}

// peakHeap samples the heap while f runs and reports the peak in MB.
func peakHeap(b *testing.B, f func()) {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(base.HeapAlloc)/(1<<20), "base-heap-MB")
}

// waitIndexed waits until the account's background indexer has built
// every metadata cache.
func waitIndexed(b *testing.B, e *env, u *store.User) {
	for {
		ids, err := e.st.UnindexedMessages(context.Background(), u.ID, 0, 1)
		if err != nil {
			b.Fatal(err)
		}
		if len(ids) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dropMeta empties the metadata caches (a cold start).
func dropMeta(b *testing.B, e *env) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "tollbridge.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE messages SET meta = NULL, size = -1`); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkBigMailbox(b *testing.B) {
	e, u := bigMailbox(b)
	bc := e.benchLogin(b, u)
	start := time.Now()
	waitIndexed(b, e, u)
	b.Logf("indexing %d messages in the background after login: %v", benchMessages, time.Since(start))

	b.Run("SELECT", func(b *testing.B) {
		peakHeap(b, func() {
			for i := 0; i < b.N; i++ {
				bc.do(b, "SELECT INBOX")
			}
		})
	})
	bc.do(b, "SELECT INBOX")
	b.Run("UID_FETCH_FLAGS", func(b *testing.B) {
		peakHeap(b, func() {
			for i := 0; i < b.N; i++ {
				bc.do(b, "UID FETCH 1:* (FLAGS)")
			}
		})
	})
	b.Run("FETCH_ENVELOPE_BODYSTRUCTURE_warm", func(b *testing.B) {
		peakHeap(b, func() {
			for i := 0; i < b.N; i++ {
				bc.do(b, "FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
			}
		})
	})
	b.Run("FETCH_HEADER_FIELDS_warm", func(b *testing.B) {
		peakHeap(b, func() {
			for i := 0; i < b.N; i++ {
				bc.do(b, "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject Date Message-ID)])")
			}
		})
	})
	b.Run("FETCH_ENVELOPE_BODYSTRUCTURE_cold", func(b *testing.B) {
		peakHeap(b, func() {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dropMeta(b, e)
				b.StartTimer()
				bc.do(b, "FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
			}
		})
	})
	b.Run("SEARCH_SUBJECT", func(b *testing.B) {
		for b.Loop() {
			bc.do(b, "SEARCH SUBJECT \"number 42\"")
		}
	})
	b.Run("STORE_100_FLAGS", func(b *testing.B) {
		for b.Loop() {
			bc.do(b, `STORE 1:100 +FLAGS (\Flagged)`)
			b.StopTimer()
			bc.do(b, `STORE 1:100 -FLAGS.SILENT (\Flagged)`)
			b.StartTimer()
		}
	})
	b.Run("BODY_PEEK_100_random", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			for range 100 {
				bc.do(b, fmt.Sprintf("FETCH %d BODY.PEEK[]", 1+r.IntN(benchMessages)))
			}
		}
	})
	b.Run("LOGIN_SELECT_fresh", func(b *testing.B) {
		for b.Loop() {
			c := e.benchLogin(b, u)
			c.do(b, "SELECT INBOX")
			b.StopTimer()
			c.do(b, "LOGOUT")
			c.c.Close()
			b.StartTimer()
		}
	})
	b.Run("SEARCH_BODY", func(b *testing.B) {
		peakHeap(b, func() {
			for i := 0; i < b.N; i++ {
				bc.do(b, "UID SEARCH BODY needle")
			}
		})
	})
}

// BenchmarkBodyPeek is BigMailbox's BODY_PEEK_100_random alone, on a
// mailbox small enough to profile the fetches rather than the setup:
// one random BODY.PEEK[] a command, in a session whose account has
// indexed the mailbox.
func BenchmarkBodyPeek(b *testing.B) {
	const n = 1000
	e, u := mailboxOf(b, n)
	bc := e.benchLogin(b, u)
	waitIndexed(b, e, u)
	bc.do(b, "SELECT INBOX")
	r := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		bc.do(b, fmt.Sprintf("FETCH %d BODY.PEEK[]", 1+r.IntN(n)))
	}
}

// BenchmarkStore100 is BigMailbox's STORE_100_FLAGS alone on a small
// mailbox: the flag change of 100 messages with their FETCH answers.
func BenchmarkStore100(b *testing.B) {
	e, u := mailboxOf(b, 1000)
	bc := e.benchLogin(b, u)
	waitIndexed(b, e, u)
	bc.do(b, "SELECT INBOX")
	for b.Loop() {
		bc.do(b, `STORE 1:100 +FLAGS (\Flagged)`)
		b.StopTimer()
		bc.do(b, `STORE 1:100 -FLAGS.SILENT (\Flagged)`)
		b.StartTimer()
	}
}
