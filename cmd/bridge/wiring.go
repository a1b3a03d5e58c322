package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/smtpin"
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
func deliverBounce(st *store.Store, sealer *smtpin.Sealer) func(context.Context, *store.User, []byte) error {
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
// pinned on first use, or the pinned key when the server cannot be reached.
func (b *bridge) senderKeys(ctx context.Context, address string) (*openpgp.Entity, error) {
	addr, err := keyring.NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	_, domain := keyring.SplitAddress(addr)
	if b.cfg.IsLocalDomain(domain) {
		u, err := b.st.UserByAddress(ctx, addr)
		if err != nil {
			return nil, err
		}
		return keyring.ReadKey(u.PublicKey)
	}
	ep, err := b.tickets.Discover(ctx, domain)
	if err != nil {
		return b.remote.Pinned(ctx, addr)
	}
	k, err := b.remote.Lookup(ctx, ep.HTTP, ep.URL, addr)
	if err != nil {
		// Unreachable, or a changed key not yet accepted: the pinned key
		// is the one this side trusts.
		if pinned, perr := b.remote.Pinned(ctx, addr); perr == nil {
			return pinned, nil
		}
		return nil, err
	}
	return k, nil
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
