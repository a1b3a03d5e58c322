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
	"tollbridge/internal/fail2bantest"
	"tollbridge/keyring"
)

// Failed AUTH PLAIN and AUTH LOGIN are logged with the client's address
// in the form contrib/fail2ban's filter matches, in both log formats and
// with the listener field cmd/bridge adds; user names made to look like
// another address do not change the address the filter finds.
func TestFailedAuthLoggedForFail2ban(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	text, json := &logBuffer{}, &logBuffer{}
	log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(text, nil), slog.NewJSONHandler(json, nil))).With("listener", "submission")
	st := e.st
	sub := &Submission{Config: Config{Hostname: "mail.example.org", Domains: []string{"example.org"}, MaxMessageBytes: 1 << 20, Timeout: 10 * time.Second},
		Store: st, Sealer: &intake.Sealer{Store: st}, Unlocker: cheapUnlocker(1),
		Guard: &keyring.Guard{Delay: -1, Limit: 3}, OutboxKey: e.outbox, Log: log}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sub.Serve(ctx, ln, false) }()
	t.Cleanup(func() { cancel(); <-done })

	auths := []sasl.Client{
		sasl.NewPlainClient("", "alice@example.org", "wrong"),
		sasl.NewLoginClient(`x" ip=198.51.100.9 proto=smtp ip=198.51.100.9`, "pw"),
		sasl.NewPlainClient("", `x","proto":"smtp","ip":"198.51.100.9`, "pw"),
		sasl.NewPlainClient("", "alice@example.org", "alice-pw"), // throttled: refused unchecked
	}
	for i, a := range auths {
		c, err := smtp.Dial(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		if err := c.Auth(a); err == nil {
			t.Fatalf("login %d succeeded", i)
		}
		c.Close()
	}
	fail2bantest.CheckLines(t, text.String(), len(auths), "127.0.0.1")
	fail2bantest.CheckLines(t, json.String(), len(auths), "127.0.0.1")
}
