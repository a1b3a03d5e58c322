// Package teststore holds the one copy of the store setup tests share: a
// store in a temporary folder closed with the test, local users created
// as `bridge user add` creates them, and a key protection cheap enough
// that tests derive keys by the hundred. Package store's own tests cannot
// use it (it imports store); they use package testkit.
package teststore

import (
	"context"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/store"
)

// Cheap is a key protection for tests: one pass over 64 KiB, a tenth of
// a millisecond's derivation instead of the production cost (Argon2's
// floor is 8 KiB a lane; keys use two lanes).
var Cheap = keyring.Protection{MemoryKiB: 64, Passes: 1}

// Open opens a store in a new temporary folder with opts and closes it
// when the test ends.
func Open(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	return OpenDir(t, t.TempDir(), opts)
}

// OpenDir is Open in dir, for tests that reopen the same store.
func OpenDir(t testing.TB, dir string, opts store.Options) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// AddUser creates a local user of st with password pw and a key
// protected by Cheap, and returns the user and their unlocked key.
func AddUser(t testing.TB, st *store.Store, address, pw string) (*store.User, *openpgp.Entity) {
	t.Helper()
	k, e, err := keyring.Generate(address, []byte(pw), Cheap)
	if err != nil {
		t.Fatal(err)
	}
	local, domain := keyring.SplitAddress(k.Address)
	u := &store.User{Address: k.Address, AddressHash: keyring.HashNormalized(k.Address), WKDName: domain + "/" + keyring.WKDHash(local),
		Fingerprint: k.Fingerprint, PublicKey: k.Public, PrivateKey: k.Private}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u, e
}
