package keyring

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Unlocked is a local user's decrypted key, shared by every open session
// of that user.
type Unlocked struct {
	Address string
	Entity  *openpgp.Entity
	DataKey [32]byte // see DataKey
}

// Unlocker keeps users' keys decrypted in memory while at least one of
// their sessions (IMAP or SMTP) is open, and drops them when the last one
// closes. The first login of a user pays for the memory-hard key
// derivation; later logins while the key is held are checked against an
// in-memory verifier of the password instead.
type Unlocker struct {
	mu    sync.Mutex
	users map[string]*held
	slots chan struct{} // bounds concurrent Argon2 derivations (64 MiB each)
}

type held struct {
	key      *Unlocked
	salt     [16]byte
	verifier [32]byte
	refs     int
}

// NewUnlocker returns an Unlocker that runs at most concurrent key
// derivations at once (at least 1).
func NewUnlocker(concurrent int) *Unlocker {
	return &Unlocker{users: map[string]*held{}, slots: make(chan struct{}, max(concurrent, 1))}
}

func verify(salt [16]byte, password []byte) [32]byte {
	return sha256.Sum256(append(salt[:], password...))
}

// Acquire checks password for the user whose protected secret key is
// private and returns the unlocked key and a release function to call
// exactly once when the session ends. A wrong password is ErrBadPassword.
func (u *Unlocker) Acquire(ctx context.Context, address string, private, password []byte) (*Unlocked, func(), error) {
	if k, release, ok, err := u.fromCache(address, password); ok || err != nil {
		return k, release, err
	}
	select {
	case u.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	e, err := Unlock(private, password)
	<-u.slots
	if err != nil {
		return nil, nil, err
	}
	dk, err := DataKey(e)
	if err != nil {
		return nil, nil, fmt.Errorf("unlock %s: %w", address, err)
	}
	h := &held{key: &Unlocked{Address: address, Entity: e, DataKey: dk}}
	rand.Read(h.salt[:])
	h.verifier = verify(h.salt, password)

	u.mu.Lock()
	if cur, ok := u.users[address]; ok {
		h = cur // another login won the race; share its key
	} else {
		u.users[address] = h
	}
	h.refs++
	u.mu.Unlock()
	return h.key, u.releaser(address, h), nil
}

func (u *Unlocker) fromCache(address string, password []byte) (*Unlocked, func(), bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.users[address]
	if !ok {
		return nil, nil, false, nil
	}
	v := verify(h.salt, password)
	if subtle.ConstantTimeCompare(v[:], h.verifier[:]) != 1 {
		return nil, nil, false, ErrBadPassword
	}
	h.refs++
	return h.key, u.releaser(address, h), true, nil
}

func (u *Unlocker) releaser(address string, h *held) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			h.refs--
			if h.refs == 0 && u.users[address] == h {
				delete(u.users, address)
			}
		})
	}
}

// Get returns a user's key if one of their sessions holds it unlocked, for
// work done on the user's behalf while they are online (filing new mail).
// The caller must not keep it beyond the call's purpose.
func (u *Unlocker) Get(address string) (*Unlocked, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.users[address]
	if !ok {
		return nil, false
	}
	return h.key, true
}
