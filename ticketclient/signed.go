package ticketclient

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"tollbridge/protocol"
)

// replayWindow is how long a receiving server remembers a signed request
// body, honouring it once (docs/protocol.md §3.7).
const replayWindow = 600 * time.Second

// dating gives signed requests their created time so that no two bodies
// sent within the replay window are the same: two messages of the same
// shape between the same people within a second would otherwise produce
// identical bodies, and the second would be taken for a replay (and cost
// work). Only created can differ, so it moves a second ahead of the last
// one used for that shape; it stays within the 300 s the server allows
// unless hundreds of identical requests go out at once.
type dating struct {
	mu   sync.Mutex
	last map[[32]byte]int64 // shape of the request -> created last used
}

// created returns the created time for a request of shape q at now.
func (d *dating) created(q protocol.TicketRequest, now time.Time) int64 {
	q.Created = 0
	b, _ := json.Marshal(q)
	shape := sha256.Sum256(b)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.last = map[[32]byte]int64{}
	}
	if len(d.last) > 4096 {
		for k, t := range d.last {
			if now.Unix()-t > int64(replayWindow/time.Second) {
				delete(d.last, k)
			}
		}
	}
	c := now.Unix()
	if prev, ok := d.last[shape]; ok && c <= prev && now.Unix()-prev < int64(replayWindow/time.Second) {
		c = prev + 1
	}
	d.last[shape] = c
	return c
}

// sign fills in q's created and signs its body: the body to send and the
// header fields that go with it. A request that cannot be signed goes
// unsigned; it still gets a ticket, with work.
func (e *Endpoint) sign(q protocol.TicketRequest) ([]byte, http.Header, error) {
	if e.c.opts.Signer == nil || q.SenderDomain == "" {
		q.SenderDomain, q.Created = "", 0
		b, err := json.Marshal(q)
		return b, nil, err
	}
	q.Created = e.c.dating.created(q, e.c.opts.now())
	b, err := json.Marshal(q)
	if err != nil {
		return nil, nil, err
	}
	sig, err := e.c.opts.Signer(q.SenderDomain, b)
	if err != nil {
		e.c.log.Warn("ticket request goes unsigned", "domain", q.SenderDomain, "err", err)
		q.SenderDomain = ""
		return e.sign(q)
	}
	return b, http.Header{protocol.SignatureHeader: {base64.StdEncoding.EncodeToString(sig)}}, nil
}
