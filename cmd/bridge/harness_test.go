package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/internal/dnstest"
	"tollbridge/internal/testkit"
	"tollbridge/internal/teststore"
)

// notFoundSRV answers every SRV lookup with NXDOMAIN: unrouted domains are
// legacy, whatever the machine's resolver does.
func notFoundSRV(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// testLog shows bridge logs when TOLLBRIDGE_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("TOLLBRIDGE_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// sites runs bridges for the given sites (each with its user) in dir.
type sites struct {
	t       *testing.T
	layout  *qsLayout
	bridges []*bridge
	cancel  context.CancelFunc
	done    chan struct{}
}

func startSites(t *testing.T, dir string, ss []*qsSite, smarthost string, powBits, powCount int, only ...int) *sites {
	t.Helper()
	l := &qsLayout{Dir: dir, Sites: ss, Smarthost: smarthost}
	if err := writeTestConfigs(t, l, powBits, powCount); err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		s.Password = "pw-" + s.User
	}
	if err := l.createUsers(context.Background(), teststore.Cheap); err != nil {
		t.Fatal(err)
	}
	return restartSites(t, l, only...)
}

// restartSites runs the bridges of an existing layout; with only given,
// just those sites (by index), the others' bridges stay nil.
func restartSites(t *testing.T, l *qsLayout, only ...int) *sites {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := &qsLayout{Dir: l.Dir, Sites: l.Sites, Smarthost: l.Smarthost}
	if len(only) > 0 {
		sub.Sites = nil
		for _, i := range only {
			sub.Sites = append(sub.Sites, l.Sites[i])
		}
	}
	opened, err := sub.open(ctx, testLog(), options{lookupSRV: notFoundSRV, firstRetry: 200 * time.Millisecond, maxRetry: time.Second})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	bs := make([]*bridge, len(l.Sites))
	if len(only) == 0 {
		copy(bs, opened)
	}
	for k, i := range only {
		bs[i] = opened[k]
	}
	s := &sites{t: t, layout: l, bridges: bs, cancel: cancel, done: make(chan struct{})}
	go func() { runAll(ctx, opened); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

func (s *sites) stop() {
	s.cancel()
	<-s.done
}

// user adds a user to site i and returns its password.
func (s *sites) addUser(i int, address string) string {
	s.t.Helper()
	pw := "pw-" + address
	b := s.bridges[i]
	if _, err := addUser(context.Background(), b.cfg, b.st, address, []byte(pw), teststore.Cheap); err != nil {
		s.t.Fatal(err)
	}
	return pw
}

// submit sends msg through site i's submission listener as user.
func (s *sites) submit(i int, user, pw string, rcpts []string, msg string) error {
	return submitRaw(s.bridges[i].addr("submission"), user, pw, rcpts, msg)
}

// submitRaw sends one message through the submission listener at addr,
// with AUTH PLAIN on loopback.
func submitRaw(addr, user, pw string, rcpts []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Auth(sasl.NewPlainClient("", user, pw)); err != nil {
		return err
	}
	if err := c.SendMail(user, rcpts, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testkit.WaitForEvery(t, what, d, 50*time.Millisecond, cond)
}

// waitForEvery is testkit.WaitForEvery.
func waitForEvery(t testing.TB, what string, d, every time.Duration, cond func() bool) {
	t.Helper()
	testkit.WaitForEvery(t, what, d, every, cond)
}

// unfiled is how many messages wait for address at site i.
func (s *sites) unfiled(i int, address string) int {
	u, err := s.bridges[i].st.UserByAddress(context.Background(), address)
	if err != nil {
		s.t.Fatal(err)
	}
	n, err := s.bridges[i].st.UnfiledCount(context.Background(), u.ID)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// smarthost is a go-smtp server standing in for a legacy relay.
type smarthost struct {
	addr string
	mu   sync.Mutex
	got  []relayed
	srv  *smtp.Server
}

type relayed struct {
	from string
	to   []string
	data []byte   // the message, without the bridge's DKIM signatures
	dkim []string // the DKIM-Signature fields the bridge put in front
}

// splitDKIM takes the leading DKIM-Signature fields off a relayed message.
func splitDKIM(raw []byte) ([]byte, []string) {
	var sigs []string
	for bytes.HasPrefix(raw, []byte("DKIM-Signature:")) {
		end := 0
		for {
			i := bytes.Index(raw[end:], []byte("\r\n"))
			if i < 0 {
				return raw, sigs
			}
			end += i + 2
			if end >= len(raw) || (raw[end] != ' ' && raw[end] != '\t') {
				break
			}
		}
		sigs = append(sigs, string(raw[:end]))
		raw = raw[end:]
	}
	return raw, sigs
}

func startSmarthost(t *testing.T) *smarthost {
	t.Helper()
	h := &smarthost{}
	h.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &shSession{h: h}, nil }))
	h.srv.Domain = "relay.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *smarthost) messages() []relayed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]relayed(nil), h.got...)
}

type shSession struct {
	h *smarthost
	r relayed
}

func (s *shSession) Mail(from string, _ *smtp.MailOptions) error { s.r.from = from; return nil }
func (s *shSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.to = append(s.r.to, to)
	return nil
}
func (s *shSession) Data(r io.Reader) error {
	var b bytes.Buffer
	io.Copy(&b, r)
	s.r.data, s.r.dkim = splitDKIM(b.Bytes())
	s.h.mu.Lock()
	s.h.got = append(s.h.got, s.r)
	s.h.mu.Unlock()
	return nil
}
func (s *shSession) Reset()        { s.r = relayed{} }
func (s *shSession) Logout() error { return nil }

// testDKIMKey is the RSA DKIM key of every bridge these tests set up,
// made once: generating a 2048-bit key per bridge was 7% of the
// package's CPU. (Each bridge still makes its own Ed25519 key.)
var testDKIMKey = sync.OnceValues(func() ([]byte, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
})

// testPorts hands out the ports of every bridge this test binary sets
// up, so that two tests running side by side never get the same one (a
// test that restarts a bridge found its port taken by another's).
var testPorts = &portPicker{}

// writeTestConfigs writes l's configs as tests want them: ports from
// testPorts, the shared DKIM key, and DNS answered by a test server on
// loopback (internal/dnstest, NXDOMAIN for every name), so that SPF,
// DKIM and DMARC checks never ask the machine's resolver: their answers
// would depend on the network (real records of example.org, or a
// timeout where there is no resolver).
func writeTestConfigs(tb testing.TB, l *qsLayout, powBits, powCount int) error {
	tb.Helper()
	l.Ports = testPorts
	seedDKIM(tb, l)
	if err := l.writeConfigs(powBits, powCount); err != nil {
		return err
	}
	zone := dnstest.New(tb)
	for _, s := range l.Sites {
		appendFile(tb, l.configPath(s), fmt.Sprintf("\n[dns]\nresolver = %q\n", zone.Addr()))
	}
	return nil
}

// seedDKIM writes testDKIMKey as each site's RSA DKIM key before
// writeConfigs, whose bridge init then loads it instead of making one.
func seedDKIM(tb testing.TB, l *qsLayout) {
	tb.Helper()
	key, err := testDKIMKey()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range l.Sites {
		path := dkimKeyPath(filepath.Join(l.Dir, s.Name, "data"), strings.ToLower(s.Domain), "tb-rsa")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, key, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}
