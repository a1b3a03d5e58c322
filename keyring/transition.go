package keyring

import (
	"bytes"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Certified reports whether the key next is a key transition from old for
// address (docs/protocol.md §3.1.4): a user ID of next naming address
// carries a certification (types 0x10–0x13) made by old's primary key,
// which verifies and has not expired at now. Such a key replaces the
// pinned one without an admin.
func Certified(next, old *openpgp.Entity, address string, now time.Time) bool {
	if next == nil || old == nil || old.PrimaryKey == nil || next.PrimaryKey == nil ||
		bytes.Equal(next.PrimaryKey.Fingerprint, old.PrimaryKey.Fingerprint) {
		return false
	}
	for name, id := range next.Identities {
		if id.UserId == nil || !namesAddress(id, address) {
			continue
		}
		for _, sig := range id.Signatures {
			if certifiedBy(sig, old.PrimaryKey, name, next.PrimaryKey, now) {
				return true
			}
		}
	}
	return false
}

// namesAddress reports whether a user ID is address.
func namesAddress(id *openpgp.Identity, address string) bool {
	n, err := NormalizeAddress(id.UserId.Email)
	return err == nil && n == address
}

// certifiedBy reports whether sig is a valid certification of user ID
// name on pub by signer's primary key.
func certifiedBy(sig *packet.Signature, signer *packet.PublicKey, name string, pub *packet.PublicKey, now time.Time) bool {
	if sig.SigType < packet.SigTypeGenericCert || sig.SigType > packet.SigTypePositiveCert {
		return false
	}
	if !issuedBy(sig, signer) || sig.SigExpired(now) || sig.CreationTime.After(now.Add(time.Minute)) {
		return false
	}
	return signer.VerifyUserIdSignature(name, pub, sig) == nil
}

// issuedBy reports whether sig names signer as its issuer (by fingerprint
// or key id).
func issuedBy(sig *packet.Signature, signer *packet.PublicKey) bool {
	if sig.IssuerFingerprint != nil {
		return bytes.Equal(sig.IssuerFingerprint, signer.Fingerprint)
	}
	return sig.IssuerKeyId != nil && *sig.IssuerKeyId == signer.KeyId
}
