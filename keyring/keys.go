package keyring

import (
	"bytes"
	"crypto"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// ErrBadPassword is returned when a password does not unlock a key.
var ErrBadPassword = errors.New("wrong password")

// Protection sets how private keys are protected at rest: Argon2 (RFC 9106,
// memory-hard) S2K with AEAD, as go-crypto requires for Argon2.
type Protection struct {
	// MemoryKiB is Argon2's memory cost; 0 means 64 MiB.
	MemoryKiB uint32
	// Passes is Argon2's time cost; 0 means 3.
	Passes uint8
}

func (p Protection) config() *packet.Config {
	return &packet.Config{
		DefaultCipher: packet.CipherAES256,
		AEADConfig:    &packet.AEADConfig{DefaultMode: packet.AEADModeOCB},
		S2KConfig: &s2k.Config{
			S2KMode:      s2k.Argon2S2K,
			Argon2Config: &s2k.Argon2Config{NumberOfPasses: p.Passes, DegreeOfParallelism: 2, Memory: p.MemoryKiB},
		},
	}
}

// keyConfig is what every generated key uses: v4, EdDSA (Ed25519, legacy
// algorithm 22) primary with an ECDH Curve25519 encryption subkey, so that
// GnuPG 2.2 can use it; SHA-256 and AES-256 preferred; no AEAD features.
func keyConfig(now time.Time) *packet.Config {
	return &packet.Config{
		Algorithm:     packet.PubKeyAlgoEdDSA,
		Curve:         packet.Curve25519,
		DefaultHash:   crypto.SHA256,
		DefaultCipher: packet.CipherAES256,
		Time:          func() time.Time { return now },
	}
}

// UserKey is a newly generated local user's key, ready to store.
type UserKey struct {
	Address     string // normalised
	Fingerprint string // primary key v4 fingerprint, lowercase hex
	Public      []byte // binary transferable public key
	Private     []byte // binary secret key, protected by the password
}

// Generate creates the key of a local user and protects its private part
// with password. The returned entity is unlocked, for immediate use.
func Generate(address string, password []byte, prot Protection) (*UserKey, *openpgp.Entity, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, nil, err
	}
	if len(password) == 0 {
		return nil, nil, errors.New("empty password")
	}
	e, err := newEntity(addr)
	if err != nil {
		return nil, nil, err
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", addr, err)
	}
	locked, err := ReadKey(mustSerializePrivate(e))
	if err != nil {
		return nil, nil, err
	}
	if err := locked.EncryptPrivateKeys(password, prot.config()); err != nil {
		return nil, nil, fmt.Errorf("key %s: protect: %w", addr, err)
	}
	var priv bytes.Buffer
	if err := locked.SerializePrivateWithoutSigning(&priv, nil); err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", addr, err)
	}
	return &UserKey{Address: addr, Fingerprint: Fingerprint(e), Public: pub.Bytes(), Private: priv.Bytes()}, e, nil
}

func newEntity(addr string) (*openpgp.Entity, error) {
	e, err := openpgp.NewEntity("", "", addr, keyConfig(time.Now()))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", addr, err)
	}
	return e, nil
}

func mustSerializePrivate(e *openpgp.Entity) []byte {
	var b bytes.Buffer
	if err := e.SerializePrivateWithoutSigning(&b, nil); err != nil {
		// Only fails for encrypted or dummy keys; e was generated here.
		panic(fmt.Sprintf("keyring: serialising a fresh key: %v", err))
	}
	return b.Bytes()
}

// ReadKey parses one binary transferable public or secret key.
func ReadKey(b []byte) (*openpgp.Entity, error) {
	e, err := openpgp.ReadEntity(packet.NewReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return e, nil
}

// Unlock parses a protected secret key and decrypts it with password.
func Unlock(private, password []byte) (*openpgp.Entity, error) {
	e, err := ReadKey(private)
	if err != nil {
		return nil, err
	}
	if err := e.DecryptPrivateKeys(password); err != nil {
		return nil, ErrBadPassword
	}
	return e, nil
}

// Fingerprint is the primary key's v4 fingerprint in lowercase hex.
func Fingerprint(e *openpgp.Entity) string {
	return hex.EncodeToString(e.PrimaryKey.Fingerprint)
}

// ArmorPublic armors a binary public key for `bridge user export-key`.
func ArmorPublic(public []byte) (string, error) {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return "", err
	}
	w.Write(public)
	if err := w.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// SerializeUnprotected writes an unlocked entity's secret key without
// protection, e.g. for `gpg --import` in tests.
func SerializeUnprotected(e *openpgp.Entity) []byte { return mustSerializePrivate(e) }

// DataKey derives the user's 32-byte metadata key from the unlocked secret
// key: only someone holding the key can compute it, and it never needs
// storing.
func DataKey(e *openpgp.Entity) ([32]byte, error) {
	var k [32]byte
	if e.PrivateKey == nil || e.PrivateKey.Encrypted {
		return k, errors.New("data key: private key is locked")
	}
	var secret bytes.Buffer
	if err := e.PrivateKey.Serialize(&secret); err != nil {
		return k, fmt.Errorf("data key: %w", err)
	}
	out, err := hkdf.Key(sha256.New, secret.Bytes(), nil, "tollbridge metadata key v1", 32)
	if err != nil {
		return k, fmt.Errorf("data key: %w", err)
	}
	copy(k[:], out)
	return k, nil
}

// LoadOrCreateServiceKey returns the bridge's own unprotected key stored at
// path (mode 0600), creating it for address if it does not exist yet. The
// outbox key and the receipt key are service keys.
func LoadOrCreateServiceKey(path, address string) (*openpgp.Entity, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ReadKey(b)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("service key %s: %w", path, err)
	}
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	e, err := newEntity(addr)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("service key %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, mustSerializePrivate(e), 0o600); err != nil {
		return nil, fmt.Errorf("service key %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("service key %s: %w", path, err)
	}
	return e, nil
}

// HasAddress reports whether one of e's user ids names address.
func HasAddress(e *openpgp.Entity, address string) bool {
	for _, id := range e.Identities {
		if id.UserId == nil {
			continue
		}
		if n, err := NormalizeAddress(id.UserId.Email); err == nil && n == address {
			return true
		}
		if strings.EqualFold(id.UserId.Id, address) {
			return true
		}
	}
	return false
}

// PublicBytes serialises e's public key.
func PublicBytes(e *openpgp.Entity) ([]byte, error) {
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
