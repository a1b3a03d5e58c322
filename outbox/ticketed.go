package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/store"
	"tollbridge/ticketclient"
)

var errLegacy = ticketclient.ErrLegacy

// mayDowngrade decides whether mail for domain, for which discovery found
// no ticket API (why), may go out as legacy SMTP. Not when the domain took
// ticketed mail from us before or we pinned keys of its users: a missing
// SRV record is then DNS trouble or a forged answer, and sending in the
// clear would undo the encryption the domain chose. The mail waits and is
// retried (bounced after retry_for) instead.
func (o *Outbox) mayDowngrade(ctx context.Context, domain string, why error) error {
	e, err := o.st.TicketedEvidence(ctx, domain)
	if err != nil {
		return temporary("%v", err)
	}
	switch {
	case e.Endpoint != "":
		return temporary("%v, but %s took ticketed mail at %s on %s: not relaying in the clear, will retry",
			why, domain, e.Endpoint, e.LastDelivered.UTC().Format(time.DateOnly))
	case e.PinnedKeys > 0:
		return temporary("%v, but %d keys of %s's users are pinned: not relaying in the clear, will retry",
			why, e.PinnedKeys, domain)
	}
	return nil
}

type keyPair struct {
	entity      *openpgp.Entity
	fingerprint string
}

// blob is a stored encrypted blob as ticketclient uploads it.
type blob struct {
	blobs *store.Blobs
	ref   store.BlobRef
}

func (b blob) Size() int64                  { return b.ref.Size }
func (b blob) Open() (io.ReadCloser, error) { return b.blobs.Open(b.ref.Hash) }

// recipientKey fetches the recipient's key from its server's WKD, pinned
// on first use.
func (o *Outbox) recipientKey(ctx context.Context, ep *ticketclient.Endpoint, addr string) (*keyPair, error) {
	k, err := o.keys.Lookup(ctx, ep.HTTP, ep.URL, addr)
	var fe *keyring.FetchError
	switch {
	case err == nil:
		return &keyPair{entity: k, fingerprint: keyring.Fingerprint(k)}, nil
	case errors.Is(err, keyring.ErrNoSuchUser):
		return nil, permanent("5.1.1", "%s: no such user at %s", addr, ep.URL)
	case errors.Is(err, keyring.ErrKeyChanged):
		return nil, permanent("5.7.0", "%v; an admin must run: bridge keys accept %s", err, addr)
	case errors.As(err, &fe) && fe.Temporary():
		return nil, temporary("%v", err)
	case errors.As(err, &fe):
		return nil, permanent("5.7.0", "%v", err)
	}
	return nil, temporary("%v", err)
}

// deliverTicketed runs key lookup, ticket, work, upload and completion.
func (o *Outbox) deliverTicketed(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient, ep *ticketclient.Endpoint) (*success, error) {
	key, err := o.recipientKey(ctx, ep, r.Recipient)
	if err != nil {
		return nil, err
	}
	h, err := o.header(ctx, m, r, key)
	if err != nil {
		return nil, temporary("%v", err)
	}
	msg, err := o.ticketMessage(m, r, h)
	if err != nil {
		return nil, temporary("%v", err)
	}
	if msg.SubscriptionID, err = o.subscriptionID(ctx, m, r); err != nil {
		return nil, temporary("%v", err)
	}
	var resume *protocol.Ticket
	if r.Ticket != nil && r.Endpoint == ep.URL {
		// Read leniently: Deliver first tries to complete it, which is
		// what keeps a delivery that completed before a crash from going
		// out twice, whatever else the record lacks.
		resume = new(protocol.Ticket)
		if json.Unmarshal(r.Ticket, resume) != nil || resume.ID == "" {
			resume = nil
		}
	}
	p := &progress{o: o, ctx: ctx, id: r.ID}
	receipt, err := o.tickets.Deliver(ctx, ep, msg, resume, ticketclient.Hooks{
		// One write per ticket: what a restart needs to resume it without
		// delivering twice (the header the receipt will sign, too).
		Ticket: func(t *protocol.Ticket) error {
			b, _ := json.Marshal(t)
			return o.st.UpdateRecipient(ctx, r.ID, store.RecipientUpdate{Route: ptr("ticket"), Ticket: b, Endpoint: &ep.URL, Header: h})
		},
		Stage: p.stage,
	})
	p.done()
	switch {
	case err == nil:
		o.recordTicketed(ctx, ep)
		check := o.checkReceipt(ctx, ep.Domain, h, receipt.Receipt)
		return &success{route: "ticket", remoteID: receipt.MessageID, receipt: receipt.Receipt, header: h, check: check, work: p.worked}, nil
	case errors.Is(err, ticketclient.ErrAlreadyCompleted):
		o.recordTicketed(ctx, ep)
		return &success{route: "ticket", remoteID: "(completed by an earlier attempt)"}, nil
	}
	return nil, ticketFailure(err)
}

// recordTicketed remembers that ep's domain speaks the ticketed protocol,
// so that it is never downgraded to legacy SMTP later (mayDowngrade).
func (o *Outbox) recordTicketed(ctx context.Context, ep *ticketclient.Endpoint) {
	if err := o.st.RecordTicketedDelivery(ctx, ep.Domain, ep.URL); err != nil {
		o.log.Error("outbox", "err", err)
	}
}

// ticketFailure maps the ticket API's answers to bounce status codes.
func ticketFailure(err error) error {
	switch {
	case errors.Is(err, ticketclient.ErrWorkTooHard):
		return permanent("5.3.4", "%v", err)
	case errors.Is(err, ticketclient.ErrUnsupportedWork), errors.Is(err, ticketclient.ErrWorkNotAccepted):
		return permanent("5.7.0", "%v", err)
	case ticketclient.IsTemporary(err):
		return temporary("%v", err)
	}
	switch ticketclient.StatusOf(err) {
	case 0:
		return temporary("%v", err)
	case http.StatusNotFound:
		return permanent("5.1.1", "%v", err)
	case http.StatusRequestEntityTooLarge:
		return permanent("5.3.4", "%v", err)
	case http.StatusUnprocessableEntity:
		return permanent("5.6.0", "%v", err)
	}
	return permanent("5.5.0", "%v", err)
}

func (o *Outbox) ticketMessage(m *store.OutboxMessage, r *store.OutboxRecipient, header []byte) (*ticketclient.Message, error) {
	blobs := o.st.Blobs()
	_, senderDomain := keyring.SplitAddress(m.Sender)
	msg := &ticketclient.Message{
		Sender: hashOf(m.Sender), Recipient: hashOf(r.Recipient), SenderDomain: senderDomain,
		Header:  ticketclient.BytesBlob(header),
		Catalog: blob{blobs, m.Blobs[store.CatalogBlob]},
	}
	for _, p := range m.Parts {
		ref, ok := m.Blobs[p.ID]
		if !ok {
			return nil, fmt.Errorf("outbox %d: part %s missing", m.ID, p.ID)
		}
		msg.Parts = append(msg.Parts, ticketclient.Part{ID: p.ID, Kind: p.Kind, Blob: blob{blobs, ref}})
	}
	return msg, nil
}

// progress records a delivery's stage in the store for `bridge queue`:
// every change of stage, and work progress at most every two seconds.
type progress struct {
	o         *Outbox
	ctx       context.Context
	id        int64
	mu        sync.Mutex
	cur       string
	last      time.Time
	workStart time.Time
	worked    time.Duration // proof-of-work time of this attempt, for its log line
}

func (p *progress) stage(stage string, pr ticketclient.Progress) {
	if stage == "ticket" || stage == "completing" {
		return // over in a round trip: not worth a write
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if stage == p.cur && now.Sub(p.last) < 2*time.Second && pr.Found != pr.Count {
		return
	}
	if stage == "working" && p.workStart.IsZero() {
		p.workStart = now
	}
	if stage != "working" && !p.workStart.IsZero() {
		p.addWork(now)
	}
	p.cur, p.last = stage, now
	text := ""
	if stage == "working" {
		text = fmt.Sprintf("%d/%d proofs, %d hashes", pr.Found, pr.Count, pr.Hashes)
		stage = fmt.Sprintf("working %d/%d proofs", pr.Found, pr.Count)
	}
	p.o.st.UpdateRecipient(p.ctx, p.id, store.RecipientUpdate{State: &stage, Progress: &text})
}

func (p *progress) addWork(now time.Time) {
	p.worked += now.Sub(p.workStart)
	if p.o.metrics.WorkSecond != nil {
		p.o.metrics.WorkSecond(now.Sub(p.workStart).Seconds())
	}
	p.workStart = time.Time{}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.workStart.IsZero() {
		p.addWork(time.Now())
	}
}
