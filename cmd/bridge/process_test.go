package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"tollbridge/config"
	"tollbridge/internal/teststore"
)

// bridgeBinary builds cmd/bridge once per test run.
var bridgeBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "bridge-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bridge")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is one `bridge serve` process.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	cfg  *config.Config
	done chan error
	logs *strings.Builder
	mu   sync.Mutex
}

// serveProcess starts `bridge serve --config path` and waits until its
// submission listener answers.
func serveProcess(t testing.TB, path string) *proc {
	t.Helper()
	return serveProcessEnv(t, path, nil)
}

// serveProcessEnv is serveProcess with env added to the environment.
func serveProcessEnv(t testing.TB, path string, env []string) *proc {
	t.Helper()
	bin, err := bridgeBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cfg: cfg, done: make(chan error, 1), logs: &strings.Builder{}}
	p.cmd = exec.Command(bin, "serve", "--config", path, "--log-level", "debug")
	p.cmd.Env = append(os.Environ(), env...)
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.mu.Lock()
			p.logs.WriteString(s.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("logs of %s:\n%s", path, p.log())
		}
	})
	waitFor(t, "bridge listening", 30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", cfg.SMTP.Submission, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM and expects a clean exit 0 (graceful drain).
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Fatalf("bridge exited with %v after SIGTERM:\n%s", err, p.log())
		}
	case <-time.After(2 * time.Minute):
		p.t.Fatal("bridge did not stop within 2 minutes of SIGTERM")
	}
}

// kill sends SIGKILL: no drain, no cleanup.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

// processLayout writes configs and users for two sites without running them.
func processLayout(t *testing.T, bits, count int) *qsLayout {
	t.Helper()
	l := &qsLayout{Dir: t.TempDir(), Sites: twoSites(), RatePerMinute: -1}
	if err := writeTestConfigs(t, l, bits, count); err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Sites {
		s.Password = "pw-" + s.User
	}
	if err := l.createUsers(context.Background(), teststore.Cheap); err != nil {
		t.Fatal(err)
	}
	return l
}

// imapMessageIDs logs in over IMAP and returns the Message-ID of every
// message in INBOX.
func imapMessageIDs(t *testing.T, addr, user, pass string) []string {
	t.Helper()
	c, mbox := selectInbox(t, addr, user, pass)
	defer c.Close()
	if mbox.NumMessages == 0 {
		return nil
	}
	var seq imap.SeqSet
	seq.AddRange(1, mbox.NumMessages)
	all, err := c.Fetch(seq, &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range all {
		ids = append(ids, m.Envelope.MessageID)
	}
	return ids
}

// TestTwoProcesses: two `bridge serve` processes deliver to each other
// over the ticket API, and SIGTERM drains both with exit status 0.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	l := processLayout(t, 8, 2)
	org := serveProcess(t, l.configPath(l.Sites[0]))
	nett := serveProcess(t, l.configPath(l.Sites[1]))
	msg := plainMessage("alice@example.org", "bob@example.net", "two-processes")
	if err := submitRaw(org.cfg.SMTP.Submission, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery to bob", 30*time.Second, func() bool {
		ids := imapMessageIDs(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net")
		return len(ids) == 1 && ids[0] == "two-processes@example.org"
	})
	org.stop()
	nett.stop()
}

// TestCrashDuringDelivery kills the sending bridge with SIGKILL while 200
// messages are being submitted and delivered. After a restart every message
// that got its 250 arrives exactly once; one cut off before its 250 arrives
// at most once (RFC 1047's window).
func TestCrashDuringDelivery(t *testing.T) {
	t.Parallel()
	l := processLayout(t, 4, 1)
	orgPath := l.configPath(l.Sites[0])
	org := serveProcess(t, orgPath)
	nett := serveProcess(t, l.configPath(l.Sites[1]))

	const total = 200
	var acked sync.Map // message id → true
	var nacked atomic.Int32
	var next atomic.Int32
	killed := make(chan struct{})
	var once sync.Once
	// submit sends the messages not yet taken over four connections; the
	// first phase kills the bridge after half of them got their 250.
	submit := func(phase int) {
		var wg sync.WaitGroup
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					id := fmt.Sprintf("crash.%d", i)
					msg := plainMessage("alice@example.org", "bob@example.net", id)
					if err := submitRaw(org.cfg.SMTP.Submission, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, msg); err != nil {
						select {
						case <-killed:
							if phase == 0 {
								return // cut off: this one may or may not arrive
							}
						default:
						}
						t.Errorf("submit %s: %v", id, err)
						return
					}
					acked.Store(id+"@example.org", true)
					if nacked.Add(1) == total/2 && phase == 0 {
						once.Do(func() { close(killed); org.kill() })
					}
				}
			}()
		}
		wg.Wait()
	}
	submit(0)
	once.Do(func() { close(killed); org.kill() })
	org = serveProcess(t, orgPath)
	submit(1)

	ackedIDs := 0
	acked.Range(func(any, any) bool { ackedIDs++; return true })
	var ids []string
	// Attempts cut off by the crash are still claimed by the dead process;
	// the new one, holding the data directory's lock, takes them back at
	// start instead of waiting out the 30 s lease (releaseDeadClaims).
	waitForEvery(t, "every acknowledged message delivered", 150*time.Second, 500*time.Millisecond, func() bool {
		ids = imapMessageIDs(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net")
		seen := 0
		for _, id := range ids {
			if _, ok := acked.Load(id); ok {
				seen++
			}
		}
		return seen >= ackedIDs && queueEmpty(t, orgPath)
	})
	count := map[string]int{}
	for _, id := range ids {
		count[id]++
	}
	acked.Range(func(k, _ any) bool {
		if count[k.(string)] != 1 {
			t.Errorf("acknowledged %s delivered %d times", k, count[k.(string)])
		}
		return true
	})
	for id, n := range count {
		if !strings.HasPrefix(id, "crash.") || n > 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	t.Logf("%d acknowledged before and after the SIGKILL, %d delivered", ackedIDs, len(ids))
	org.stop()
}

// queueEmpty runs `bridge queue` against a running bridge's data.
func queueEmpty(t *testing.T, path string) bool {
	bin, _ := bridgeBinary()
	out, err := exec.Command(bin, "queue", "--config", path).CombinedOutput()
	return err == nil && strings.Contains(string(out), "outbox is empty")
}

// syncBuffer is a strings.Builder safe for one writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// TestQuickstart runs the newcomer's command: it prints working settings
// as one JSON line, mail flows from alice to bob with the default work,
// Ctrl-C stops both bridges cleanly, and a second run keeps the users and
// their mail.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	bin, err := bridgeBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "qs")
	var logs syncBuffer
	stdins := map[*exec.Cmd]io.Writer{}
	stdinOf := func(cmd *exec.Cmd) io.Writer { return stdins[cmd] }
	start := func() (*exec.Cmd, []qsUser, chan error) {
		cmd := exec.Command(bin, "quickstart", "--dir", dir, "--json")
		stdin, _ := cmd.StdinPipe()
		stdins[cmd] = stdin
		stdout, _ := cmd.StdoutPipe()
		logs.Reset()
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A failed test leaves no quickstart running (harmless once it exited).
		t.Cleanup(func() { cmd.Process.Kill() })
		done := make(chan error, 1)
		line := make(chan string, 1)
		go func() {
			s := bufio.NewScanner(stdout)
			if s.Scan() {
				line <- s.Text()
			}
			close(line)
			io.Copy(io.Discard, stdout)
			done <- cmd.Wait()
		}()
		var settings struct{ Users []qsUser }
		// Setting up two bridges derives both users' keys at the
		// production cost and makes RSA DKIM keys: seconds on a quiet
		// machine, more than 30 on a loaded one. The bound only catches a
		// quickstart that hangs; one that exits closes line at once.
		select {
		case l, ok := <-line:
			if !ok {
				t.Fatalf("quickstart exited without settings: %s", logs.String())
			}
			if err := json.Unmarshal([]byte(l), &settings); err != nil {
				t.Fatalf("quickstart --json printed %q: %v", l, err)
			}
		case <-time.After(3 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("no settings within 3 minutes: %s", logs.String())
		}
		return cmd, settings.Users, done
	}
	cmd, users, done := start()
	if len(users) != 2 || users[0].Address != "alice@example.org" || users[1].Address != "bob@example.net" || users[0].Security != "starttls" {
		t.Fatalf("users = %+v", users)
	}
	alice, bob := users[0], users[1]
	msg := plainMessage(alice.Address, bob.Address, "hello-bob")
	if err := submitRaw(alice.SMTP, alice.Address, alice.Password, []string{bob.Address}, msg); err != nil {
		t.Fatal(err)
	}
	// The newcomer sees the message move, with the work it took; the
	// delivery line is the event to wait on (an IMAP login per poll would
	// cost a full Argon2 derivation each, competing with the work).
	waitFor(t, "the delivery line", 3*time.Minute, func() bool {
		return regexp.MustCompile(`\d\d:\d\d:\d\d alice@example.org → bob@example.net: ticket, \d+\.\d s of work, delivered\n`).MatchString(logs.String())
	})
	if ids := imapMessageIDs(t, bob.IMAP, bob.Address, bob.Password); len(ids) != 1 {
		t.Fatalf("bob's INBOX after the delivery: %v", ids)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := <-done; err != nil {
		t.Fatalf("quickstart exited with %v after Ctrl-C", err)
	}
	if strings.Contains(logs.String(), "context canceled") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("Ctrl-C logged errors:\n%s", logs.String())
	}
	cmd, users2, done := start()
	if users2[1].Password != bob.Password {
		t.Fatal("second run made new users")
	}
	if ids := imapMessageIDs(t, users2[1].IMAP, bob.Address, bob.Password); len(ids) != 1 || ids[0] != "hello-bob@example.org" {
		t.Fatalf("bob's mail after a second run: %v", ids)
	}
	// Enter stops it too, with no signal (so `go run` exits 0 as well).
	if _, err := io.WriteString(stdinOf(cmd), "\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("quickstart exited with %v after Enter", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("quickstart still running 2 minutes after Enter")
	}
}
