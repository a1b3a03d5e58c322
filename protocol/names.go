package protocol

import (
	"crypto/sha256"
	"encoding/hex"
)

// Part kinds (§3.3.4): a header part is a block (a text body) or an
// attachment (any other body).
const (
	KindBlock      = "block"
	KindAttachment = "attachment"
)

// Upload names: the last segments of PUT /v1/tickets/{id}/{name} (§3.3.1).
const (
	UploadHeader  = "header"
	UploadCatalog = "catalog"
)

// Directories of part uploads: blocks/{id} and attachments/{id}.
const (
	BlocksDir      = "blocks"
	AttachmentsDir = "attachments"
)

// PartUpload is the upload name of a part of the given kind: "blocks/ID"
// or "attachments/ID"; "" for an unknown kind.
func PartUpload(kind, id string) string {
	switch kind {
	case KindBlock:
		return BlocksDir + "/" + id
	case KindAttachment:
		return AttachmentsDir + "/" + id
	}
	return ""
}

// TicketsPath is the ticket API's root: POST a TicketRequest here, then
// use TicketsPath + "/" + ticket id for work, uploads and completion.
const TicketsPath = "/v1/tickets"

// CompleteName is the last segment of POST /v1/tickets/{id}/complete.
const CompleteName = "complete"

// SignatureHeader is the HTTP header field that carries a signed ticket
// request's detached signature (§3.7).
const SignatureHeader = "Tollbridge-Signature"

// HashAddress is hash(a) of §3.6: lowercase hex SHA-256 of the UTF-8
// bytes of an address already normalised (bare addr-spec, lowercased,
// domain in IDNA ASCII form; keyring.NormalizeAddress does that).
func HashAddress(normalized string) string {
	sum := sha256.Sum256([]byte(normalized))
	return hex.EncodeToString(sum[:])
}

// IsHash reports whether s has the form of hash(a): 64 lowercase hex
// digits.
func IsHash(s string) bool { return isLowerHex(s, 64) }

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
