package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/keyring"
)

// BenchmarkMemoryBigAttachment measures what a big attachment costs two
// real `bridge serve` processes: alice@example.org sends a message with a
// 4 MiB and then a 1 GiB attachment (MEMORY_BENCH_MIB overrides the big
// size) to bob@example.net over SMTP submission, and bob reads each back
// with IMAP FETCH BODY.PEEK[TEXT], checked by SHA-256. Each phase logs in
// once on each side with the default key protection (Argon2, 64 MiB), so
// both phases pay the same derivations. It reports each process's peak
// resident memory (VmHWM, reset before each phase) per phase, logins
// included (_peak_) and of the transfer alone, counted from when the
// derivations' memory was given back (_transfer_); the growth of each
// from the small to the big one; and the resident memory (VmRSS) 20 s
// after the last transfer and login. Goals (issue 15): growth under
// 16 MiB, RSS under 64 MiB after 20 s. Heavy: it runs only with
// TOLLBRIDGE_HEAVY=1, once (-benchtime 1x).
func BenchmarkMemoryBigAttachment(b *testing.B) {
	if os.Getenv("TOLLBRIDGE_HEAVY") != "1" {
		b.Skip("heavy benchmark: set TOLLBRIDGE_HEAVY=1 to run it")
	}
	big := int64(1 << 30)
	if s := os.Getenv("MEMORY_BENCH_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("MEMORY_BENCH_MIB: %v", err)
		}
		big = n << 20
	}
	l := memoryLayout(b, big)
	org := serveProcess(b, l.configPath(l.Sites[0]))
	nett := serveProcess(b, l.configPath(l.Sites[1]))
	procs := []*proc{org, nett}
	for b.Loop() {
		var peaks, transfer [2][2]int64
		for i, size := range []int64{4 << 20, big} {
			for _, p := range procs {
				resetPeak(b, p)
			}
			start := time.Now()
			var logins [2]int64
			logins, transfer[i] = sendAndRead(b, org, nett, i+1, size)
			for j, p := range procs {
				peaks[i][j] = max(procMem(b, p).hwm, logins[j], transfer[i][j])
			}
			b.Logf("%d MiB: %s; peak RSS with logins org %d MiB, net %d MiB; of the transfer alone org %d MiB, net %d MiB",
				size>>20, time.Since(start).Round(time.Second), peaks[i][0]>>20, peaks[i][1]>>20, transfer[i][0]>>20, transfer[i][1]>>20)
		}
		after := settle(b, procs, 20*time.Second)
		for j, side := range []string{"org", "net"} {
			b.ReportMetric(float64(peaks[0][j])/(1<<20), side+"_peak_4MiB_MiB")
			b.ReportMetric(float64(peaks[1][j])/(1<<20), side+"_peak_big_MiB")
			b.ReportMetric(float64(peaks[1][j]-peaks[0][j])/(1<<20), side+"_growth_MiB")
			b.ReportMetric(float64(transfer[1][j]-transfer[0][j])/(1<<20), side+"_transfer_growth_MiB")
			b.ReportMetric(float64(after[j])/(1<<20), side+"_rss_20s_MiB")
		}
	}
	if strings.Contains(os.Getenv("GODEBUG"), "gctrace") {
		for _, p := range procs {
			b.Logf("gc trace of %s:\n%s", p.cfg.Server.Domains[0], gcLines(p.log()))
		}
	}
	org.stop()
	nett.stop()
}

// gcLines is the runtime's gctrace lines in a process log.
func gcLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "gc ") || strings.HasPrefix(l, "scvg") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// memoryLayout is two sites whose users have the default key protection
// and whose limits admit a message with an attachment of size bytes.
func memoryLayout(b *testing.B, size int64) *qsLayout {
	l := &qsLayout{Dir: b.TempDir(), Sites: twoSites(), RatePerMinute: -1}
	if err := writeTestConfigs(b, l, 8, 1); err != nil {
		b.Fatal(err)
	}
	limit := 2*size + 64<<20 // base64 and MIME around the attachment
	for _, s := range l.Sites {
		s.Password = "pw-" + s.User
		path := l.configPath(s)
		cfg, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		cfg = bytes.Replace(cfg, []byte("max_message_bytes = 52428800"), fmt.Appendf(nil, "max_message_bytes = %d", limit), 1)
		cfg = bytes.Replace(cfg, []byte("[ticket]\n"), fmt.Appendf(nil, "[ticket]\nmax_pending_bytes_per_client = %d\nmax_pending_bytes = %d\n", 2*limit, 2*limit), 1)
		if err := os.WriteFile(path, cfg, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.createUsers(context.Background(), keyring.Protection{}); err != nil {
		b.Fatal(err)
	}
	return l
}

// sendAndRead submits message n (attachment of size bytes) from alice and
// reads it back as bob, whose INBOX must then hold n messages. Both log
// in first; once the processes gave the derivations' memory back, their
// peak counts restart, so the peaks returned (org, net) are the
// transfer's own.
func sendAndRead(b *testing.B, org, nett *proc, n int, size int64) (logins, transfer [2]int64) {
	c, err := imapclient.DialInsecure(nett.cfg.IMAP.Listen, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob@example.net", "pw-bob@example.net").Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	sc := submitter(b, org.cfg.SMTP.Submission)
	defer sc.Close()
	procs := []*proc{org, nett}
	waitForEvery(b, "derivation memory returned", 30*time.Second, 100*time.Millisecond, func() bool {
		return procMem(b, org).rss < 64<<20 && procMem(b, nett).rss < 64<<20
	})
	for j, p := range procs {
		logins[j] = procMem(b, p).hwm
		resetPeak(b, p)
	}
	head := fmt.Sprintf("From: alice@example.org\r\nTo: bob@example.net\r\nSubject: memory %d\r\n"+
		"Message-ID: <memory.%d@example.org>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n", size, n)
	sum := sha256.New()
	body := io.TeeReader(attachmentBody(size, uint64(n)), sum)
	if err := sc.SendMail("alice@example.org", []string{"bob@example.net"}, io.MultiReader(strings.NewReader(head), body)); err != nil {
		b.Fatalf("submit %d MiB: %v", size>>20, err)
	}
	// Delivery (work, upload, filing) is done when the message shows up
	// in the open session.
	waitForEvery(b, "delivery to bob", 20*time.Minute, 200*time.Millisecond, func() bool {
		if err := c.Noop().Wait(); err != nil {
			b.Fatal(err)
		}
		return c.Mailbox().NumMessages >= uint32(n)
	})
	got, err := fetchTextSum(c, uint32(n))
	if err != nil {
		b.Fatal(err)
	}
	if want := sum.Sum(nil); !bytes.Equal(got, want) {
		b.Fatalf("message %d read back differs from the one sent", n)
	}
	transfer = [2]int64{procMem(b, org).hwm, procMem(b, nett).hwm}
	if err := c.Logout().Wait(); err != nil {
		b.Fatal(err)
	}
	return logins, transfer
}

// submitter is a submission session logged in as alice.
func submitter(b *testing.B, addr string) *smtp.Client {
	c, err := smtp.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	c.SubmissionTimeout = 30 * time.Minute
	if err := c.Hello("bench"); err != nil {
		b.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "pw-alice@example.org")); err != nil {
		b.Fatal(err)
	}
	return c
}

// attachmentBody is a multipart body (after the header) with a short text
// part and size random bytes as a base64 attachment, made as it is read.
func attachmentBody(size int64, seed uint64) io.Reader {
	pre := "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attachment.\r\n" +
		"--b\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	return io.MultiReader(strings.NewReader(pre), &base64Random{left: size, rng: rand.NewChaCha8([32]byte{byte(seed)})},
		strings.NewReader("--b--\r\n"))
}

// base64Random reads as left random bytes in base64 lines of 76.
type base64Random struct {
	left int64
	rng  *rand.ChaCha8
	line []byte
}

func (r *base64Random) Read(p []byte) (int, error) {
	if len(r.line) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		raw := make([]byte, min(57, r.left))
		r.rng.Read(raw)
		r.left -= int64(len(raw))
		r.line = append(base64.StdEncoding.AppendEncode(r.line[:0], raw), '\r', '\n')
	}
	n := copy(p, r.line)
	r.line = r.line[n:]
	return n, nil
}

// fetchTextSum streams message seq's BODY[TEXT] into SHA-256.
func fetchTextSum(c *imapclient.Client, seq uint32) ([]byte, error) {
	sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true}
	cmd := c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}})
	defer cmd.Close()
	sum := sha256.New()
	found := false
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok && body.Literal != nil {
				if _, err := io.Copy(sum, body.Literal); err != nil {
					return nil, err
				}
				found = true
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("fetch %d: no BODY[TEXT]", seq)
	}
	return sum.Sum(nil), nil
}

// memStat is a process's resident memory now and at its peak.
type memStat struct{ rss, hwm, anon, file int64 }

func procMem(b *testing.B, p *proc) memStat {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	var m memStat
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		case "RssAnon":
			m.anon = kb << 10
		case "RssFile":
			m.file = kb << 10
		}
	}
	return m
}

// resetPeak starts a new VmHWM count (proc(5): clear_refs 5).
func resetPeak(b *testing.B, p *proc) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0); err != nil {
		b.Fatal(err)
	}
}

// settle samples the processes' RSS for d and returns it at the end,
// logging when each first fell under 64 MiB.
func settle(b *testing.B, procs []*proc, d time.Duration) []int64 {
	start := time.Now()
	under := make([]time.Duration, len(procs))
	var rss []int64
	var last []memStat
	for time.Since(start) < d {
		time.Sleep(250 * time.Millisecond)
		rss, last = rss[:0], last[:0]
		for i, p := range procs {
			m := procMem(b, p)
			rss, last = append(rss, m.rss), append(last, m)
			if m.rss < 64<<20 && under[i] == 0 {
				under[i] = time.Since(start)
			}
		}
	}
	for i, m := range last {
		when := "never"
		if under[i] > 0 {
			when = under[i].Round(time.Millisecond).String()
		}
		b.Logf("%s RSS after %s: %d MiB (anon %d, file %d), under 64 MiB after %s", procs[i].cfg.Server.Domains[0], d, m.rss>>20, m.anon>>20, m.file>>20, when)
	}
	return rss
}
