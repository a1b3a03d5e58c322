package keyring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Errors of remote key lookup.
var (
	// ErrNoPin: nothing is pinned for the address yet.
	ErrNoPin = errors.New("no pinned key")
	// ErrKeyChanged: the directory serves a key other than the pinned one;
	// it is refused until an admin accepts it (`bridge keys accept`).
	ErrKeyChanged = errors.New("key changed since it was pinned")
	// ErrNoSuchUser: the directory answered 404 for the address.
	ErrNoSuchUser = errors.New("no such user")
)

// PinStore persists pinned keys; the store implements it through wiring.
type PinStore interface {
	// PinnedKey returns the pinned key of address, or ErrNoPin.
	PinnedKey(ctx context.Context, address string) (fingerprint string, key []byte, err error)
	// PinKey pins key if nothing is pinned and returns the pin in force.
	PinKey(ctx context.Context, address, fingerprint string, key []byte) (pinnedFingerprint string, pinnedKey []byte, err error)
	// OfferKey records a changed key for an admin to accept.
	OfferKey(ctx context.Context, address, fingerprint string, key []byte) error
	// ReplaceKey pins key in place of the pin whose fingerprint is old (a
	// key transition), failing if the pin changed meanwhile.
	ReplaceKey(ctx context.Context, address, old, fingerprint string, key []byte) error
}

// FetchError is a failed directory request other than 404: the network, a
// 5xx, or a key that does not parse. Temporary ones are worth retrying.
type FetchError struct {
	Address string
	Status  int // HTTP status, 0 for network errors
	Err     error
}

func (e *FetchError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("key of %s: HTTP %d: %v", e.Address, e.Status, e.Err)
	}
	return fmt.Sprintf("key of %s: %v", e.Address, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed.
func (e *FetchError) Temporary() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Remote looks up remote users' keys through WKD and pins them on first use.
type Remote struct {
	Pins PinStore
	// MaxKeyBytes bounds a fetched key; 0 means 64 KiB.
	MaxKeyBytes int64
}

// Pinned returns the pinned key of address without any network request.
func (r *Remote) Pinned(ctx context.Context, address string) (*openpgp.Entity, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	_, key, err := r.Pins.PinnedKey(ctx, addr)
	if err != nil {
		return nil, err
	}
	return ReadKey(key)
}

// Lookup fetches address's key from the directory at base (a ticket API
// base URL) with client and applies trust on first use: the first key seen
// is pinned; a different key later is recorded and refused with
// ErrKeyChanged.
func (r *Remote) Lookup(ctx context.Context, client *http.Client, base, address string) (*openpgp.Entity, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	raw, e, err := r.fetch(ctx, client, base, addr)
	if err != nil {
		return nil, err
	}
	fp := Fingerprint(e)
	pinnedFP, pinned, err := r.Pins.PinKey(ctx, addr, fp, raw)
	if err != nil {
		return nil, fmt.Errorf("key of %s: pin: %w", addr, err)
	}
	if pinnedFP != fp {
		if r.transition(ctx, addr, pinnedFP, pinned, e, raw) {
			return e, nil
		}
		if err := r.Pins.OfferKey(ctx, addr, fp, raw); err != nil {
			return nil, fmt.Errorf("key of %s: %w", addr, err)
		}
		return nil, fmt.Errorf("key of %s: pinned %s, directory serves %s: %w", addr, pinnedFP, fp, ErrKeyChanged)
	}
	return ReadKey(pinned)
}

// transition pins next in place of the pinned key when it is a key
// transition from it (§3.1.4), and reports whether it did.
func (r *Remote) transition(ctx context.Context, addr, pinnedFP string, pinned []byte, next *openpgp.Entity, raw []byte) bool {
	old, err := ReadKey(pinned)
	if err != nil || !Certified(next, old, addr, time.Now()) {
		return false
	}
	return r.Pins.ReplaceKey(ctx, addr, pinnedFP, Fingerprint(next), raw) == nil
}

func (r *Remote) fetch(ctx context.Context, client *http.Client, base, addr string) ([]byte, *openpgp.Entity, error) {
	u, err := WKDURL(base, addr)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, &FetchError{Address: addr, Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, &FetchError{Address: addr, Err: err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil, fmt.Errorf("key of %s: %w", addr, ErrNoSuchUser)
	case resp.StatusCode != http.StatusOK:
		return nil, nil, &FetchError{Address: addr, Status: resp.StatusCode, Err: errors.New(http.StatusText(resp.StatusCode))}
	}
	limit := r.MaxKeyBytes
	if limit == 0 {
		limit = 64 << 10
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, &FetchError{Address: addr, Err: err}
	}
	if int64(len(raw)) > limit {
		return nil, nil, &FetchError{Address: addr, Status: resp.StatusCode, Err: fmt.Errorf("key larger than %d bytes", limit)}
	}
	e, err := checkRemoteKey(raw, addr)
	if err != nil {
		return nil, nil, &FetchError{Address: addr, Status: resp.StatusCode, Err: err}
	}
	return raw, e, nil
}

// checkRemoteKey parses a directory's answer: one public key that names
// the address, or another address of its domain, and can encrypt. A
// domain's server speaks for all its addresses: for an alias or a
// subaddress it serves the key of the user the mail reaches
// (docs/protocol.md §3.1.2), which names that user. A server key (that of
// receipts@DOMAIN, §3.7) only signs: it must name that very address and
// be able to sign, not encrypt.
func checkRemoteKey(raw []byte, addr string) (*openpgp.Entity, error) {
	e, err := ReadKey(raw)
	if err != nil {
		return nil, err
	}
	if e.PrivateKey != nil {
		return nil, errors.New("directory served a secret key")
	}
	if local, _ := SplitAddress(addr); local == ReservedLocal {
		if !HasAddress(e, addr) {
			return nil, fmt.Errorf("key %s has no user id for %s", Fingerprint(e), addr)
		}
		if _, ok := e.SigningKey(time.Now()); !ok {
			return nil, fmt.Errorf("key %s cannot sign", Fingerprint(e))
		}
		return e, nil
	}
	if !HasAddress(e, addr) && !hasDomain(e, addr) {
		return nil, fmt.Errorf("key %s has no user id in the domain of %s", Fingerprint(e), addr)
	}
	if _, ok := e.EncryptionKey(time.Now()); !ok {
		return nil, fmt.Errorf("key %s cannot encrypt", Fingerprint(e))
	}
	return e, nil
}

// hasDomain reports whether one of e's user IDs is an address in the
// domain of the normalised address addr.
func hasDomain(e *openpgp.Entity, addr string) bool {
	_, domain := SplitAddress(addr)
	for _, id := range e.Identities {
		if id.UserId == nil {
			continue
		}
		if n, err := NormalizeAddress(id.UserId.Email); err == nil {
			if _, d := SplitAddress(n); d == domain {
				return true
			}
		}
	}
	return false
}
