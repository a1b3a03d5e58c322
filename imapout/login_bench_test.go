package imapout

import (
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/keyring"
)

// BenchmarkParallelFirstLogins: ten IMAP clients of one user, connected,
// send LOGIN at once while nobody holds the user's key, with the default
// protection (Argon2, 64 MiB, 3 passes). It reports the wall time from the
// LOGINs to the first OK and to the last, and the derivations per round
// (goal, issue 13: all ten within 1 s of the first on a quiet machine).
func BenchmarkParallelFirstLogins(b *testing.B) {
	e := newEnv(b)
	u := e.addUserProtected("bench@example.net", keyring.Protection{})
	var firstSum, lastSum time.Duration
	rounds := 0
	before := e.cfg.Unlocker.Derivations()
	for b.Loop() {
		clients := make([]*imapclient.Client, 10)
		for i := range clients {
			c, err := imapclient.DialInsecure(e.addr, nil)
			if err != nil {
				b.Fatal(err)
			}
			clients[i] = c
		}
		first, last := loginAll(b, clients, u.Address)
		firstSum, lastSum, rounds = firstSum+first, lastSum+last, rounds+1
		for _, c := range clients {
			c.Logout().Wait()
			c.Close()
		}
		// The next round is a first login again.
		for i := 0; ; i++ {
			if _, held := e.cfg.Unlocker.Get(u.Address); !held {
				break
			}
			if i == 1000 {
				b.Fatal("key still held after every session ended")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.ReportMetric(float64(firstSum.Milliseconds())/float64(rounds), "first_ms")
	b.ReportMetric(float64(lastSum.Milliseconds())/float64(rounds), "last_ms")
	b.ReportMetric(float64(e.cfg.Unlocker.Derivations()-before)/float64(rounds), "derivations/round")
}

// loginAll sends LOGIN on every client at once and returns when the
// first and the last OK came, from the start.
func loginAll(b *testing.B, clients []*imapclient.Client, addr string) (first, last time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Go(func() {
			if err := c.Login(addr, password(addr)).Wait(); err != nil {
				b.Error(err)
			}
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if first == 0 || d < first {
				first = d
			}
			last = max(last, d)
		})
	}
	wg.Wait()
	return first, last
}
