package mailbench

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/internal/mtatest"
)

// conns is how many submission connections alice's client opens.
const conns = 4

// side is one mail system as the benchmark drives it: where alice submits
// and where bob reads.
type side struct {
	name       string
	submission string
	// auth: log in with AUTH PLAIN before sending.
	auth               bool
	from, fromPassword string
	imap               string
	to, toPassword     string
	inbox              *imapclient.Client // bob's session, logged in once
}

// login opens bob's IMAP session over STARTTLS, kept for every poll: a
// login per poll would cost the bridge a key derivation each.
func (s *side) login(tb testing.TB) {
	tb.Helper()
	c, err := imapclient.DialStartTLS(s.imap, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		tb.Fatalf("%s: imap: %v", s.name, err)
	}
	if err := c.Login(s.to, s.toPassword).Wait(); err != nil {
		c.Close()
		tb.Fatalf("%s: imap login: %v", s.name, err)
	}
	tb.Cleanup(func() { c.Close() })
	s.inbox = c
}

// count is the number of messages in bob's INBOX (IMAP STATUS).
func (s *side) count() (int, error) {
	st, err := s.inbox.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0, fmt.Errorf("%s: status: %w", s.name, err)
	}
	return int(*st.NumMessages), nil
}

// round sends n messages of round r over conns connections and returns
// the time from the first connection until bob's INBOX has grown by n.
func (s *side) round(ctx context.Context, r, n int) (time.Duration, error) {
	base, err := s.count()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); errs[c] = s.submitMany(r, n, &next) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	// Bounded: a round that does not arrive within the context fails.
	for tick := time.NewTicker(50 * time.Millisecond); ; {
		got, err := s.count()
		if err != nil || got >= base+n {
			tick.Stop()
			return time.Since(start), err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: %d of %d messages in INBOX: %w", s.name, got-base, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// submitMany sends messages over one STARTTLS connection, taking the next
// unsent index below n each time.
func (s *side) submitMany(r, n int, next *atomic.Int64) error {
	c, err := smtp.DialStartTLS(s.submission, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return fmt.Errorf("%s: submission: %w", s.name, err)
	}
	defer c.Close()
	if s.auth {
		if err := c.Auth(sasl.NewPlainClient("", s.from, s.fromPassword)); err != nil {
			return fmt.Errorf("%s: auth: %w", s.name, err)
		}
	}
	for {
		i := int(next.Add(1) - 1)
		if i >= n {
			return c.Quit()
		}
		if err := c.SendMail(s.from, []string{s.to}, strings.NewReader(mixMessage(r, i))); err != nil {
			return fmt.Errorf("%s: message %d: %w", s.name, i, err)
		}
	}
}

// messageCount is TOLLBRIDGE_MAILBENCH_MESSAGES, 500 by default.
func messageCount(tb testing.TB) int {
	v := os.Getenv("TOLLBRIDGE_MAILBENCH_MESSAGES")
	if v == "" {
		return 500
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("TOLLBRIDGE_MAILBENCH_MESSAGES=%q: want a positive number", v)
	}
	return n
}

// BenchmarkMailFlow times alice→bob through two bridges and through
// Postfix→Postfix→Dovecot, round by round, the order alternating so a
// drift in the machine's speed favours neither.
func BenchmarkMailFlow(b *testing.B) {
	needMTAs(b)
	n := messageCount(b)
	dir := b.TempDir()
	bridges := startBridges(b, filepath.Join(dir, "bridges"))
	mta := startMTAs(b, filepath.Join(dir, "mta"), bridges.bob.cert(), bridges.bob.key())
	br := bridges.side()
	for _, s := range []*side{br, mta} {
		s.login(b)
	}
	mtatest.Attachments()
	profiled := bridges.startProfiles(b)
	var sumBridge, sumMTA, sumRatio float64
	// b.Loop, not b.N: the servers are set up once, not again for the
	// benchmark's probing first run of one round.
	r := 0
	for ; b.Loop(); r++ {
		bRate, mRate := bridges.measured(b, br, mta, r, n)
		sumBridge, sumMTA, sumRatio = sumBridge+bRate, sumMTA+mRate, sumRatio+bRate/mRate
	}
	profiled()
	rounds := float64(r)
	b.ReportMetric(sumBridge/rounds, "bridge_msgs/s")
	b.ReportMetric(sumMTA/rounds, "postfix_msgs/s")
	b.ReportMetric(sumRatio/rounds, "bridge/postfix")
}

// measured runs round r on both sides and prints both rates, their ratio
// and what the bridge processes spent.
func (p *bridgePair) measured(b *testing.B, br, mta *side, r, n int) (bRate, mRate float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var bTime, mTime time.Duration
	var use bridgeUse
	var err error
	for i := range 2 {
		if (i+r)%2 == 0 {
			before := p.use()
			bTime, err = br.round(ctx, r, n)
			use = p.use().minus(before)
		} else {
			mTime, err = mta.round(ctx, r, n)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	bRate, mRate = float64(n)/bTime.Seconds(), float64(n)/mTime.Seconds()
	fmt.Printf("round %d: bridge %.2f msgs/s (%.1f s), postfix %.2f msgs/s (%.1f s), bridge/postfix %.3f; "+
		"bridge CPU: alice %.1f s, bob %.1f s; alice's work %.1f s summed over workers\n",
		r, bRate, bTime.Seconds(), mRate, mTime.Seconds(), bRate/mRate, use.alice, use.bob, use.work)
	return bRate, mRate
}

// bridgeUse is the CPU seconds of each bridge process and the seconds
// alice's outbox spent on proof-of-work (tollbridge_pow_seconds_total:
// wall time, summed over the workers solving at once).
type bridgeUse struct{ alice, bob, work float64 }

func (p *bridgePair) use() bridgeUse {
	return bridgeUse{p.alice.cpuSeconds(), p.bob.cpuSeconds(), p.alice.metric("tollbridge_pow_seconds_total")}
}

func (u bridgeUse) minus(v bridgeUse) bridgeUse {
	return bridgeUse{u.alice - v.alice, u.bob - v.bob, u.work - v.work}
}

// startProfiles, with TOLLBRIDGE_MAILBENCH_PPROF=DIR, starts a CPU
// profile of both bridges (TOLLBRIDGE_MAILBENCH_PPROF_SECONDS, 60 by
// default, from the first round's start) and returns what waits for them.
func (p *bridgePair) startProfiles(b *testing.B) func() {
	out := os.Getenv("TOLLBRIDGE_MAILBENCH_PPROF")
	if out == "" {
		return func() {}
	}
	secs := 60
	if v, err := strconv.Atoi(os.Getenv("TOLLBRIDGE_MAILBENCH_PPROF_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+60)*time.Second)
	var waits []<-chan error
	for _, s := range []*bridgeSite{p.alice, p.bob} {
		waits = append(waits, s.profile(ctx, secs, filepath.Join(out, s.domain+".cpu.pprof")))
	}
	return func() {
		defer cancel()
		for _, w := range waits {
			if err := <-w; err != nil {
				b.Error(err)
			}
		}
	}
}
