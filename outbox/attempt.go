package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/seal"
	"tollbridge/store"
)

// failure is why an attempt did not deliver: Status is the enhanced status
// code reported in a bounce, Temporary whether to try again.
type failure struct {
	Status    string // e.g. "5.1.1"
	Temporary bool
	Err       error
}

func (f *failure) Error() string { return fmt.Sprintf("%s %v", f.Status, f.Err) }

func (f *failure) Unwrap() error { return f.Err }

func temporary(format string, args ...any) *failure {
	return &failure{Status: "4.4.0", Temporary: true, Err: fmt.Errorf(format, args...)}
}

func permanent(status, format string, args ...any) *failure {
	return &failure{Status: status, Err: fmt.Errorf(format, args...)}
}

// success is a finished delivery.
type success struct {
	route    string
	remoteID string
	receipt  []byte
	header   []byte       // the header the receipt signs
	check    receiptCheck // the receipt's verification
	local    *store.NewMessage
	work     time.Duration // proof-of-work done in this attempt
}

// attempt makes one delivery attempt for one recipient and records its
// outcome. The next attempt's time was committed when it was claimed.
func (o *Outbox) attempt(ctx context.Context, r *store.OutboxRecipient) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.AttemptTimeout)
	defer cancel()
	log := o.log.With("outbox", r.OutboxID, "recipient", r.Recipient, "try", r.Tries)
	m, err := o.st.OutboxMessage(ctx, r.OutboxID)
	if err != nil {
		log.Error("outbox message", "err", err)
		return
	}
	ok, err := o.deliver(ctx, m, r)
	var f *failure
	switch {
	case err == nil:
		o.finish(ctx, log, r, store.Delivery{Outcome: store.OutcomeDelivered, Detail: ok.route, RemoteID: ok.remoteID, Receipt: ok.receipt, ReceiptCheck: ok.check.Result, Local: ok.local})
		if notifies(r.DSN.Notify, "SUCCESS") {
			if err := o.sendSuccess(context.WithoutCancel(ctx), m, r, ok); err != nil {
				log.Error("success notice", "err", err)
			}
		}
		if o.metrics.Delivered != nil {
			o.metrics.Delivered(ok.route)
		}
		log.Info("delivered", "from", m.Sender, "route", ok.route, "work_seconds", ok.work.Round(time.Millisecond).Seconds(), "remote_id", ok.remoteID)
		return
	case !errors.As(err, &f):
		f = &failure{Status: "4.3.0", Temporary: true, Err: err}
	}
	expired := o.now().Sub(m.Created) >= o.cfg.RetryFor
	if f.Temporary && !expired {
		o.st.UpdateRecipient(ctx, r.ID, store.RecipientUpdate{State: ptr("waiting"), LastError: ptr(f.Error())})
		log.Warn("delivery deferred", "err", f, "next", r.NextAttempt)
		return
	}
	if f.Temporary {
		f = &failure{Status: "4.4.7", Err: fmt.Errorf("gave up after %s: %w", o.cfg.RetryFor, f.Err)}
	}
	o.bounce(ctx, log, m, r, f)
}

func (o *Outbox) finish(ctx context.Context, log interface{ Error(string, ...any) }, r *store.OutboxRecipient, d store.Delivery) {
	if err := o.st.FinishRecipient(context.WithoutCancel(ctx), r, d); err != nil {
		log.Error("record outcome", "err", err)
	}
}

// deliver picks the recipient's route and delivers.
func (o *Outbox) deliver(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient) (*success, error) {
	_, domain := keyring.SplitAddress(r.Recipient)
	if o.isLocal(domain) {
		return o.deliverLocal(ctx, m, r)
	}
	ep, err := o.tickets.Discover(ctx, domain)
	switch {
	case errors.Is(err, errLegacy):
		if err := o.mayDowngrade(ctx, domain, err); err != nil {
			return nil, err
		}
		return o.relay(ctx, m, r)
	case err != nil:
		return nil, temporary("discover %s: %v", domain, err)
	}
	return o.deliverTicketed(ctx, m, r, ep)
}

// sessionKey unwraps the message's session key with the outbox key.
func (o *Outbox) sessionKey(m *store.OutboxMessage) (*seal.SessionKey, error) {
	k, err := seal.Unwrap(m.SessionKey, o.key)
	if err != nil {
		return nil, fmt.Errorf("outbox %d: session key: %w", m.ID, err)
	}
	return k, nil
}

// header makes (once per ticket, then reuses) the recipient's header.
func (o *Outbox) header(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient, to *keyPair) ([]byte, error) {
	if r.Header != nil {
		var h protocol.Header
		if json.Unmarshal(r.Header, &h) == nil && h.KeyFingerprint == to.fingerprint {
			return r.Header, nil
		}
	}
	k, err := o.sessionKey(m)
	if err != nil {
		return nil, err
	}
	cat := m.Blobs[store.CatalogBlob]
	h, err := k.NewHeader(to.entity, protocol.Header{
		From: hashOf(m.Sender), To: hashOf(r.Recipient),
		Catalog: protocol.Ref{Size: cat.Size, SHA256: cat.Hash}, Parts: m.Parts,
	})
	if err != nil {
		return nil, err
	}
	b, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	r.Header = b // persisted with the ticket it is uploaded on
	return b, nil
}

func hashOf(addr string) string { return keyring.HashNormalized(addr) }

// deliverLocal stores the message for a user of this bridge: the same
// encrypted blobs, a new header for the user's key, in the transaction
// that finishes the recipient.
func (o *Outbox) deliverLocal(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient) (*success, error) {
	u, err := o.st.UserByAddress(ctx, r.Recipient)
	if errors.Is(err, store.ErrNotFound) {
		return nil, permanent("5.1.1", "no such user here: %s", r.Recipient)
	}
	if err != nil {
		return nil, temporary("%v", err)
	}
	key, err := keyring.ReadKey(u.PublicKey)
	if err != nil {
		return nil, temporary("key of %s: %v", u.Address, err)
	}
	h, err := o.header(ctx, m, r, &keyPair{entity: key, fingerprint: u.Fingerprint})
	if err != nil {
		return nil, temporary("%v", err)
	}
	now := o.now()
	id := fmt.Sprintf("L%d.%d", m.ID, r.ID)
	trace := fmt.Appendf(nil, "Received: from [%s] by %s with tollbridge (local) id %s;\r\n\t%s\r\n",
		m.ClientIP, o.cfg.Hostname, id, now.UTC().Format(time.RFC1123Z))
	nm := &store.NewMessage{UserID: u.ID, Header: h, Source: store.SourceLocal, Trace: trace, Received: now, Blobs: m.Blobs}
	return &success{route: "local", remoteID: id, local: nm}, nil
}
