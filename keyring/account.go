package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// recoveryAlphabet is Crockford's base32: digits and capitals without I,
// L, O and U, so a code read aloud or copied by hand has no look-alikes.
const recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// recoveryGroups and recoveryGroupLen make a code of 8 groups of 4
// symbols: 32 symbols of 5 bits, 160 bits of entropy.
const (
	recoveryGroups   = 8
	recoveryGroupLen = 4
)

// ErrBadRecoveryCode is returned when a recovery code does not unlock a key
// or is not shaped like one.
var ErrBadRecoveryCode = errors.New("wrong recovery code")

// NewRecoveryCode returns a fresh one-time recovery code, 8 groups of 4
// symbols of Crockford's base32 joined by "-" (160 random bits).
func NewRecoveryCode() string {
	var raw [recoveryGroups * recoveryGroupLen]byte
	rand.Read(raw[:])
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%recoveryGroupLen == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(recoveryAlphabet[c&31])
	}
	return b.String()
}

// NormalizeRecoveryCode returns the canonical form of a typed recovery
// code: case, spaces and dashes do not matter, and O, I and L read as 0, 1
// and 1, as Crockford's base32 does.
func NormalizeRecoveryCode(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if r > 0x7f || !strings.ContainsRune(recoveryAlphabet, r) {
			return "", fmt.Errorf("%w: %q is not in the code's alphabet", ErrBadRecoveryCode, r)
		}
		if b.Len() > 0 && b.Len()%(recoveryGroupLen+1) == recoveryGroupLen {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryGroups*(recoveryGroupLen+1)-1 {
		return "", fmt.Errorf("%w: want %d groups of %d symbols", ErrBadRecoveryCode, recoveryGroups, recoveryGroupLen)
	}
	return b.String(), nil
}

// Protect returns the binary secret key of the unlocked entity e, protected
// with secret (a password or a recovery code) the way Generate protects it.
// e itself stays unlocked.
func Protect(e *openpgp.Entity, secret []byte, prot Protection) ([]byte, error) {
	if len(secret) == 0 {
		return nil, errors.New("protect key: empty password")
	}
	locked, err := ReadKey(mustSerializePrivate(e))
	if err != nil {
		return nil, err
	}
	if err := locked.EncryptPrivateKeys(secret, prot.config()); err != nil {
		return nil, fmt.Errorf("protect key %s: %w", Fingerprint(e), err)
	}
	var b bytes.Buffer
	if err := locked.SerializePrivateWithoutSigning(&b, nil); err != nil {
		return nil, fmt.Errorf("protect key %s: %w", Fingerprint(e), err)
	}
	return b.Bytes(), nil
}

// Rotate makes the successor of a user's unlocked key old for address
// (docs/protocol.md §3.1.4): a new key of the same profile whose user ID
// carries a certification by old's primary key, so that peers that pinned
// old follow the change without an admin.
func Rotate(old *openpgp.Entity, address string) (*UserKey, *openpgp.Entity, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, nil, err
	}
	e, err := newEntity(addr)
	if err != nil {
		return nil, nil, err
	}
	cfg := keyConfig(time.Now())
	for name := range e.Identities {
		if err := e.SignIdentity(name, old, cfg); err != nil {
			return nil, nil, fmt.Errorf("key %s: certify with %s: %w", addr, Fingerprint(old), err)
		}
	}
	pub, err := PublicBytes(e)
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", addr, err)
	}
	return &UserKey{Address: addr, Fingerprint: Fingerprint(e), Public: pub}, e, nil
}

// retiredInfo labels the key that seals a user's retired keys.
const retiredInfo = "tollbridge retired keys v1"

// SealRetired seals a user's rotated-out keys (oldest first, unlocked)
// under a key derived from the current unlocked key, so whatever unlocks
// the current key (the password or the recovery code) opens them too, at
// the cost of one memory-hard derivation however often the key rotated.
// No retired keys is an empty result.
func SealRetired(current *openpgp.Entity, retired []*openpgp.Entity) ([]byte, error) {
	if len(retired) == 0 {
		return nil, nil
	}
	var plain bytes.Buffer
	for _, r := range retired {
		plain.Write(mustSerializePrivate(r))
	}
	aead, err := retiredAEAD(current)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain.Bytes(), current.PrimaryKey.Fingerprint), nil
}

// OpenRetired opens what SealRetired sealed with the same current key.
func OpenRetired(current *openpgp.Entity, sealed []byte) ([]*openpgp.Entity, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	aead, err := retiredAEAD(current)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("retired keys: truncated")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], current.PrimaryKey.Fingerprint)
	if err != nil {
		return nil, fmt.Errorf("retired keys: %w", err)
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(plain))
	if err != nil {
		return nil, fmt.Errorf("retired keys: %w", err)
	}
	return el, nil
}

func retiredAEAD(current *openpgp.Entity) (cipher.AEAD, error) {
	if current.PrivateKey == nil || current.PrivateKey.Encrypted {
		return nil, errors.New("retired keys: current key is locked")
	}
	var secret bytes.Buffer
	if err := current.PrivateKey.Serialize(&secret); err != nil {
		return nil, fmt.Errorf("retired keys: %w", err)
	}
	k, err := hkdf.Key(sha256.New, secret.Bytes(), nil, retiredInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("retired keys: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// UnlockAll unlocks a user's current key with secret (password or recovery
// code) and opens the retired keys sealed to it.
func UnlockAll(private, retired, secret []byte) (*openpgp.Entity, []*openpgp.Entity, error) {
	e, err := Unlock(private, secret)
	if err != nil {
		return nil, nil, err
	}
	old, err := OpenRetired(e, retired)
	if err != nil {
		return nil, nil, err
	}
	return e, old, nil
}

// firstKey is the key a user's metadata key derives from: the oldest one,
// so that caches built before a rotation stay readable after it.
func firstKey(current *openpgp.Entity, retired []*openpgp.Entity) *openpgp.Entity {
	if len(retired) > 0 {
		return retired[0]
	}
	return current
}

// keyFor returns whichever of keys has the primary fingerprint fp.
func keyFor(fp string, keys ...*openpgp.Entity) *openpgp.Entity {
	for _, k := range keys {
		if k != nil && Fingerprint(k) == fp {
			return k
		}
	}
	return nil
}
