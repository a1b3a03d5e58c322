package outbox

import (
	"context"
	"errors"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/store"
)

// subscriptionID is the subscription_id of a ticket request
// (docs/protocol.md §3.2.1). Mail from a local user to a list's
// -subscribe address carries the id this bridge mints for that
// subscription (the offer); to its -unsubscribe address it revokes the id
// and carries none. Other mail carries the id the sender (a list) holds
// for the recipient, if any. Mail from no local user (bounces) carries none.
func (o *Outbox) subscriptionID(ctx context.Context, m *store.OutboxMessage, r *store.OutboxRecipient) (string, error) {
	u, err := o.st.UserByAddress(ctx, m.Sender)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	local, domain := keyring.SplitAddress(r.Recipient)
	list, subscribe, ok := protocol.ListAction(local)
	if !ok {
		return o.st.HeldSubscription(ctx, u.ID, hashOf(r.Recipient), domain)
	}
	listAddr := list + "@" + domain
	if !subscribe {
		n, err := o.st.Unsubscribe(ctx, u.ID, hashOf(listAddr))
		if n > 0 {
			o.log.Info("unsubscribed", "user", u.Address, "list", listAddr)
		}
		return "", err
	}
	id, err := o.st.Subscribe(ctx, u.ID, listAddr, hashOf(listAddr))
	if err == nil {
		o.log.Info("subscribed", "user", u.Address, "list", listAddr)
	}
	return id, err
}
