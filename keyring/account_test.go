package keyring

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/internal/gpgtest"
)

// TestRecoveryCode: 8 groups of 4 symbols of Crockford's base32, typed
// back in any case, with or without dashes, look-alikes read as digits.
func TestRecoveryCode(t *testing.T) {
	t.Parallel()
	code := NewRecoveryCode()
	if len(code) != 39 || strings.Count(code, "-") != 7 {
		t.Fatalf("code %q is not 8 groups of 4", code)
	}
	if NewRecoveryCode() == code {
		t.Fatal("two codes are equal")
	}
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	if n, err := NormalizeRecoveryCode(typed); err != nil || n != code {
		t.Fatalf("typed %q normalises to %q, %v; want %q", typed, n, err, code)
	}
	if n, _ := NormalizeRecoveryCode(strings.Repeat("OIL0", 8)); !strings.HasPrefix(n, "0110-") {
		t.Fatalf("look-alikes: %q", n)
	}
	for _, bad := range []string{"", code[:38], code + "A", strings.Replace(code, code[:1], "U", 1)} {
		if _, err := NormalizeRecoveryCode(bad); !errors.Is(err, ErrBadRecoveryCode) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

// TestRecoveryWrapsSameKey: the recovery wrapping unlocks the very key the
// password does, and neither secret opens the other's wrapping.
func TestRecoveryWrapsSameKey(t *testing.T) {
	t.Parallel()
	k, e, err := Generate("dora@example.com", []byte("pw"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	code := NewRecoveryCode()
	rec, err := Protect(e, []byte(code), cheap)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unlock(rec, []byte(code))
	if err != nil || Fingerprint(got) != k.Fingerprint {
		t.Fatalf("recovery unlock: %v", err)
	}
	d1, _ := DataKey(e)
	d2, _ := DataKey(got)
	if d1 != d2 {
		t.Fatal("the recovered key derives another metadata key")
	}
	if _, err := Unlock(rec, []byte("pw")); !errors.Is(err, ErrBadPassword) {
		t.Fatal("the password opens the recovery wrapping")
	}
}

// TestRotateKeepsOldKeys: the rotated key is a transition peers follow
// (Certified by the old key), the old key is sealed to the new one and
// comes back unlocked, and the metadata key stays the first key's.
func TestRotateKeepsOldKeys(t *testing.T) {
	t.Parallel()
	first, e1, err := Generate("erin@example.com", []byte("pw"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	_, e2, err := Rotate(e1, "erin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	pub2, _ := PublicBytes(e2)
	next, _ := ReadKey(pub2)
	old, _ := ReadKey(first.Public)
	if !Certified(next, old, "erin@example.com", time.Now()) {
		t.Fatal("the rotated key is not certified by the old one")
	}
	sealed, err := SealRetired(e2, []*openpgp.Entity{e1})
	if err != nil {
		t.Fatal(err)
	}
	priv2, err := Protect(e2, []byte("pw"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	u := NewUnlocker(1)
	k, release, err := u.AcquireUser(context.Background(), "", "erin@example.com", priv2, sealed, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if k.KeyFor(first.Fingerprint) == nil || k.KeyFor(Fingerprint(e2)) == nil {
		t.Fatal("KeyFor misses the old or the new key")
	}
	if dk, _ := DataKey(e1); dk != k.DataKey {
		t.Fatal("the metadata key changed with the rotation")
	}
	// Sealed to e2, the retired keys do not open with another key.
	if _, err := OpenRetired(e1, sealed); err == nil {
		t.Fatal("retired keys opened with a key they were not sealed to")
	}
}

// TestUnlockerForgetsOldPassword: while a session holds the key, a login
// with the old password after the stored key was re-protected (passwd in
// another process) is not served from the cache: it costs a derivation
// against the new wrapping and fails; the new password works.
func TestUnlockerForgetsOldPassword(t *testing.T) {
	t.Parallel()
	k, e, err := Generate("finn@example.com", []byte("old"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	u := NewUnlocker(1)
	ctx := context.Background()
	_, release, err := u.AcquireFrom(ctx, "", "finn@example.com", k.Private, []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	renewed, err := Protect(e, []byte("new"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.AcquireFrom(ctx, "", "finn@example.com", renewed, []byte("old")); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("old password after passwd: %v, want ErrBadPassword", err)
	}
	_, r2, err := u.AcquireFrom(ctx, "", "finn@example.com", renewed, []byte("new"))
	if err != nil {
		t.Fatalf("new password: %v", err)
	}
	r2()
}

// TestGnuPGChecksRotate: GnuPG verifies the certification Rotate makes,
// with the old key imported (docs/protocol.md §3.1.4).
func TestGnuPGChecksRotate(t *testing.T) {
	t.Parallel()
	g := gpgtest.New(t)
	_, old, err := Generate("gina@example.com", []byte("x"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	g.ImportPublic(old)
	k, _, err := Rotate(old, "gina@example.com")
	if err != nil {
		t.Fatal(err)
	}
	g.MustRun(k.Public, "--import")
	out, _ := g.MustRun(nil, "--with-colons", "--check-sigs", k.Fingerprint)
	oldID := strings.ToUpper(Fingerprint(old)[24:])
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "sig:!::") && strings.Contains(line, oldID) {
			return
		}
	}
	t.Fatalf("gpg finds no good certification by the old key %s:\n%s", oldID, out)
}
