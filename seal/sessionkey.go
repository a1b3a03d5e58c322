package seal

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// SessionKey is the AES-256 key one message's catalog and parts are
// encrypted under. Its zero value is not usable; get one from
// [NewSessionKey], [Unwrap] or [UnwrapHeader]. It never changes, so
// one SessionKey may encrypt and decrypt several parts concurrently. It is
// only ever stored wrapped (see Wrap).
type SessionKey struct {
	key [32]byte
}

// NewSessionKey returns a fresh random session key.
func NewSessionKey() (*SessionKey, error) {
	k := new(SessionKey)
	if _, err := rand.Read(k.key[:]); err != nil {
		return nil, fmt.Errorf("seal: session key: %w", err)
	}
	return k, nil
}

// Wrap returns a PKESK version 3 packet (the whole packet, header included)
// holding k encrypted to the current encryption subkey of to: the standard
// cipher-algorithm octet (AES-256), the key and its checksum, so GnuPG 2.2
// can unwrap it. The cost does not depend on the message size.
//
// To keep a message's session key for recipients whose keys are not known
// yet, Wrap it to a key of one's own (the bridge's outbox key); later Unwrap
// it and call NewHeader per recipient.
func (k *SessionKey) Wrap(to *openpgp.Entity) ([]byte, error) {
	if to == nil || to.PrimaryKey == nil {
		return nil, fmt.Errorf("seal: wrap: no recipient key")
	}
	if to.PrimaryKey.Version != 4 {
		return nil, fmt.Errorf("seal: wrap: recipient key %X is version %d, want 4", to.PrimaryKey.Fingerprint, to.PrimaryKey.Version)
	}
	enc, ok := to.EncryptionKey(time.Now())
	if !ok {
		return nil, fmt.Errorf("seal: wrap: key %X has no valid encryption key", to.PrimaryKey.Fingerprint)
	}
	if !pkeskAlgoOK(enc.PublicKey.PubKeyAlgo) || enc.PublicKey.Version != 4 {
		return nil, fmt.Errorf("seal: wrap: encryption key %X uses algorithm %d (v%d), which GnuPG 2.2 cannot read", enc.PublicKey.Fingerprint, enc.PublicKey.PubKeyAlgo, enc.PublicKey.Version)
	}
	var buf bytes.Buffer
	if err := packet.SerializeEncryptedKeyAEAD(&buf, enc.PublicKey, packet.CipherAES256, false, k.key[:], nil); err != nil {
		return nil, fmt.Errorf("seal: wrap to %X: %w", enc.PublicKey.Fingerprint, err)
	}
	return buf.Bytes(), nil
}

// pkeskAlgoOK reports whether a public-key algorithm has the v3 PKESK form
// with the cipher octet and checksum inside the encrypted block (RSA,
// ElGamal, ECDH), which is what GnuPG 2.2 reads. Our keys use ECDH.
func pkeskAlgoOK(a packet.PublicKeyAlgorithm) bool {
	switch a {
	case packet.PubKeyAlgoECDH, packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSAEncryptOnly, packet.PubKeyAlgoElGamal:
		return true
	}
	return false
}

// parsePKESK parses exactly one PKESK version 3 packet of a supported
// algorithm.
func parsePKESK(b []byte) (*packet.EncryptedKey, error) {
	if len(b) == 0 {
		return nil, malformed("empty PKESK", nil)
	}
	if tag, ok := packetTag(b[0]); !ok || tag != tagPKESK {
		return nil, malformed(fmt.Sprintf("expected a PKESK packet (tag 1), found octet %#02x", b[0]), nil)
	}
	r := bytes.NewReader(b)
	p, err := packet.Read(r)
	if err != nil {
		return nil, malformed("PKESK packet", err)
	}
	ek, ok := p.(*packet.EncryptedKey)
	if !ok {
		return nil, malformed("not a PKESK packet", nil)
	}
	if ek.Version != 3 {
		return nil, malformed(fmt.Sprintf("PKESK version %d, want 3", ek.Version), nil)
	}
	if !pkeskAlgoOK(ek.Algo) {
		return nil, malformed(fmt.Sprintf("PKESK algorithm %d not supported", ek.Algo), nil)
	}
	if r.Len() != 0 {
		return nil, malformed("data after the PKESK packet", nil)
	}
	return ek, nil
}

// Unwrap decrypts a PKESK packet made by Wrap (or by any OpenPGP
// implementation in the same profile) with one of key's private decryption
// keys: the one whose key id the packet names, or each in turn when it names
// the wildcard key id 0. The private keys must be decrypted (unlocked).
func Unwrap(pkesk []byte, key *openpgp.Entity) (_ *SessionKey, err error) {
	defer recoverMalformed(&err, "unwrap")
	k, err := unwrap(pkesk, key)
	if err != nil {
		return nil, fmt.Errorf("seal: unwrap: %w", err)
	}
	return k, nil
}

func unwrap(pkesk []byte, key *openpgp.Entity) (*SessionKey, error) {
	ek, err := parsePKESK(pkesk)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no private key given", ErrWrongKey)
	}
	candidates := decryptionKeys(key, ek.KeyId)
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: session key is for key id %016X", ErrWrongKey, ek.KeyId)
	}
	var lastErr error
	for _, c := range candidates {
		if c.PrivateKey.Encrypted {
			lastErr = fmt.Errorf("%w: private key %016X is locked", ErrWrongKey, c.PublicKey.KeyId)
			continue
		}
		if err := ek.Decrypt(c.PrivateKey, nil); err != nil {
			if ek.KeyId == 0 {
				lastErr = fmt.Errorf("%w: %w", ErrWrongKey, err)
			} else {
				lastErr = tampered("unwrapping session key", err)
			}
			continue
		}
		if ek.CipherFunc != packet.CipherAES256 || len(ek.Key) != 32 {
			return nil, malformed(fmt.Sprintf("session key is cipher %d with %d bytes, want AES-256", ek.CipherFunc, len(ek.Key)), nil)
		}
		k := new(SessionKey)
		copy(k.key[:], ek.Key)
		return k, nil
	}
	return nil, lastErr
}

// decryptionKeys returns e's keys that have a private part, may encrypt,
// and match id (any, for the wildcard id 0).
func decryptionKeys(e *openpgp.Entity, id uint64) []openpgp.Key {
	var out []openpgp.Key
	for _, k := range (openpgp.EntityList{e}).DecryptionKeys() {
		if id == 0 || k.PublicKey.KeyId == id {
			out = append(out, k)
		}
	}
	if len(out) == 0 && id != 0 {
		// A key that encrypts with its primary key (no subkey).
		for _, k := range (openpgp.EntityList{e}).KeysByIdUsage(id, packet.KeyFlagEncryptCommunications) {
			if k.PrivateKey != nil {
				out = append(out, k)
			}
		}
	}
	return out
}
