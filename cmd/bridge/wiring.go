package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/intake"
	"tollbridge/keyring"
	"tollbridge/store"
	"tollbridge/ticketclient"
	"tollbridge/translate"
)

// plaintext lets the outbox rebuild queued messages (translate), for the
// legacy relay and for the headers quoted in bounces.
type plaintext struct{}

func (plaintext) Render(w io.Writer, catalog []byte, part func(string) (io.ReadCloser, error)) error {
	c, err := translate.ParseCatalog(catalog)
	if err != nil {
		return err
	}
	return translate.Join(w, c, partFunc(part))
}

func (plaintext) Headers(catalog []byte) ([]byte, error) {
	c, err := translate.ParseCatalog(catalog)
	if err != nil {
		return nil, err
	}
	return c.MIME.Header.Bytes, nil
}

type partFunc func(string) (io.ReadCloser, error)

func (f partFunc) OpenPart(id string) (io.ReadCloser, error) { return f(id) }

// deliverBounce seals a bounce to the sender's key and stores it for
// their INBOX, unsigned (it shows as tollbridge=none).
func deliverBounce(st *store.Store, sealer *intake.Sealer) func(context.Context, *store.User, []byte) error {
	return func(ctx context.Context, u *store.User, raw []byte) error {
		ms, sd, err := sealer.SealFor(bytes.NewReader(raw), int64(len(raw)), "", []*store.User{u})
		if err != nil {
			return err
		}
		ms[0].Source = store.SourceDSN
		if _, err := st.DeliverMessages(ctx, ms); err != nil {
			sd.Abort()
			return err
		}
		return nil
	}
}

// senderKeys finds the public key a catalog's signature is checked with:
// a local user's from the store; a remote one's from its server's WKD,
// pinned on first use, or the pinned key when the server cannot be
// reached. Its errors say keyring.ErrNoSuchUser when the sender has no key
// to be had (imapout then files the mail as fail); others are temporary.
func (b *bridge) senderKeys(ctx context.Context, address string) (*openpgp.Entity, error) {
	addr, err := keyring.NormalizeAddress(address)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", address, keyring.ErrNoSuchUser)
	}
	_, domain := keyring.SplitAddress(addr)
	if b.cfg.IsLocalDomain(domain) {
		u, err := b.st.UserByAddress(ctx, addr)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", addr, keyring.ErrNoSuchUser)
		}
		if err != nil {
			return nil, err
		}
		return keyring.ReadKey(u.PublicKey)
	}
	// The pinned key is the one this side trusts; a changed key is only
	// used once an admin accepts it.
	if pinned, err := b.remote.Pinned(ctx, addr); err == nil {
		return pinned, nil
	}
	ep, err := b.tickets.Discover(ctx, domain)
	if errors.Is(err, ticketclient.ErrLegacy) {
		return nil, fmt.Errorf("%s: no ticket API publishes its key: %w", addr, keyring.ErrNoSuchUser)
	}
	if err != nil {
		return nil, err
	}
	return b.remote.Lookup(ctx, ep.HTTP, ep.URL, addr)
}

// signRequest signs a ticket request body with the server key of the
// sending domain (docs/protocol.md §3.7): a detached binary signature.
func (b *bridge) signRequest(domain string, body []byte) ([]byte, error) {
	key := b.serverKeys[domain]
	if key == nil {
		return nil, fmt.Errorf("no server key for %s: not a local domain", domain)
	}
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, key, bytes.NewReader(body), nil); err != nil {
		return nil, fmt.Errorf("sign ticket request for %s: %w", domain, err)
	}
	return sig.Bytes(), nil
}

// remoteServerKey is the server key of a sending domain: the key its
// ticket API's WKD serves for receipts@DOMAIN, pinned on first use like
// any key (docs/protocol.md §3.7).
func (b *bridge) remoteServerKey(ctx context.Context, domain string) (*openpgp.Entity, error) {
	addr := "receipts@" + domain
	// The pinned key is the one trusted, and needs no request per ticket.
	if pinned, err := b.remote.Pinned(ctx, addr); err == nil {
		return pinned, nil
	}
	ep, err := b.tickets.Discover(ctx, domain)
	if err != nil {
		return nil, err
	}
	return b.remote.Lookup(ctx, ep.HTTP, ep.URL, addr)
}

// freshSenderKey fetches a remote sender's key from its server even when
// one is pinned, so a key transition is followed (keyring accepts a new
// key certified by the pinned one); local users' keys come from the store.
func (b *bridge) freshSenderKey(ctx context.Context, address string) (*openpgp.Entity, error) {
	addr, err := keyring.NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	_, domain := keyring.SplitAddress(addr)
	if b.cfg.IsLocalDomain(domain) {
		return b.senderKeys(ctx, addr)
	}
	ep, err := b.tickets.Discover(ctx, domain)
	if errors.Is(err, ticketclient.ErrLegacy) {
		return nil, fmt.Errorf("%s: no ticket API publishes its key: %w", addr, keyring.ErrNoSuchUser)
	}
	if err != nil {
		return nil, err
	}
	return b.remote.Lookup(ctx, ep.HTTP, ep.URL, addr)
}

// readSecret returns the first line of a file holding a secret.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s: first line is empty", path)
	}
	return line, nil
}

// routes turns the config's routes into the ticket client's.
func (b *bridge) routes() []ticketclient.Route {
	var rs []ticketclient.Route
	for _, r := range b.cfg.Routes {
		rs = append(rs, ticketclient.Route{Domain: r.Domain, URL: r.URL, CA: r.CA})
	}
	return rs
}
