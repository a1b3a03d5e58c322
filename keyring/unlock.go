package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Unlocked is a local user's decrypted key, shared by every open session
// of that user.
type Unlocked struct {
	Address string
	Entity  *openpgp.Entity   // the current key: signs, and opens new mail
	Retired []*openpgp.Entity // rotated-out keys, oldest first: open older mail
	DataKey [32]byte          // see DataKey; derived from the first key
}

// KeyFor returns the user's key whose primary fingerprint is fp (a stored
// header's key_fingerprint), current or retired, or nil.
func (k *Unlocked) KeyFor(fp string) *openpgp.Entity {
	return keyFor(fp, append([]*openpgp.Entity{k.Entity}, k.Retired...)...)
}

// Unlocker keeps users' keys decrypted in memory while at least one of
// their sessions (IMAP or SMTP) is open, and drops them when the last one
// closes. The first login of a user pays for the memory-hard key
// derivation; later logins while the key is held are checked against an
// in-memory verifier of the password instead.
//
// Derivations (Argon2, 64 MiB each by default) run in a few slots shared
// fairly between clients: see slots. Concurrent attempts with the same
// user and password share one derivation.
type Unlocker struct {
	// Protection is what local users' keys are protected with (the zero
	// value: the defaults, as `bridge user add` uses). An attempt for an
	// unknown user is checked against a decoy key protected the same way,
	// so it costs what a wrong password for a real user costs. Set it
	// before first use.
	Protection Protection
	// Idle, when set, is called in a goroutine of its own each time the
	// last running derivation ends with none waiting. Each derivation
	// allocates its Argon2 memory (64 MiB by default) afresh, and a
	// garbage collection that runs meanwhile sets the next heap goal at
	// twice that, so without help the process keeps ~130 MiB long after
	// a login. cmd/bridge sets debug.FreeOSMemory: one collection of a
	// small live heap, and the memory goes back to the system at once.
	// Set it before first use.
	Idle func()

	mu      sync.Mutex
	users   map[string]*held
	flights map[[32]byte]*flight
	secret  [32]byte // keys flights, so no password is kept as such
	decoy   []byte
	sched   *slots
	derives atomic.Int64 // derivations run, decoys included
	// unlock runs one derivation; tests count calls through it.
	unlock func(private, password []byte) (*openpgp.Entity, error)
	// flightEnded, when set (tests), runs when a derivation's flight has
	// ended, before its caller returns.
	flightEnded func()
}

type held struct {
	key      *Unlocked
	secret   [32]byte // hash of the stored keys it was unlocked from
	salt     [16]byte
	verifier [32]byte
	refs     int
}

// flight is one derivation that concurrent identical attempts wait for.
// It lives only while the derivation runs: nothing, right or wrong, is
// remembered from it afterwards but the held key.
type flight struct {
	done    chan struct{}
	waiters int // attempts waiting for it besides its own
	k       *Unlocked
	err     error
}

// NewUnlocker returns an Unlocker that runs at most concurrent key
// derivations at once (at least 1).
func NewUnlocker(concurrent int) *Unlocker {
	u := &Unlocker{
		users: map[string]*held{}, flights: map[[32]byte]*flight{},
		sched: newSlots(concurrent), unlock: Unlock,
	}
	rand.Read(u.secret[:])
	return u
}

func verify(salt [16]byte, password []byte) [32]byte {
	return sha256.Sum256(append(salt[:], password...))
}

// Acquire is AcquireFrom for a caller without a client address (tools);
// all such callers share one place in the derivation queue.
func (u *Unlocker) Acquire(ctx context.Context, address string, private, password []byte) (*Unlocked, func(), error) {
	return u.AcquireFrom(ctx, "", address, private, password)
}

// AcquireFrom is AcquireUser for a user whose key never rotated.
func (u *Unlocker) AcquireFrom(ctx context.Context, client, address string, private, password []byte) (*Unlocked, func(), error) {
	return u.AcquireUser(ctx, client, address, private, nil, password)
}

// AcquireUser checks password for the user whose protected secret key is
// private (and whose rotated-out keys, sealed to it, are retired), on
// behalf of the client at IP address client, and returns the unlocked keys
// and a release function to call exactly once when the session ends. A
// wrong password is ErrBadPassword. A nil private means there is no such
// user: the attempt then costs one derivation against a decoy key, as a
// wrong password does, and fails with ErrBadPassword.
//
// A password is only ever checked against the keys as stored now: after
// `bridge user passwd` (private changed) the held key's verifier no
// longer applies, and the old password costs a derivation and fails.
func (u *Unlocker) AcquireUser(ctx context.Context, client, address string, private, retired, password []byte) (*Unlocked, func(), error) {
	client = guardKey(client)
	sk := secretHash(private, retired)
	// A flight ended by its own caller's ctx is retried by the others.
	for range 3 {
		if private != nil {
			if k, release, ok := u.fromCache(address, sk, password); ok {
				u.sched.succeeded(client)
				return k, release, nil
			}
		}
		k, release, err := u.derived(ctx, client, address, sk, private, retired, password)
		if isCanceled(err) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		u.sched.succeeded(client)
		return k, release, nil
	}
	return nil, nil, fmt.Errorf("unlock %s: derivation canceled repeatedly", address)
}

// secretHash identifies the stored keys a held key came from.
func secretHash(private, retired []byte) [32]byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(private))))
	h.Write(private)
	h.Write(retired)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fromCache accepts a password matching the held key's verifier. Any
// other password goes on to a derivation, so that a wrong password for a
// user who is online costs what it costs for anyone else.
func (u *Unlocker) fromCache(address string, sk [32]byte, password []byte) (*Unlocked, func(), bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.users[address]
	if !ok || h.secret != sk {
		return nil, nil, false
	}
	v := verify(h.salt, password)
	if subtle.ConstantTimeCompare(v[:], h.verifier[:]) != 1 {
		return nil, nil, false
	}
	h.refs++
	return h.key, u.releaser(address, h), true
}

// hold registers an unlocked key, or shares the one another login
// registered first from the same stored keys. One held from keys since
// changed (a new password, a rotated key) is replaced: its sessions keep
// it until they end, but no login is checked against it any more.
func (u *Unlocker) hold(address string, k *Unlocked, sk [32]byte, password []byte) (*Unlocked, func()) {
	h := &held{key: k, secret: sk}
	rand.Read(h.salt[:])
	h.verifier = verify(h.salt, password)
	u.mu.Lock()
	defer u.mu.Unlock()
	if cur, ok := u.users[address]; ok && cur.secret == sk {
		h = cur
	} else {
		u.users[address] = h
	}
	h.refs++
	return h.key, u.releaser(address, h)
}

// derived runs the derivation for (address, private, password), or waits
// for the identical one already running, and holds the key it unlocked.
func (u *Unlocker) derived(ctx context.Context, client, address string, sk [32]byte, private, retired, password []byte) (*Unlocked, func(), error) {
	fk := u.flightKey(address, sk, password)
	u.mu.Lock()
	if f, ok := u.flights[fk]; ok {
		f.waiters++
		u.mu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return nil, nil, f.err
			}
			k, release := u.hold(address, f.k, sk, password)
			return k, release, nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	u.flights[fk] = f
	u.mu.Unlock()

	f.k, f.err = u.derive(ctx, client, address, private, retired, password)
	var k *Unlocked
	var release func()
	if f.err == nil {
		// Held before the flight ends: an identical attempt arriving in
		// between finds the key instead of deriving again.
		k, release = u.hold(address, f.k, sk, password)
	}
	u.mu.Lock()
	delete(u.flights, fk)
	u.mu.Unlock()
	close(f.done)
	if u.flightEnded != nil {
		u.flightEnded()
	}
	return k, release, f.err
}

// flightKey is a keyed hash of the attempt: the password is never a map
// key, and a changed private key (new password) is a different flight.
func (u *Unlocker) flightKey(address string, pk [32]byte, password []byte) [32]byte {
	m := hmac.New(sha256.New, u.secret[:])
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(address))))
	m.Write([]byte(address))
	m.Write(pk[:])
	m.Write(password)
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// derive waits for a slot, then runs one derivation.
func (u *Unlocker) derive(ctx context.Context, client, address string, private, retired, password []byte) (*Unlocked, error) {
	done, err := u.sched.acquire(ctx, client)
	if err != nil {
		return nil, err
	}
	defer func() {
		if done() && u.Idle != nil {
			go u.Idle()
		}
	}()
	u.derives.Add(1)
	if private == nil {
		return nil, u.decoyAttempt(password)
	}
	e, err := u.unlock(private, password)
	if err != nil {
		return nil, err
	}
	old, err := OpenRetired(e, retired)
	if err != nil {
		return nil, fmt.Errorf("unlock %s: %w", address, err)
	}
	dk, err := DataKey(firstKey(e, old))
	if err != nil {
		return nil, fmt.Errorf("unlock %s: %w", address, err)
	}
	return &Unlocked{Address: address, Entity: e, Retired: old, DataKey: dk}, nil
}

// decoyAttempt checks password against the decoy key, made on first use
// with a random password, and always fails.
func (u *Unlocker) decoyAttempt(password []byte) error {
	u.mu.Lock()
	decoy := u.decoy
	u.mu.Unlock()
	if decoy == nil {
		var pw [32]byte
		rand.Read(pw[:])
		k, _, err := Generate("decoy@invalid.invalid", pw[:], u.Protection)
		if err != nil {
			return fmt.Errorf("decoy key: %w", err)
		}
		u.mu.Lock()
		if u.decoy == nil {
			u.decoy = k.Private
		}
		decoy = u.decoy
		u.mu.Unlock()
	}
	if _, err := u.unlock(decoy, password); err != nil && !errors.Is(err, ErrBadPassword) {
		return err
	}
	return ErrBadPassword
}

// Derivations is how many key derivations (memory-hard password checks,
// decoys included) have run, for metrics and tests.
func (u *Unlocker) Derivations() int64 { return u.derives.Load() }

// Queued is how many key derivations wait for a slot, for metrics.
func (u *Unlocker) Queued() int { return u.sched.queued() }

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
