package seal

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/protocol"
)

// NewHeader makes the header (docs/protocol.md §3.3.4) for one recipient
// of a message sealed under k: it wraps k to to's encryption key and fills
// key_fingerprint with to's primary key fingerprint. Only this PKESK is
// per recipient; catalog and parts are the same bytes for everyone.
// fromHash and toHash are hash(envelope sender) and hash(envelope
// recipient). The header is checked by protocol's rules before it is
// returned.
func (k *SessionKey) NewHeader(fromHash, toHash string, to *openpgp.Entity, catalog protocol.Ref, parts []protocol.HeaderPart) (*protocol.Header, error) {
	pkesk, err := k.Wrap(to)
	if err != nil {
		return nil, err
	}
	h := &protocol.Header{
		Version:        protocol.HeaderVersion,
		From:           fromHash,
		To:             toHash,
		KeyFingerprint: hex.EncodeToString(to.PrimaryKey.Fingerprint),
		EncryptedKey:   base64.StdEncoding.EncodeToString(pkesk),
		Catalog:        catalog,
		Parts:          append([]protocol.HeaderPart{}, parts...),
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return h, nil
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
