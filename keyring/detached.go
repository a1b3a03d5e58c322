package keyring

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// VerifyDetached checks a detached binary OpenPGP signature over body by
// key: a receipt over the header bytes (docs/protocol.md §3.3.3) or a
// signed ticket request's body (§3.7). sig must be exactly one signature
// packet of type binary document (0x00): a text signature would also
// verify other line endings.
func VerifyDetached(key *openpgp.Entity, body, sig []byte) error {
	r := packet.NewReader(bytes.NewReader(sig))
	p, err := r.Next()
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	ps, ok := p.(*packet.Signature)
	if !ok {
		return errors.New("signature: not a signature packet")
	}
	if ps.SigType != packet.SigTypeBinary {
		return fmt.Errorf("signature type %#02x, want binary document (0x00)", uint8(ps.SigType))
	}
	if _, err := r.Next(); err == nil {
		return errors.New("signature: more than one packet")
	}
	_, err = openpgp.CheckDetachedSignature(openpgp.EntityList{key}, bytes.NewReader(body), bytes.NewReader(sig), nil)
	return err
}
