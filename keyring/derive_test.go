package keyring

import (
	"runtime"
	"testing"
)

// TestUnlockDerivesOnce: unlocking a key (primary and encryption subkey,
// protected together) runs Argon2 once, not once per key: it allocates
// Argon2's memory once. Not parallel, so that the allocation count is
// this test's.
func TestUnlockDerivesOnce(t *testing.T) {
	prot := Protection{MemoryKiB: 32 << 10, Passes: 1}
	k, _, err := Generate("bob@example.net", []byte("pw"), prot)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Unlock(k.Private, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	argon := uint64(prot.MemoryKiB) << 10
	if got := after.TotalAlloc - before.TotalAlloc; got > argon+argon/2 {
		t.Errorf("Unlock allocated %d MiB for one %d MiB derivation", got>>20, argon>>20)
	}
}
