package seal

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Verdict is the outcome of checking a catalog's signature, as shown in
// Authentication-Results (tollbridge=pass|fail|none).
type Verdict int

const (
	// VerdictNone: the catalog is not signed.
	VerdictNone Verdict = iota
	// VerdictPass: signed, and the signature verifies with the given key.
	VerdictPass
	// VerdictFail: signed, but not verifiably by the given key.
	VerdictFail
)

// String returns "none", "pass" or "fail".
func (v Verdict) String() string {
	switch v {
	case VerdictPass:
		return "pass"
	case VerdictFail:
		return "fail"
	default:
		return "none"
	}
}

// ParseVerdict reads a verdict's String form; ok is false for anything
// else (an empty stored verdict, say).
func ParseVerdict(s string) (v Verdict, ok bool) {
	switch s {
	case "pass":
		return VerdictPass, true
	case "fail":
		return VerdictFail, true
	case "none":
		return VerdictNone, true
	}
	return VerdictNone, false
}

// Verify checks the catalog's signature against the keys in signer (the
// public key of the catalog's "from" address): VerdictNone when unsigned,
// VerdictPass when a signing key of signer verifies it, else VerdictFail.
func (c *Catalog) Verify(signer openpgp.EntityList) Verdict {
	v, _ := c.Check(signer)
	return v
}

// Check is Verify that also says why a signature failed, for logs.
func (c *Catalog) Check(signer openpgp.EntityList) (_ Verdict, err error) {
	if !c.Signed {
		return VerdictNone, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("seal: verify: panic: %v", r)
		}
		if err != nil {
			err = fmt.Errorf("seal: catalog signature: %w", err)
		}
	}()
	if err := c.check(signer); err != nil {
		return VerdictFail, err
	}
	return VerdictPass, nil
}

func (c *Catalog) check(signer openpgp.EntityList) error {
	if c.sigErr != nil {
		return c.sigErr
	}
	if c.ops == nil || c.sig == nil {
		return errors.New("incomplete signature")
	}
	p, err := packet.Read(bytes.NewReader(c.sig))
	if err != nil {
		return err
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return errors.New("not a signature packet")
	}
	// A text signature covers the canonicalised (CRLF) text, so a catalog
	// differing in line endings would verify too: our profile wants binary.
	if sig.SigType != packet.SigTypeBinary {
		return fmt.Errorf("signature type %#02x, want binary document (0x00)", uint8(sig.SigType))
	}
	if sig.IssuerKeyId == nil || *sig.IssuerKeyId != c.ops.KeyId ||
		sig.Hash != c.ops.Hash || sig.PubKeyAlgo != c.ops.PubKeyAlgo || sig.SigType != c.ops.SigType {
		return errors.New("signature does not match its one-pass signature packet")
	}
	if len(signer) == 0 {
		return errors.New("no signer key")
	}
	// VerifyDetachedSignature checks the signature and that the signing key
	// is valid now (not revoked, not expired, no unknown critical notation).
	_, _, err = openpgp.VerifyDetachedSignature(signer, bytes.NewReader(c.Plaintext), bytes.NewReader(c.sig), nil)
	return err
}
