package imapout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/seal"
	"tollbridge/store"
)

// senderKeyTimeout bounds one sender key lookup (WKD at the sender's
// server); a sender whose server stalls is filed as none.
const senderKeyTimeout = 5 * time.Second

// senderKey is a looked-up sender key, cached for one filing run.
type senderKey struct {
	key        *openpgp.Entity
	err        error
	refreshed  bool  // asked the sender's server once already this run
	refreshErr error // why that asking failed, for now
}

// fileAll files every message of the user that waits for their key. Each
// message is filed in its own transaction, so a crash loses nothing and
// filing twice is harmless.
func (a *account) fileAll(ctx context.Context) error {
	a.work.Lock()
	defer a.work.Unlock()
	keys := map[string]senderKey{}
	var after int64
	for {
		ids, err := a.srv.st.UnfiledMessages(ctx, a.user.ID, after, 100)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		for _, id := range ids {
			if err := a.file(ctx, id, keys); err != nil {
				return fmt.Errorf("message %d: %w", id, err)
			}
			after = id
		}
	}
}

// file checks one message's signature and puts it in INBOX, or in Junk
// when the signature fails (docs/protocol.md §3.4). A message that cannot be opened
// goes to Junk too, marked so nobody tries to index it again; the client
// gets an error when it asks for its content.
func (a *account) file(ctx context.Context, id int64, keys map[string]senderKey) error {
	if !a.dueForFiling(id) {
		return nil
	}
	m, err := a.srv.st.SealedMessage(ctx, id)
	if err != nil || m.Filed {
		return err
	}
	verdict, metaBytes, size := seal.VerdictFail, []byte{}, int64(-1)
	o, err := a.open(ctx, m)
	if err == nil {
		verdict, err = a.verdict(ctx, m, o, keys)
	}
	if err == nil {
		var md *meta
		var sp *store.Spool
		md, sp, err = a.describe(o, a.srv.prefix(m, verdict.String()))
		if err == nil {
			sp.Close()
			size = md.Size
			if metaBytes, err = a.metas.seal(md, id); err != nil {
				return err
			}
		}
	}
	if errors.Is(err, errDeferred) {
		a.deferFiling(id)
		return nil
	}
	if err != nil {
		if !errors.Is(err, errUnreadable) {
			return err
		}
		a.srv.log.Error("imap: stored message cannot be opened", "user", a.user.Address, "message", id, "err", err)
		verdict = seal.VerdictFail
	}
	// A sender key lookup cut short by the deadline says nothing about
	// the message: leave it for the next run rather than file it as none.
	if ctx.Err() != nil {
		return ctx.Err()
	}
	box, err := a.filingMailbox(ctx, verdict)
	if err != nil {
		return err
	}
	_, err = a.srv.st.FileMessage(ctx, id, box.ID, verdict.String(), metaBytes, size)
	return err
}

// verdict is the signature result shown as tollbridge=…: checked for mail
// that came over the ticketed protocol (or from another local user); the
// stored one, or none, for legacy SMTP mail and DSNs.
func (a *account) verdict(ctx context.Context, m *store.SealedMessage, o *opened, keys map[string]senderKey) (seal.Verdict, error) {
	if m.Source != store.SourceTicket && m.Source != store.SourceLocal {
		v, _ := seal.ParseVerdict(m.Auth) // none when nothing was stored
		return v, nil
	}
	h, err := protocol.ParseHeader(m.Header)
	if err != nil {
		return seal.VerdictNone, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	return a.check(ctx, m, h, o, keys)
}

func (a *account) check(ctx context.Context, m *store.SealedMessage, h *protocol.Header, o *opened, keys map[string]senderKey) (seal.Verdict, error) {
	log := a.srv.log.With("user", a.user.Address, "message", m.ID)
	from, err := keyring.NormalizeAddress(o.cat.From)
	if err != nil || keyring.HashNormalized(from) != h.From {
		log.Warn("imap: catalog sender does not match the envelope sender", "catalog_from", o.cat.From)
		return seal.VerdictFail, nil
	}
	headerFrom := bareAddresses(get(parseFields(o.cat.MIME.Header.Bytes), "From"))
	if len(headerFrom) != 1 {
		log.Warn("imap: From: field does not name one address", "from", headerFrom)
		return seal.VerdictFail, nil
	}
	if hf, err := keyring.NormalizeAddress(headerFrom[0]); err != nil || hf != from {
		log.Warn("imap: From: field differs from the catalog sender", "from", headerFrom[0], "catalog_from", from)
		return seal.VerdictFail, nil
	}
	if !o.catalog.Signed {
		return a.unsignedVerdict(ctx, log, m, from)
	}
	k, ok := keys[from]
	if !ok {
		if a.srv.cfg.SenderKeys == nil {
			k.err = errors.New("no sender key lookup configured")
		} else {
			lctx, cancel := context.WithTimeout(ctx, senderKeyTimeout)
			k.key, k.err = a.srv.cfg.SenderKeys(lctx, from)
			cancel()
		}
		keys[from] = k
	}
	if k.err != nil || k.key == nil {
		return a.noSenderKey(log, m, from, k.err)
	}
	v, err := o.catalog.Check(openpgp.EntityList{k.key})
	if v == seal.VerdictFail {
		changed, terr := a.refreshKey(ctx, from, keys)
		if terr != nil {
			// The sender may have rotated and its server does not answer:
			// wait for it as for a key not yet had.
			return a.noSenderKey(log, m, from, terr)
		}
		if changed {
			v, err = o.catalog.Check(openpgp.EntityList{keys[from].key})
		}
	}
	if v == seal.VerdictFail {
		log.Warn("imap: signature check failed", "from", from, "err", err)
	}
	return v, nil
}

// refreshKey asks the sender's server for its key once per filing run,
// when the key at hand did not verify, and reports whether a different
// key (a followed key transition) is now at hand. Its error is a
// temporary failure to ask (the server does not answer); an answer that
// there is no such key, or a changed key nobody certified, is none.
func (a *account) refreshKey(ctx context.Context, from string, keys map[string]senderKey) (bool, error) {
	k := keys[from]
	if k.refreshed || a.srv.cfg.FreshSenderKey == nil {
		return false, k.refreshErr
	}
	lctx, cancel := context.WithTimeout(ctx, senderKeyTimeout)
	fresh, err := a.srv.cfg.FreshSenderKey(lctx, from)
	cancel()
	k.refreshed = true
	if err != nil && !errors.Is(err, keyring.ErrNoSuchUser) && !errors.Is(err, keyring.ErrKeyChanged) {
		k.refreshErr = err
	}
	changed := err == nil && fresh != nil && keyring.Fingerprint(fresh) != keyring.Fingerprint(k.key)
	if changed {
		k.key = fresh
	}
	keys[from] = k
	return changed, k.refreshErr
}

// unsignedVerdict is the verdict on unsigned mail of the ticket path
// (docs/protocol.md §3.7): fail when it came on a no-work ticket (only a
// trusted sender's signed request earns one, and such a sender signs),
// or when its sender is a local user (whose mail submission always signs)
// or has a pinned key (a sender known to sign); none otherwise.
func (a *account) unsignedVerdict(ctx context.Context, log interface{ Warn(string, ...any) }, m *store.SealedMessage, from string) (seal.Verdict, error) {
	if m.NoWork {
		log.Warn("imap: unsigned mail came on a no-work ticket", "from", from)
		return seal.VerdictFail, nil
	}
	if _, err := a.srv.st.UserByAddress(ctx, from); err == nil {
		log.Warn("imap: unsigned mail claims a local sender", "from", from)
		return seal.VerdictFail, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return seal.VerdictNone, err
	}
	if _, err := a.srv.st.PinnedKey(ctx, from); err == nil {
		log.Warn("imap: unsigned mail from a sender with a pinned key", "from", from)
		return seal.VerdictFail, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return seal.VerdictNone, err
	}
	return seal.VerdictNone, nil
}

// keyWait is how long a signed message waits, unfiled, for its sender's
// key server to answer; retryFiling is how often it is tried meanwhile.
const (
	keyWait     = 24 * time.Hour
	retryFiling = 10 * time.Minute
)

// errDeferred leaves a message unfiled for a later try.
var errDeferred = errors.New("filing deferred")

// noSenderKey is the verdict on signed mail whose sender's key cannot be
// had. Signed mail is only pass or fail (docs/protocol.md §3.4 keeps none for
// unsigned and legacy mail): a sender with no key at all is fail; a key
// server that does not answer is given keyWait to come back.
func (a *account) noSenderKey(log interface{ Warn(string, ...any) }, m *store.SealedMessage, from string, err error) (seal.Verdict, error) {
	if err == nil || errors.Is(err, keyring.ErrNoSuchUser) || errors.Is(err, keyring.ErrNoPin) {
		log.Warn("imap: signed by a sender who has no key", "from", from, "err", err)
		return seal.VerdictFail, nil
	}
	if a.srv.cfg.Now().Sub(m.Received) < keyWait {
		log.Warn("imap: sender key unavailable, filing later", "from", from, "err", err)
		return seal.VerdictNone, errDeferred
	}
	log.Warn("imap: sender key unavailable for a day", "from", from, "err", err)
	return seal.VerdictFail, nil
}

// deferFiling notes when a deferred message is tried again.
func (a *account) deferFiling(id int64) {
	a.deferMu.Lock()
	a.deferred[id] = a.srv.cfg.Now().Add(retryFiling)
	a.deferMu.Unlock()
}

// dueForFiling reports whether a message is not waiting for a retry.
func (a *account) dueForFiling(id int64) bool {
	a.deferMu.Lock()
	defer a.deferMu.Unlock()
	next, ok := a.deferred[id]
	if ok && a.srv.cfg.Now().Before(next) {
		return false
	}
	delete(a.deferred, id)
	return true
}

// filingMailbox is INBOX, or for failed signatures the user's Junk
// mailbox (by special use, then by name), created again if it was deleted.
func (a *account) filingMailbox(ctx context.Context, verdict seal.Verdict) (*store.Mailbox, error) {
	st := a.srv.st
	if verdict != seal.VerdictFail {
		return st.MailboxByName(ctx, a.user.ID, "INBOX")
	}
	if box, err := st.MailboxBySpecialUse(ctx, a.user.ID, `\Junk`); err == nil || !errors.Is(err, store.ErrNotFound) {
		return box, err
	}
	if box, err := st.MailboxByName(ctx, a.user.ID, "Junk"); err == nil || !errors.Is(err, store.ErrNotFound) {
		return box, err
	}
	box, err := st.CreateMailbox(ctx, a.user.ID, "Junk", `\Junk`)
	if errors.Is(err, store.ErrExists) {
		return st.MailboxByName(ctx, a.user.ID, "Junk")
	}
	return box, err
}

// index builds the metadata caches of messages filed without one (by a
// path that had no private key at hand); failures are logged and the
// message marked, so the client gets an error for it instead. It works in
// small batches, so a login's filing never waits long for it.
func (a *account) index(ctx context.Context) {
	var after int64
	for ctx.Err() == nil && !a.lingers() {
		more, last := a.indexBatch(ctx, after)
		if !more {
			return
		}
		after = last
	}
}

func (a *account) indexBatch(ctx context.Context, after int64) (bool, int64) {
	a.work.Lock()
	defer a.work.Unlock()
	ids, err := a.srv.st.UnindexedMessages(ctx, a.user.ID, after, 32)
	if err != nil || len(ids) == 0 {
		return false, after
	}
	var updates []store.MetaUpdate
	for _, id := range ids {
		u, err := a.buildMeta(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				a.srv.log.Warn("imap: indexing", "user", a.user.Address, "message", id, "err", err)
			}
			continue
		}
		updates = append(updates, u)
	}
	if err := a.srv.st.SetMessageMeta(ctx, updates); err != nil {
		return false, after
	}
	return true, ids[len(ids)-1]
}

// buildMeta builds the metadata cache of a filed message. A message that
// cannot be opened gets an empty cache, which marks it as unreadable.
func (a *account) buildMeta(ctx context.Context, id int64) (store.MetaUpdate, error) {
	m, err := a.srv.st.SealedMessage(ctx, id)
	if err != nil {
		return store.MetaUpdate{}, err
	}
	md, sp, err := a.build(ctx, m, m.Auth)
	if errors.Is(err, errUnreadable) {
		a.srv.log.Error("imap: stored message cannot be opened", "user", a.user.Address, "message", id, "err", err)
		return store.MetaUpdate{MessageID: id, Meta: []byte{}, Size: -1}, nil
	}
	if err != nil {
		return store.MetaUpdate{}, err
	}
	sp.Close()
	b, err := a.metas.seal(md, id)
	if err != nil {
		return store.MetaUpdate{}, err
	}
	return store.MetaUpdate{MessageID: id, Meta: b, Size: md.Size}, nil
}
