package seal

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/protocol"
)

// NewHeader makes the header (docs/protocol.md §3.3.4) for one recipient
// of a message sealed under k from h's from, to, catalog and parts: it
// wraps k to to's encryption key (encrypted_key), fills key_fingerprint
// with to's primary key fingerprint and sets the version; h's own values
// of those three are not used. Only the PKESK is per recipient; catalog
// and parts are the same bytes for everyone. h.From and h.To are
// hash(envelope sender) and hash(envelope recipient). The header is
// checked by protocol's rules before it is returned.
func (k *SessionKey) NewHeader(to *openpgp.Entity, h protocol.Header) (*protocol.Header, error) {
	pkesk, err := k.Wrap(to)
	if err != nil {
		return nil, err
	}
	h.Version = protocol.HeaderVersion
	h.KeyFingerprint = hex.EncodeToString(to.PrimaryKey.Fingerprint)
	h.EncryptedKey = base64.StdEncoding.EncodeToString(pkesk)
	h.Parts = append([]protocol.HeaderPart{}, h.Parts...)
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &h, nil
}

// UnwrapHeader unwraps a header's session key with priv, the recipient's
// private key (unlocked), whose primary fingerprint must be the header's
// key_fingerprint. Parse the header with protocol.ParseHeader first.
func UnwrapHeader(h *protocol.Header, priv *openpgp.Entity) (*SessionKey, error) {
	if priv == nil || priv.PrimaryKey == nil {
		return nil, fmt.Errorf("seal: header: %w: no private key given", ErrWrongKey)
	}
	if fp := hex.EncodeToString(priv.PrimaryKey.Fingerprint); fp != h.KeyFingerprint {
		return nil, fmt.Errorf("seal: header: %w: header is for key %s, not %s", ErrWrongKey, h.KeyFingerprint, fp)
	}
	b, err := h.PKESK()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return Unwrap(b, priv)
}
