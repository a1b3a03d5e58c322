package imapout

import (
	"bytes"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/internal/fail2bantest"
	"tollbridge/keyring"
)

// lockedBuffer collects log output written from server goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Failed LOGIN and AUTHENTICATE PLAIN are logged with the client's address
// in the form contrib/fail2ban's filter matches (the same as SMTP's), in
// both log formats; user names made to look like another address do not
// change the address the filter finds.
func TestFailedLoginLoggedForFail2ban(t *testing.T) {
	t.Parallel()
	text, json := &lockedBuffer{}, &lockedBuffer{}
	e := newEnvLogging(t, text, func(c *Options) { c.Guard = &keyring.Guard{Delay: -1, Limit: 4} })
	e.jsonLogs = json
	e.restart(t)
	bob := e.addUser("bob@example.net")

	tries := []func(c *imapclient.Client) error{
		func(c *imapclient.Client) error { return c.Login(bob.Address, "wrong").Wait() },
		func(c *imapclient.Client) error { return c.Authenticate(plainClient(bob.Address, "wrong")) },
		func(c *imapclient.Client) error {
			return c.Login(`x" ip=198.51.100.9 proto=imap ip=198.51.100.9`, "pw").Wait()
		},
		func(c *imapclient.Client) error {
			return c.Authenticate(plainClient(`x","proto":"imap","ip":"198.51.100.9`, "pw"))
		},
		// Throttled: refused before the password is checked.
		func(c *imapclient.Client) error { return c.Login(bob.Address, password(bob.Address)).Wait() },
	}
	for i, try := range tries {
		c, err := imapclient.DialInsecure(e.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := try(c); err == nil {
			t.Fatalf("login %d succeeded", i)
		}
		c.Close()
	}
	// Each line was written before its NO went out.
	fail2bantest.CheckLines(t, text.String(), len(tries), "127.0.0.1")
	fail2bantest.CheckLines(t, json.String(), len(tries), "127.0.0.1")
}
