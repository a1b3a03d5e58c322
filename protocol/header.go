package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// HeaderVersion is the only header version there is (also in version 1.1).
const HeaderVersion = 1

// MaxPartID is the longest part id accepted (§3.3.1).
const MaxPartID = 64

// maxPKESK bounds a decoded encrypted_key (an RSA-4096 PKESK is ~530 bytes).
const maxPKESK = 4096

// Header is the per-recipient header JSON of §3.3.4. Fields are
// marshalled in the order given there.
type Header struct {
	Version int `json:"version"`
	// From and To are hash(address) of the envelope sender and recipient.
	From string `json:"from"`
	To   string `json:"to"`
	// KeyFingerprint is the recipient's primary key v4 fingerprint,
	// lowercase hex.
	KeyFingerprint string `json:"key_fingerprint"`
	// EncryptedKey is the whole PKESK v3 packet, standard base64.
	EncryptedKey string       `json:"encrypted_key"`
	Catalog      Ref          `json:"catalog"`
	Parts        []HeaderPart `json:"parts"`
}

// Ref names uploaded bytes by size and SHA-256 (lowercase hex) of exactly
// what is uploaded (the whole SEIPD packet).
type Ref struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// RefOf returns the size and SHA-256 of b.
func RefOf(b []byte) Ref {
	sum := sha256.Sum256(b)
	return Ref{Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

// HeaderPart is one encrypted block or attachment in a Header.
type HeaderPart struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // KindBlock or KindAttachment
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Upload is the part's upload name: "blocks/ID" or "attachments/ID".
func (p HeaderPart) Upload() string { return PartUpload(p.Kind, p.ID) }

// Marshal returns the header's JSON (compact, fields in §3.3.4 order,
// parts always an array). It does not check the rules: Validate does.
func (h *Header) Marshal() ([]byte, error) {
	out := *h
	if out.Parts == nil {
		out.Parts = []HeaderPart{}
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("protocol: header: %w", err)
	}
	return b, nil
}

// ParseHeader parses and strictly validates header JSON (§3.6, §3.3.4):
// one object nested at most MaxHeaderDepth deep, no unknown or duplicate
// members, then the rules of Validate. Errors wrap ErrMalformed and name
// the member at fault.
func ParseHeader(b []byte) (*Header, error) {
	// Cheapest checks first: nesting in one scan before any decoder runs,
	// then unknown members, then duplicates (each linear in len(b)).
	if err := CheckHeaderNesting(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h Header
	if err := dec.Decode(&h); err != nil {
		return nil, headerMalformed("JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, headerMalformed("data after the JSON object")
	}
	if err := checkDuplicateKeys(b); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return &h, nil
}

// Validate applies the member rules: version 1, from/to/sha256 64
// lowercase hex digits, key_fingerprint 40, encrypted_key standard base64
// of exactly one PKESK v3 packet (CheckPKESK), sizes >= 0, part kinds
// block or attachment, part ids unique and valid (ValidPartID).
func (h *Header) Validate() error {
	if h.Version != HeaderVersion {
		return fieldError("version", "%d, want %d", h.Version, HeaderVersion)
	}
	if !IsHash(h.From) {
		return fieldError("from", "want 64 lowercase hex digits")
	}
	if !IsHash(h.To) {
		return fieldError("to", "want 64 lowercase hex digits")
	}
	if !isLowerHex(h.KeyFingerprint, 40) {
		return fieldError("key_fingerprint", "want a v4 fingerprint, 40 lowercase hex digits")
	}
	if _, err := h.PKESK(); err != nil {
		return err
	}
	if err := h.Catalog.validate("catalog"); err != nil {
		return err
	}
	seen := make(map[string]bool, len(h.Parts))
	for i, p := range h.Parts {
		field := fmt.Sprintf("parts[%d]", i)
		if !ValidPartID(p.ID) {
			return fieldError(field+".id", "%q: want 1 to %d of [A-Za-z0-9_-]", p.ID, MaxPartID)
		}
		if seen[p.ID] {
			return fieldError(field+".id", "%q appears twice", p.ID)
		}
		seen[p.ID] = true
		if p.Kind != KindBlock && p.Kind != KindAttachment {
			return fieldError(field+".kind", "%q: want %q or %q", p.Kind, KindBlock, KindAttachment)
		}
		if err := (Ref{Size: p.Size, SHA256: p.SHA256}).validate(field); err != nil {
			return err
		}
	}
	return nil
}

func (r Ref) validate(field string) error {
	if r.Size < 0 {
		return fieldError(field+".size", "%d is negative", r.Size)
	}
	if !IsHash(r.SHA256) {
		return fieldError(field+".sha256", "want 64 lowercase hex digits")
	}
	return nil
}

// PKESK decodes encrypted_key and checks that it is exactly one PKESK v3
// packet (CheckPKESK), returning its bytes.
func (h *Header) PKESK() ([]byte, error) {
	if len(h.EncryptedKey) > base64.StdEncoding.EncodedLen(maxPKESK) {
		return nil, fieldError("encrypted_key", "too long")
	}
	// The decoder skips CR and LF even in strict mode; we do not.
	if strings.ContainsAny(h.EncryptedKey, "\r\n") {
		return nil, fieldError("encrypted_key", "line breaks in base64")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(h.EncryptedKey)
	if err != nil {
		return nil, fieldError("encrypted_key", "not standard base64: %v", err)
	}
	if err := CheckPKESK(b); err != nil {
		return nil, fmt.Errorf("protocol: header: encrypted_key: %w", err)
	}
	return b, nil
}

// ValidPartID reports whether id may name a part: 1 to MaxPartID of
// A-Z a-z 0-9 _ - (it becomes a path segment).
func ValidPartID(id string) bool {
	if len(id) == 0 || len(id) > MaxPartID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func headerMalformed(format string, args ...any) error {
	return fmt.Errorf("protocol: header: %w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("protocol: header: %s: %w: %s", field, ErrMalformed, fmt.Sprintf(format, args...))
}
