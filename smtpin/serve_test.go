package smtpin

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"tollbridge/intake"
	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/store"
)

// A Submission served on two listeners (as `bridge serve` serves 587 and
// 465) works on each with its own Serve's context: when one listener's
// context ends, the other still logs users in. It used to keep the last
// Serve's context in the struct, so logins on the first listener failed
// once the second had ended.
func TestServeContextPerListener(t *testing.T) {
	t.Parallel()
	st := teststore.Open(t, store.Options{})
	addUser(t, st, "alice@example.org", "alice-pw")
	sub := &Submission{
		Config: Config{Hostname: "mail.example.org", Domains: []string{"example.org"}, MaxMessageBytes: 1 << 20,
			MaxRecipients: 10, Timeout: 10 * time.Second},
		Store: st, Sealer: &intake.Sealer{Store: st}, Unlocker: cheapUnlocker(2),
		Guard: &keyring.Guard{Delay: -1, Limit: 5}, Log: slog.New(slog.DiscardHandler), Notify: func() {},
	}
	live, stop := context.WithCancel(context.Background())
	first := serveOn(t, sub, live)
	t.Cleanup(func() { stop(); <-first.done })
	ending, end := context.WithCancel(context.Background())
	second := serveOn(t, sub, ending)
	end()
	if err := <-second.done; err != nil {
		t.Fatalf("second listener: %v", err)
	}

	c, err := smtp.Dial(first.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "alice-pw")); err != nil {
		t.Fatalf("AUTH on the first listener after the second ended: %v", err)
	}
}

// served is one Serve of a Submission.
type served struct {
	addr string
	done chan error
}

// serveOn serves sub on a new loopback listener with ctx and returns once
// it answers a client.
func serveOn(t *testing.T, sub *Submission, ctx context.Context) served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := served{addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { s.done <- sub.Serve(ctx, ln, false) }()
	c, err := smtp.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return s
}
