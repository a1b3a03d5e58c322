package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"tollbridge/internal/teststore"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/config"
	"tollbridge/internal/pgtest"
	"tollbridge/internal/s3test"
)

// domainNodes writes the layout of TestThreeNodes: example.org (alice) on
// its own, example.net (bob, carol) on one PostgreSQL database and the S3
// bucket b, its first node's config and n-1 more (node2.toml, …) that
// differ only in their listeners. The nodes share data_dir for its
// keys (outbox, DKIM, receipts) and certificate: as on separate machines
// with the keys copied. It returns the nodes' config paths; the nodes
// are started with b.Env() (the bucket's credentials).
//
// Without a bucket (b.Name empty) the nodes share data_dir/blobs
// instead, which on one machine is the same thing.
func domainNodes(t testing.TB, n int, b s3test.Bucket, ticketAPI func(net []string) string) (*qsLayout, []string) {
	t.Helper()
	dsn := pgtest.Schema(t, pgtest.Server(t))
	l := &qsLayout{Dir: t.TempDir(), Sites: twoSites(), RatePerMinute: -1}
	if err := writeTestConfigs(t, l, 8, 1); err != nil {
		t.Fatal(err)
	}
	first := l.configPath(l.Sites[1])
	appendFile(t, first, fmt.Sprintf("\n[store]\npostgres = %q\n", dsn))
	// Users are rows in PostgreSQL: they are made here before the bucket
	// is configured, so that this process needs no S3 credentials in its
	// own environment (and the test can run in parallel).
	nodeUsers(t, l, first)
	if b.Name != "" {
		appendFile(t, first, fmt.Sprintf("s3_endpoint = %q\ns3_bucket = %q\ns3_tls = false\n", b.Endpoint, b.Name))
	} else {
		t.Log("no S3 bucket: the nodes share data_dir/blobs")
	}
	text, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{first}
	listener := regexp.MustCompile(`(?m)^((submission|listen|mx|submission_tls|listen_tls) = )"127\.0\.0\.1:\d+"`)
	for i := 2; i <= n; i++ {
		p := filepath.Join(filepath.Dir(first), fmt.Sprintf("node%d.toml", i))
		node := listener.ReplaceAllStringFunc(string(text), func(m string) string {
			key := listener.FindStringSubmatch(m)[1]
			return key + `"` + testPorts.pick(0) + `"`
		})
		if err := os.WriteFile(p, []byte(node), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var tickets []string
	for _, p := range paths {
		cfg, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, cfg.Ticket.Listen)
	}
	// The peer reaches example.net's ticket API through ticketAPI (a
	// proxy in front of the three nodes).
	org := l.configPath(l.Sites[0])
	orgText, _ := os.ReadFile(org)
	os.WriteFile(org, []byte(strings.ReplaceAll(string(orgText), "https://"+tickets[0], "https://"+ticketAPI(tickets))), 0o600)
	return l, paths
}

// nodeUsers makes the layout's users (alice on her own bridge; bob and
// carol in the nodes' database, whose config is first).
func nodeUsers(t testing.TB, l *qsLayout, first string) {
	t.Helper()
	for _, s := range l.Sites {
		s.Password = "pw-" + s.User
	}
	if err := l.createUsers(context.Background(), teststore.Cheap); err != nil {
		t.Fatal(err)
	}
	cfg, _ := config.Load(first)
	st, err := openConfigStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := addUser(context.Background(), cfg, st, "carol@example.net", []byte("pw-carol@example.net"), teststore.Cheap); err != nil {
		t.Fatal(err)
	}
}

// optionalBucket is a bucket on the S3 test server, or none (Name "")
// outside CI when there is no server.
func optionalBucket(t *testing.T) s3test.Bucket {
	var b s3test.Bucket
	t.Run("s3", func(t *testing.T) { b = s3test.New(t) })
	return b
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// roundRobin is a TCP proxy on loopback that hands each connection to the
// next of backends that accepts it (TLS passes through): requests of one
// sender reach every node, and none reaches a dead one.
func roundRobin(t testing.TB, backends []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var next atomic.Uint32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for range backends {
					addr := backends[int(next.Add(1))%len(backends)]
					b, err := net.DialTimeout("tcp", addr, 2*time.Second)
					if err != nil {
						continue
					}
					defer b.Close()
					go func() { io.Copy(b, c); b.(*net.TCPConn).CloseWrite() }()
					io.Copy(c, b)
					return
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestThreeNodes is issue 15's multi-node test: three `bridge serve`
// processes of example.net on one PostgreSQL and one S3 bucket, and a peer
// bridge (example.org) whose ticket requests and uploads are spread over
// the three. Mail submitted on node 1 is seen by IDLE on node 2 within a
// second; 200 messages are sent from all three nodes while node 3 is
// SIGKILLed, and each acknowledged one arrives exactly once; the peer's
// mail arrives through whichever nodes live; a flag set on node 1 is
// announced on node 2.
func TestThreeNodes(t *testing.T) {
	t.Parallel()
	b := optionalBucket(t)
	l, paths := domainNodes(t, 3, b, func(nodes []string) string { return roundRobin(t, nodes) })
	org := serveProcess(t, l.configPath(l.Sites[0]))
	var nodes []*proc
	for _, p := range paths {
		nodes = append(nodes, serveProcessEnv(t, p, b.Env()))
	}
	idleAcrossNodes(t, nodes[0], nodes[1])
	acked := sendUnderKill(t, nodes, 200)
	var ids []string
	waitForEvery(t, "every acknowledged message delivered", 180*time.Second, time.Second, func() bool {
		ids = imapMessageIDs(t, org.cfg.IMAP.Listen, "alice@example.org", "pw-alice@example.org")
		return len(ids) >= len(acked)
	})
	count := map[string]int{}
	for _, id := range ids {
		count[id]++
	}
	for id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged %s delivered %d times", id, count[id])
		}
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	t.Logf("%d of 200 acknowledged, %d delivered", len(acked), len(ids))
	// The peer's mail reaches bob through the two nodes left.
	for i := range 6 {
		msg := plainMessage("alice@example.org", "bob@example.net", fmt.Sprintf("in.%d", i))
		if err := submitRaw(org.cfg.SMTP.Submission, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the peer's mail at bob", 90*time.Second, func() bool {
		return len(imapMessageIDs(t, nodes[1].cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net")) == 6
	})
	flagAcrossNodes(t, nodes[0], nodes[1])
	for _, n := range append(nodes[:2], org) {
		n.stop()
	}
}

// idleAcrossNodes: carol IDLEs on node b; bob submits to her on node a;
// the EXISTS comes within a second of the submission's 250.
func idleAcrossNodes(t *testing.T, a, b *proc) {
	t.Helper()
	exists := make(chan uint32, 8)
	c, err := imapclient.DialInsecure(b.cfg.IMAP.Listen, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("carol@example.net", "pw-carol@example.net").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	msg := plainMessage("bob@example.net", "carol@example.net", "across-nodes")
	if err := submitRaw(a.cfg.SMTP.Submission, "bob@example.net", "pw-bob@example.net", []string{"carol@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	select {
	case n := <-exists:
		took := time.Since(acked)
		t.Logf("IDLE on node 2 saw EXISTS %d %v after node 1's 250", n, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("IDLE on node 2 saw the message %v after node 1's 250, want within 1 s", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("IDLE on node 2 saw nothing of mail submitted on node 1")
	}
	idle.Close()
	idle.Wait()
}

// sendUnderKill submits total messages from bob to alice over four
// connections spread over the nodes, SIGKILLs the last node once half are
// acknowledged, and returns the acknowledged Message-IDs. Messages cut off
// before their 250 may arrive at most once.
func sendUnderKill(t *testing.T, nodes []*proc, total int) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]bool{}
	var next, nacked atomic.Int32
	var dead atomic.Bool
	var once sync.Once
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				node := nodes[(i+c)%len(nodes)]
				if dead.Load() && node == nodes[len(nodes)-1] {
					node = nodes[i%2]
				}
				id := fmt.Sprintf("load.%d", i)
				msg := plainMessage("bob@example.net", "alice@example.org", id)
				if err := submitRaw(node.cfg.SMTP.Submission, "bob@example.net", "pw-bob@example.net", []string{"alice@example.org"}, msg); err != nil {
					if !dead.Load() || node != nodes[len(nodes)-1] {
						t.Errorf("submit %s: %v", id, err)
					}
					continue
				}
				mu.Lock()
				acked[id+"@example.org"] = true
				mu.Unlock()
				if nacked.Add(1) == int32(total/2) {
					once.Do(func() { dead.Store(true); nodes[len(nodes)-1].kill() })
				}
			}
		})
	}
	wg.Wait()
	return acked
}

// flagAcrossNodes: bob has INBOX selected on node b; a \Flagged set on
// node a comes to b's session as an unsolicited FETCH.
func flagAcrossNodes(t *testing.T, a, b *proc) {
	t.Helper()
	flagged := make(chan uint32, 8)
	watch, err := imapclient.DialInsecure(b.cfg.IMAP.Listen, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: func(m *imapclient.FetchMessageData) {
			for item := m.Next(); item != nil; item = m.Next() {
				if f, ok := item.(imapclient.FetchItemDataFlags); ok && containsFlag(f.Flags, imap.FlagFlagged) {
					flagged <- m.SeqNum
				}
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	set, err := imapclient.DialInsecure(a.cfg.IMAP.Listen, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, c := range []*imapclient.Client{watch, set} {
		if err := c.Login("bob@example.net", "pw-bob@example.net").Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	idle, err := watch.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := set.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-flagged:
		if n != 1 {
			t.Fatalf("node 2 announced \\Flagged on message %d, set on 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 2 did not announce the flag set on node 1")
	}
}

func containsFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, g := range flags {
		if g == f {
			return true
		}
	}
	return false
}
