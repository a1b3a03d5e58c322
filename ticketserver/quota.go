package ticketserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"tollbridge/store"
)

// quotaRetry is the Retry-After of an upload refused for the pending-bytes
// quota: room comes back when the client's tickets complete, or expire and
// the sweeper (every minute) deletes their uploads.
const quotaRetry = time.Minute

// reservations bound the bytes pending on open tickets (store.UploadQuota)
// while uploads stream in. The bytes already stored are summed in the
// store, which every node shares and which survives restarts; the bytes
// of uploads still streaming are reserved here, in memory, before the
// first body byte is read, because they exist only in this process (a
// crash ends them) and must count at once so parallel uploads cannot slip
// past. The store checks again when an upload is recorded, so uploads
// streaming on several nodes still never leave more than the quota stored.
type reservations struct {
	quota store.UploadQuota
	st    *store.Store

	mu       sync.Mutex
	byClient map[string]int64
	total    int64
}

func newReservations(st *store.Store, q store.UploadQuota) *reservations {
	return &reservations{st: st, quota: q, byClient: map[string]int64{}}
}

// reserve makes room for an upload of up to n bytes from client key that
// replaces one of replaced bytes, or answers 429. The returned func gives
// the room back; call it once the upload is recorded or abandoned.
func (rs *reservations) reserve(ctx context.Context, key string, n, replaced int64) (func(), error) {
	if rs.quota.PerClient <= 0 && rs.quota.Total <= 0 {
		return func() {}, nil
	}
	// The lock is held across the store's sum so that a reservation given
	// back after its upload was recorded is never missed by both.
	rs.mu.Lock()
	defer rs.mu.Unlock()
	client, total, err := rs.st.PendingBytes(ctx, key)
	if err != nil {
		return nil, err
	}
	grow := n - replaced
	switch {
	case rs.quota.PerClient > 0 && client+rs.byClient[key]+grow > rs.quota.PerClient:
		return nil, overQuota("your address has %d bytes uploaded to open tickets; at most %d are allowed", client+rs.byClient[key], rs.quota.PerClient)
	case rs.quota.Total > 0 && total+rs.total+grow > rs.quota.Total:
		return nil, overQuota("this server holds %d bytes for open tickets; at most %d are allowed", total+rs.total, rs.quota.Total)
	}
	rs.byClient[key] += n
	rs.total += n
	var once sync.Once
	return func() {
		once.Do(func() {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if rs.byClient[key] -= n; rs.byClient[key] <= 0 {
				delete(rs.byClient, key)
			}
			rs.total -= n
		})
	}, nil
}

// overQuota is the 429 of an upload beyond the pending-bytes quota.
func overQuota(format string, args ...any) *apiError {
	return tooMany(quotaRetry, fmt.Sprintf(format, args...))
}

// quotaError turns the store's quota refusal into the same 429.
func quotaError(err error) error {
	if errors.Is(err, store.ErrPendingQuota) {
		return tooMany(quotaRetry, err.Error())
	}
	return err
}

// rateGuard reads an upload body and cuts it off when it arrives slower
// than minRate bytes a second, averaged over each window after the first
// (a grace window for the connection to get going): a slow-loris upload
// would otherwise hold a connection and a temporary file until the upload
// deadline.
type rateGuard struct {
	r    io.Reader
	n    atomic.Int64
	slow atomic.Bool
	done chan struct{}
}

// guardRate starts watching body; cut is called (from another goroutine)
// to make the blocked read fail. stop must be called when reading ends.
func guardRate(body io.Reader, minRate int64, window time.Duration, cut func()) *rateGuard {
	g := &rateGuard{r: body, done: make(chan struct{})}
	if minRate <= 0 || window <= 0 {
		return g
	}
	least := int64(float64(minRate) * window.Seconds())
	go func() {
		t := time.NewTicker(window)
		defer t.Stop()
		last := int64(-1) // the first tick ends the grace window
		for {
			select {
			case <-g.done:
				return
			case <-t.C:
			}
			n := g.n.Load()
			if last >= 0 && n-last < least {
				g.slow.Store(true)
				cut()
				return
			}
			last = n
		}
	}()
	return g
}

func (g *rateGuard) Read(p []byte) (int, error) {
	if g.slow.Load() {
		return 0, errTooSlow
	}
	n, err := g.r.Read(p)
	g.n.Add(int64(n))
	if err != nil && g.slow.Load() {
		err = errTooSlow
	}
	return n, err
}

// stop ends the watch.
func (g *rateGuard) stop() { close(g.done) }

var errTooSlow = errors.New("upload slower than the minimum rate")

// cutRead makes a handler's blocked body read fail at once.
func cutRead(w http.ResponseWriter) func() {
	rc := http.NewResponseController(w)
	return func() { rc.SetReadDeadline(time.Now()) }
}
