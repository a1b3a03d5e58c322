package seal

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// keyConfig is how keyring generates users' keys: v4, EdDSA legacy
// (Ed25519) primary, ECDH Curve25519 encryption subkey.
func keyConfig() *packet.Config {
	return &packet.Config{
		Algorithm:   packet.PubKeyAlgoEdDSA,
		Curve:       packet.Curve25519,
		V6Keys:      false,
		DefaultHash: crypto.SHA256,
	}
}

func newEntity(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.org", keyConfig())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newKey(t testing.TB) *SessionKey {
	t.Helper()
	k, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pseudo returns n deterministic pseudo-random bytes.
func pseudo(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	r.Read(b)
	return b
}

// sealPart encrypts plain in one Write.
func sealPart(t testing.TB, k *SessionKey, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := k.EncryptPart(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// openPart decrypts a whole part.
func openPart(k *SessionKey, enc []byte) ([]byte, error) {
	r, err := k.DecryptPart(bytes.NewReader(enc))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func sealCatalog(t testing.TB, k *SessionKey, catalog []byte, signer *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := k.SealCatalog(&buf, catalog, signer); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// wantSealError fails unless err wraps ErrTampered or ErrMalformed.
func wantSealError(t testing.TB, err error, context string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", context)
	}
	if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("%s: error %v wraps neither ErrTampered nor ErrMalformed", context, err)
	}
}

const testCatalog = `{"version": 1, "from": "alice@example.org", "to": ["bob@example.net"], "cc": [], "subject": "Hello", "date": "2026-11-24T10:00:00Z", "message_id": "<id@example.org>", "in_reply_to": "", "references": [], "parts": [], "mime": {"header": {"text": "Subject: Hello\r\n\r\n"}, "body": []}}`

func timeNow() time.Time { return time.Now() }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
