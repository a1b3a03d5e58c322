package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// HeaderVersion is the only header version this package reads and writes.
const HeaderVersion = 1

// Part kinds (DESIGN.md §3.3).
const (
	KindBlock      = "block"
	KindAttachment = "attachment"
)

// maxPartID is the longest part id accepted.
const maxPartID = 64

// maxPKESK bounds a decoded encrypted_key (an RSA-4096 PKESK is ~530 bytes).
const maxPKESK = 4096

// Header is the per-recipient header JSON of DESIGN.md §3.3. Fields are
// marshalled in the order given there.
type Header struct {
	Version int `json:"version"`
	// From and To are hash(address) of the envelope sender and recipient:
	// lowercase hex SHA-256.
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

// HeaderPart is one encrypted block or attachment in a Header.
type HeaderPart struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// NewHeader makes the header for one recipient of a message sealed under k:
// it wraps k to to's encryption key and fills key_fingerprint with to's
// primary key fingerprint. Only this PKESK is per recipient; catalog and
// parts are the same bytes for everyone. fromHash and toHash are
// hash(envelope sender) and hash(envelope recipient).
func (k *SessionKey) NewHeader(fromHash, toHash string, to *openpgp.Entity, catalog Ref, parts []HeaderPart) (*Header, error) {
	pkesk, err := k.Wrap(to)
	if err != nil {
		return nil, err
	}
	h := &Header{
		Version:        HeaderVersion,
		From:           fromHash,
		To:             toHash,
		KeyFingerprint: hex.EncodeToString(to.PrimaryKey.Fingerprint),
		EncryptedKey:   base64.StdEncoding.EncodeToString(pkesk),
		Catalog:        catalog,
		Parts:          append([]HeaderPart{}, parts...),
	}
	if err := h.validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// Marshal returns the header's JSON (compact, fields in §3.3 order, parts
// always an array).
func (h *Header) Marshal() ([]byte, error) {
	out := *h
	if out.Parts == nil {
		out.Parts = []HeaderPart{}
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("seal: header: %w", err)
	}
	return b, nil
}

// ParseHeader parses and strictly validates header JSON: one object nested
// at most MaxHeaderDepth deep, no unknown or duplicate fields, version 1, from/to/sha256 64 lowercase hex digits,
// key_fingerprint 40 lowercase hex digits, encrypted_key standard base64 of
// exactly one PKESK v3 packet, sizes >= 0, part kinds block or attachment,
// part ids unique and made of 1 to 64 of [A-Za-z0-9_-]. Errors wrap
// ErrMalformed and name the field.
func ParseHeader(b []byte) (_ *Header, err error) {
	defer recoverMalformed(&err, "header")
	// Cheapest checks first: nesting in one scan before any decoder runs,
	// then unknown fields, then duplicates (each linear in len(b)).
	if err := CheckHeaderNesting(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h Header
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("seal: header: %w", malformed("JSON", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("seal: header: %w", malformed("data after the JSON object", nil))
	}
	if err := checkDuplicateKeys(b); err != nil {
		return nil, err
	}
	if err := h.validate(); err != nil {
		return nil, err
	}
	return &h, nil
}

// validate applies ParseHeader's rules.
func (h *Header) validate() error {
	if h.Version != HeaderVersion {
		return fieldError("version", fmt.Sprintf("%d, want %d", h.Version, HeaderVersion))
	}
	if !isLowerHex(h.From, 64) {
		return fieldError("from", "want 64 lowercase hex digits")
	}
	if !isLowerHex(h.To, 64) {
		return fieldError("to", "want 64 lowercase hex digits")
	}
	if !isLowerHex(h.KeyFingerprint, 40) {
		return fieldError("key_fingerprint", "want a v4 fingerprint, 40 lowercase hex digits")
	}
	if _, err := h.pkesk(); err != nil {
		return err
	}
	if err := h.Catalog.validate("catalog"); err != nil {
		return err
	}
	seen := make(map[string]bool, len(h.Parts))
	for i, p := range h.Parts {
		field := fmt.Sprintf("parts[%d]", i)
		if !isPartID(p.ID) {
			return fieldError(field+".id", fmt.Sprintf("%q: want 1 to %d of [A-Za-z0-9_-]", p.ID, maxPartID))
		}
		if seen[p.ID] {
			return fieldError(field+".id", fmt.Sprintf("%q appears twice", p.ID))
		}
		seen[p.ID] = true
		if p.Kind != KindBlock && p.Kind != KindAttachment {
			return fieldError(field+".kind", fmt.Sprintf("%q: want %q or %q", p.Kind, KindBlock, KindAttachment))
		}
		if err := (Ref{Size: p.Size, SHA256: p.SHA256}).validate(field); err != nil {
			return err
		}
	}
	return nil
}

func (r Ref) validate(field string) error {
	if r.Size < 0 {
		return fieldError(field+".size", fmt.Sprintf("%d is negative", r.Size))
	}
	if !isLowerHex(r.SHA256, 64) {
		return fieldError(field+".sha256", "want 64 lowercase hex digits")
	}
	return nil
}

// pkesk decodes and parses encrypted_key.
func (h *Header) pkesk() ([]byte, error) {
	if len(h.EncryptedKey) > base64.StdEncoding.EncodedLen(maxPKESK) {
		return nil, fieldError("encrypted_key", "too long")
	}
	// The decoder skips CR and LF even in strict mode; we do not.
	if strings.ContainsAny(h.EncryptedKey, "\r\n") {
		return nil, fieldError("encrypted_key", "line breaks in base64")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(h.EncryptedKey)
	if err != nil {
		return nil, fieldError("encrypted_key", "not standard base64: "+err.Error())
	}
	if _, err := parsePKESK(b); err != nil {
		return nil, fmt.Errorf("seal: header: encrypted_key: %w", err)
	}
	return b, nil
}

// SessionKey unwraps the header's session key with priv, the recipient's
// private key (unlocked), whose primary fingerprint must be the header's
// key_fingerprint.
func (h *Header) SessionKey(priv *openpgp.Entity) (*SessionKey, error) {
	if priv == nil || priv.PrimaryKey == nil {
		return nil, fmt.Errorf("seal: header: %w: no private key given", ErrWrongKey)
	}
	if fp := hex.EncodeToString(priv.PrimaryKey.Fingerprint); fp != h.KeyFingerprint {
		return nil, fmt.Errorf("seal: header: %w: header is for key %s, not %s", ErrWrongKey, h.KeyFingerprint, fp)
	}
	b, err := h.pkesk()
	if err != nil {
		return nil, err
	}
	return Unwrap(b, priv)
}

func fieldError(field, what string) error {
	return fmt.Errorf("seal: header: %s: %w: %s", field, ErrMalformed, what)
}

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

func isPartID(s string) bool {
	if len(s) == 0 || len(s) > maxPartID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MaxHeaderDepth is how deeply a header's JSON may nest. A valid header
// needs 3 levels (object > parts > part); one more is margin. Deeper input
// is refused before it is decoded, so hostile nesting costs one linear scan.
const MaxHeaderDepth = 4

// CheckHeaderNesting refuses JSON nested deeper than MaxHeaderDepth
// (arrays and objects both count). It is one pass over the bytes with no
// allocation, and does not otherwise check that b is JSON: callers run it
// before any decoder, which reports what else is wrong. The error wraps
// ErrMalformed.
func CheckHeaderNesting(b []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > MaxHeaderDepth {
				return fmt.Errorf("seal: header: %w", malformed(fmt.Sprintf("JSON nested deeper than %d levels", MaxHeaderDepth), nil))
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// jsonFrame is one open object or array in checkDuplicateKeys.
type jsonFrame struct {
	keys      map[string]bool // nil for an array
	key       string          // object: the last key read
	wantValue bool            // object: the next token is key's value
	index     int             // array: elements begun so far
}

// checkDuplicateKeys rejects JSON with a key twice in one object: encoding/json
// would keep the last, another implementation might keep the first. Its
// cost is linear in len(b): a field's path is built only to report it.
func checkDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []jsonFrame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("seal: header: %w", malformed("JSON", err))
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if key, ok := tok.(string); ok && top != nil && top.keys != nil && !top.wantValue {
			if top.keys[key] {
				return fieldError(fieldPath(stack, key), "appears twice")
			}
			top.keys[key], top.key, top.wantValue = true, key, true
			continue
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			continue
		}
		// tok is a value, or opens one.
		if top != nil {
			if top.keys != nil {
				top.wantValue = false
			} else {
				top.index++
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, jsonFrame{keys: make(map[string]bool)})
		case json.Delim('['):
			stack = append(stack, jsonFrame{})
		}
	}
}

// fieldPath names key in the innermost object of stack the way errors
// name fields: "catalog.size", "parts[0].kind".
func fieldPath(stack []jsonFrame, key string) string {
	var b strings.Builder
	for _, f := range stack[:len(stack)-1] {
		if f.keys == nil {
			fmt.Fprintf(&b, "[%d]", f.index-1)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
	return b.String()
}
