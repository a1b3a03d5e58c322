package ticketserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/store"
)

// Signed ticket requests (docs/protocol.md §3.7).
const (
	// maxClockSkew is how far a request's created may be from our clock.
	maxClockSkew = 300 * time.Second
	// replayWindow is how long a signed body is remembered: it earns trust
	// once within it.
	replayWindow = 600 * time.Second
	// serverKeyTimeout bounds fetching the sending server's key; a server
	// that does not answer in time is answered as a stranger.
	serverKeyTimeout = 5 * time.Second
	// maxSignature bounds the header's decoded signature (an Ed25519
	// signature packet is about 120 bytes, RSA-4096 about 560).
	maxSignature = 2048
)

// errUnsigned is why a request that carries no signature is not trusted.
var errUnsigned = errors.New("no " + protocol.SignatureHeader + " header")

// trust is what trusts found about a ticket request.
type trust struct {
	// valid: the request earns a no-work ticket.
	valid bool
	// checked: its signature was checked (and the body's one sighting in
	// the replay window used); authentic: the check passed.
	checked, authentic bool
	// minted: its subscription_id is one this server minted (live or not),
	// so it is a claim, never an offer (§3.2.1).
	minted bool
}

// trusts decides whether a ticket request earns a no-work ticket: the
// recipient trusts the address behind the sender hash, or subscribed to
// it under the request's subscription_id, and the request is signed by
// the server key of that address's domain, fresh and not seen before.
// Anything less is a stranger's request: never an error to the client,
// only the reason for the log.
func (s *Server) trusts(ctx context.Context, r *http.Request, body []byte, q *protocol.TicketRequest, u *store.User) (trust, error) {
	var tr trust
	addr, err := s.store.TrustedAddress(ctx, u.ID, q.Sender)
	if err != nil {
		return tr, err
	}
	if addr == "" {
		addr = s.domainAllowed(u.Address, q)
	}
	if q.SubscriptionID != "" {
		list, minted, err := s.store.MintedSubscription(ctx, q.SubscriptionID, u.ID, q.Sender)
		if err != nil {
			return tr, err
		}
		tr.minted = minted
		if addr == "" {
			addr = list
		}
	}
	if addr == "" {
		return tr, nil
	}
	tr.checked = true
	if err := s.authenticate(ctx, r.Header.Get(protocol.SignatureHeader), body, q, addr); err != nil {
		s.log.Info("ticket request not trusted", "sender", addr, "reason", err, "ip", clientIP(r))
		return tr, nil
	}
	tr.valid, tr.authentic = true, true
	return tr, nil
}

// holdOffer keeps a subscription_id that this server did not mint: the
// sending server's offer for its user (the subscriber) to ours (§3.2.1),
// honoured only on a request signed by sender_domain's server key.
func (s *Server) holdOffer(ctx context.Context, r *http.Request, body []byte, q *protocol.TicketRequest, u *store.User, tr trust) error {
	if q.SubscriptionID == "" || tr.minted || !protocol.ValidSubscriptionID(q.SubscriptionID) {
		return nil
	}
	if !tr.checked {
		err := s.authenticate(ctx, r.Header.Get(protocol.SignatureHeader), body, q, "@"+q.SenderDomain)
		if err != nil {
			s.log.Info("subscription offer ignored", "user", u.Address, "reason", err, "ip", clientIP(r))
			return nil
		}
		tr.authentic = true
	}
	if !tr.authentic {
		return nil
	}
	domain := strings.ToLower(q.SenderDomain)
	if err := s.store.HoldSubscription(ctx, u.ID, q.Sender, domain, q.SubscriptionID); err != nil {
		return err
	}
	s.log.Info("subscription offer held", "user", u.Address, "from_domain", domain)
	return nil
}

// domainAllowed returns the [[allow]] entry of the recipient's domain
// that names the request's sender: an address whose hash is the sender
// hash, or "@domain" for the domain the request says it is signed for
// (authenticate then holds it to that domain's signature). "" when none.
func (s *Server) domainAllowed(recipient string, q *protocol.TicketRequest) string {
	if s.cfg.DomainAllow == nil {
		return ""
	}
	_, domain := keyring.SplitAddress(recipient)
	for _, sender := range s.cfg.DomainAllow(domain) {
		if d, ok := strings.CutPrefix(sender, "@"); ok {
			if q.SenderDomain != "" && strings.EqualFold(d, q.SenderDomain) {
				return "@" + strings.ToLower(d)
			}
			continue
		}
		if a, err := keyring.NormalizeAddress(sender); err == nil && keyring.HashNormalized(a) == q.Sender {
			return a
		}
	}
	return ""
}

// authenticate checks a request's signature for the trusted address addr.
// The cheap checks come first; the key is fetched only for a request that
// would be trusted if signed, so a stranger cannot make this server fetch
// keys from domains of its choosing.
func (s *Server) authenticate(ctx context.Context, sigHeader string, body []byte, q *protocol.TicketRequest, addr string) error {
	if sigHeader == "" {
		return errUnsigned
	}
	if q.SenderDomain == "" || q.Created == 0 {
		return errors.New("signed request without sender_domain and created")
	}
	// The domain in the form addresses are kept in: lowercase, ASCII (IDNA).
	norm, err := keyring.NormalizeAddress("receipts@" + q.SenderDomain)
	if err != nil {
		return fmt.Errorf("sender_domain %q: %w", q.SenderDomain, err)
	}
	_, domain := keyring.SplitAddress(norm)
	if _, d := keyring.SplitAddress(addr); d != domain {
		return fmt.Errorf("sender_domain %q is not the trusted address's domain %q", domain, d)
	}
	now := s.store.Now()
	if skew := now.Sub(time.Unix(q.Created, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return fmt.Errorf("created %d is %s from this server's clock", q.Created, skew.Round(time.Second))
	}
	sig, err := decodeSignature(sigHeader)
	if err != nil {
		return err
	}
	if s.cfg.ServerKey == nil {
		return errors.New("no way to fetch server keys configured")
	}
	kctx, cancel := context.WithTimeout(ctx, serverKeyTimeout)
	key, err := s.cfg.ServerKey(kctx, domain)
	cancel()
	if err != nil {
		return fmt.Errorf("server key of %s: %w", domain, err)
	}
	if err := keyring.VerifyDetached(key, body, sig); err != nil {
		return fmt.Errorf("signature by %s's server key: %w", domain, err)
	}
	digest := sha256.Sum256(body)
	fresh, err := s.store.FirstSighting(ctx, hex.EncodeToString(digest[:]), replayWindow)
	if err != nil {
		return err
	}
	if !fresh {
		return errors.New("the same signed request was seen in the last 600 s")
	}
	return nil
}

// decodeSignature reads the header: standard base64 of one signature packet.
func decodeSignature(h string) ([]byte, error) {
	if len(h) > base64.StdEncoding.EncodedLen(maxSignature) {
		return nil, errors.New("signature too long")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(h))
	if err != nil {
		return nil, fmt.Errorf("signature: not standard base64: %w", err)
	}
	return sig, nil
}
