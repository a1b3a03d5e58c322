package imapbench

import (
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// messages is the mailbox size, TOLLBRIDGE_YARD_MESSAGES or 10000.
func messages() int {
	if n, err := strconv.Atoi(os.Getenv("TOLLBRIDGE_YARD_MESSAGES")); err == nil && n >= 100 {
		return n
	}
	return 10000
}

// op is one row of the yardstick: run does b.N of the operation against
// a server whose INBOX holds n corpus messages.
type op struct {
	name string
	unit string // what one b.N is, for the table
	run  func(b *testing.B, s *server, n int)
}

// ops are the yardstick's rows in order. They run one server after the
// other, each with the machine to itself. The mixed loads change INBOX
// (APPEND and EXPUNGE of their own messages), so they come last.
var ops = []op{
	{"login+select", "session", benchLoginSelect},
	{"uid-fetch-flags", "command", fetchAll("UID FETCH 1:* (FLAGS)", &imap.FetchOptions{UID: true, Flags: true}, true)},
	{"fetch-envelope", "command", fetchAll("FETCH 1:* (ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)",
		&imap.FetchOptions{Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: false}, RFC822Size: true, InternalDate: true}, false)},
	{"search-subject", "command", benchSearch(false, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: subjectWord}}})},
	{"uid-search-text", "command", benchSearch(true, &imap.SearchCriteria{Text: []string{needle}})},
	{"store-100-flags", "command", benchStore},
	{"body-peek-100", "100 fetches", benchBodies},
	{"qresync-100-changes", "resync", benchQResync},
	{"append-4-conns", "message", benchAppend},
	{"mixed-10-open", "command", benchMixed(false)},
	{"mixed-10-relogin", "command", benchMixed(true)},
}

// BenchmarkYardstick fills the bridge and a private Dovecot with the same
// mailbox, times every op on both and prints the ratios.
func BenchmarkYardstick(b *testing.B) {
	n := messages()
	ddir, err := os.MkdirTemp("", "imapbench-dovecot")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(ddir) })
	bridge, cert, key := startBridge(b, b.TempDir())
	dovecot := startDovecot(b, ddir, cert, key)
	servers := []*server{bridge, dovecot}
	for _, s := range servers {
		start := time.Now()
		fill(b, s, "INBOX", n, 0, 4)
		b.Logf("%s: %d messages appended in %v", s.name, n, time.Since(start).Round(time.Millisecond))
	}
	per := map[string]map[string]float64{} // op, server: ns per unit
	for _, o := range ops {
		per[o.name] = map[string]float64{}
		for _, s := range servers {
			b.Run(o.name+"/"+s.name, func(b *testing.B) {
				o.run(b, s, n)
				per[o.name][s.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			})
		}
	}
	printRatios(os.Stdout, n, per)
}

// printRatios prints one line per op: time per unit on each server and
// the bridge's time as a multiple of Dovecot's (below 1: faster).
func printRatios(w io.Writer, n int, per map[string]map[string]float64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "yardstick, %d messages\top\tunit\tbridge\tdovecot\tbridge/dovecot\n", n)
	for _, o := range ops {
		br, dv := per[o.name]["bridge"], per[o.name]["dovecot"]
		if br == 0 || dv == 0 {
			continue // filtered out by -bench
		}
		fmt.Fprintf(tw, "\t%s\t%s\t%v\t%v\t%.2f×\n", o.name, o.unit, dur(br), dur(dv), br/dv)
	}
	tw.Flush()
}

func dur(ns float64) time.Duration {
	return time.Duration(ns).Round(time.Microsecond)
}

// fill APPENDs corpus messages first..first+n-1 to mailbox over conns
// connections.
func fill(tb testing.TB, s *server, mailbox string, n, first, conns int) {
	tb.Helper()
	var next atomic.Int64
	next.Store(int64(first))
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.connect()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := int(next.Add(1) - 1); i < first+n; i = int(next.Add(1) - 1) {
				if _, err := appendOne(c, mailbox, message(i)); err != nil {
					errs <- fmt.Errorf("%s: append %d: %w", s.name, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// appendOne APPENDs msg and returns its UID (APPENDUID).
func appendOne(c *imapclient.Client, mailbox string, msg []byte) (imap.UID, error) {
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return data.UID, nil
}

// session opens a fresh session with INBOX selected, off the clock.
func session(b *testing.B, s *server) *imapclient.Client {
	b.StopTimer()
	defer b.StartTimer()
	c := s.dial(b)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	return c
}

// done logs out off the clock.
func done(b *testing.B, c *imapclient.Client) {
	b.StopTimer()
	defer b.StartTimer()
	c.Logout().Wait()
	c.Close()
}

// benchLoginSelect: connect, STARTTLS, LOGIN (a repeat login: the fill
// logged in first) and SELECT INBOX.
func benchLoginSelect(b *testing.B, s *server, n int) {
	for b.Loop() {
		c := s.dial(b)
		mbox, err := c.Select("INBOX", nil).Wait()
		if err != nil || mbox.NumMessages < uint32(n) {
			b.Fatalf("select: %v, %v", mbox, err)
		}
		done(b, c)
	}
}

// fetchAll fetches 1:* in a fresh session each time, reading every item.
func fetchAll(what string, opts *imap.FetchOptions, uid bool) func(*testing.B, *server, int) {
	return func(b *testing.B, s *server, n int) {
		for b.Loop() {
			c := session(b, s)
			var set imap.NumSet = imap.SeqSet{{Start: 1, Stop: 0}}
			if uid {
				set = imap.UIDSet{{Start: 1, Stop: 0}}
			}
			if got := drain(b, c.Fetch(set, opts)); got < n {
				b.Fatalf("%s: %d messages, want %d", what, got, n)
			}
			done(b, c)
		}
	}
}

// drain reads a FETCH answer to its end and counts the messages.
func drain(b *testing.B, cmd *imapclient.FetchCommand) int {
	got := 0
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		if _, err := m.Collect(); err != nil {
			b.Fatal(err)
		}
		got++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	return got
}

// benchSearch runs one SEARCH in a fresh session; the corpus puts the
// subject word in every 20th message and the needle in every 100th.
func benchSearch(uid bool, crit *imap.SearchCriteria) func(*testing.B, *server, int) {
	return func(b *testing.B, s *server, n int) {
		want := n / 20
		if len(crit.Text) > 0 {
			want = n / 100
		}
		for b.Loop() {
			c := session(b, s)
			var data *imap.SearchData
			var err error
			if uid {
				data, err = c.UIDSearch(crit, nil).Wait()
			} else {
				data, err = c.Search(crit, nil).Wait()
			}
			if err != nil {
				b.Fatalf("search: %v", err)
			}
			if got := len(data.AllSeqNums()) + len(data.AllUIDs()); got < want {
				b.Fatalf("search: %d matches, want %d", got, want)
			}
			done(b, c)
		}
	}
}

// benchStore adds \Flagged to 1:100 in a fresh session; the flag is taken
// away again off the clock.
func benchStore(b *testing.B, s *server, n int) {
	set := imap.SeqSet{{Start: 1, Stop: 100}}
	for b.Loop() {
		c := session(b, s)
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: false, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		done(b, c)
	}
}

// bodyRuns counts benchBodies' runs per server: run k picks the same
// messages on both servers, and other ones than runs before it (no
// server is timed on what an earlier run put in its caches).
var bodyRuns = map[string]uint64{}

// benchBodies fetches BODY.PEEK[] of 100 random corpus messages one
// command at a time, as a client opening mail does: the same messages on
// both servers, found by their Message-ID (the fill appended them over
// four connections, so their sequence numbers differ).
func benchBodies(b *testing.B, s *server, n int) {
	bodyRuns[s.name]++
	r := rand.New(rand.NewPCG(bodyRuns[s.name], 2))
	seqOf := corpusSeqs(b, s, n)
	for b.Loop() {
		c := session(b, s)
		for range 100 {
			set := imap.SeqSetNum(seqOf[r.IntN(n)])
			cmd := c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			if drain(b, cmd) != 1 {
				b.Fatal("body: no message")
			}
		}
		done(b, c)
	}
}

// corpusSeqs returns the sequence number of each of INBOX's n corpus
// messages (index: the corpus number), read off the clock from their
// Message-IDs.
func corpusSeqs(b *testing.B, s *server, n int) []uint32 {
	b.StopTimer()
	defer b.StartTimer()
	c := s.dial(b)
	defer c.Close()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	item := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: uint32(n)}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{item}}).Collect()
	if err != nil {
		b.Fatal(err)
	}
	seqOf := make([]uint32, n)
	for _, m := range msgs {
		var i int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(m.FindBodySection(item))), "Message-ID: <m%d@example.com>", &i); err != nil || i < 0 || i >= n {
			b.Fatalf("%s: message %d: no corpus Message-ID (%v)", s.name, m.SeqNum, err)
		}
		seqOf[i] = m.SeqNum
	}
	for i, seq := range seqOf {
		if seq == 0 {
			b.Fatalf("%s: corpus message %d not in INBOX", s.name, i)
		}
	}
	return seqOf
}

// benchQResync is a client coming back to INBOX after another session
// changed the flags of 100 messages: ENABLE QRESYNC and SELECT INBOX
// (QRESYNC (uidvalidity modseq)) with what it knew, on the clock (RFC
// 7162 §3.2.5); connecting and logging in, off it. The resync must bring
// the 100 messages' new flags.
func benchQResync(b *testing.B, s *server, n int) {
	b.StopTimer()
	changer := s.dial(b)
	defer changer.Close()
	if _, err := changer.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	for round := 0; b.Loop(); round++ {
		b.StopTimer()
		known := status(b, s)
		first := uint32(1 + (round/2*100)%(n-100)) // set, then cleared
		op := imap.StoreFlagsAdd
		if round%2 == 1 {
			op = imap.StoreFlagsDel
		}
		set := imap.SeqSet{{Start: first, Stop: first + 99}}
		if err := changer.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{"$Yardstick"}}, nil).Close(); err != nil {
			b.Fatal(err)
		}
		var fetched atomic.Int64
		c, err := imapclient.DialStartTLS(s.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true},
			UnilateralDataHandler: &imapclient.UnilateralDataHandler{Fetch: func(*imapclient.FetchMessageData) { fetched.Add(1) }}})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Login(s.user, s.password).Wait(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.Enable(imap.CapQResync).Wait(); err != nil {
			b.Fatalf("%s: ENABLE QRESYNC: %v", s.name, err)
		}
		q := &imap.SelectQResync{UIDValidity: known.UIDValidity, ModSeq: known.HighestModSeq}
		if _, err := c.Select("INBOX", &imap.SelectOptions{QResync: q}).Wait(); err != nil {
			b.Fatalf("%s: SELECT (QRESYNC): %v", s.name, err)
		}
		b.StopTimer()
		// The client hands each FETCH to the handler in a goroutine.
		for deadline := time.Now().Add(5 * time.Second); fetched.Load() < 100 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if got := fetched.Load(); got < 100 {
			b.Fatalf("%s: the resync brought %d changed messages, want 100", s.name, got)
		}
		done(b, c)
	}
}

// status reads INBOX's UIDVALIDITY and HIGHESTMODSEQ in a session of its
// own: what a client remembers of the mailbox.
func status(b *testing.B, s *server) *imap.StatusData {
	c := s.dial(b)
	defer c.Close()
	st, err := c.Status("INBOX", &imap.StatusOptions{UIDValidity: true, HighestModSeq: true}).Wait()
	if err != nil || st.HighestModSeq == 0 {
		b.Fatalf("%s: STATUS INBOX (UIDVALIDITY HIGHESTMODSEQ): %v, %v", s.name, st, err)
	}
	return st
}

// benchAppend appends b.N corpus messages (after the mailbox's) to a
// mailbox of their own over 4 connections.
func benchAppend(b *testing.B, s *server, n int) {
	b.StopTimer()
	c := s.dial(b)
	c.Create("Appended", nil).Wait() // exists after the first round
	c.Close()
	b.StartTimer()
	fill(b, s, "Appended", b.N, n, 4)
}
