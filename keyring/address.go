// Package keyring holds OpenPGP keys: local users' keys, generated here and
// protected at rest by the user's password, the bridge's own service keys,
// and remote users' keys, fetched by Web Key Directory and pinned on first
// use (docs/protocol.md §3.1).
package keyring

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"

	"tollbridge/protocol"
)

// ErrBadAddress is returned for strings that are not a bare addr-spec.
var ErrBadAddress = errors.New("not a valid mail address")

// NormalizeAddress returns the bare addr-spec lowercased with its domain in
// ASCII (IDNA) form: the form hashed by AddressHash and stored everywhere.
// Display names and angle brackets are accepted and dropped.
func NormalizeAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "<>\" ") {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return "", fmt.Errorf("%q: %w", s, ErrBadAddress)
		}
		s = a.Address
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || len(s) > 320 {
		return "", fmt.Errorf("%q: %w", s, ErrBadAddress)
	}
	local, domain := s[:at], s[at+1:]
	for _, r := range local {
		if r <= ' ' || r == 0x7f || r == '@' || r == '<' || r == '>' {
			return "", fmt.Errorf("%q: %w", s, ErrBadAddress)
		}
	}
	ascii, err := idna.Lookup.ToASCII(strings.ToLower(domain))
	if err != nil || !validDomain(ascii) {
		return "", fmt.Errorf("%q: domain: %w", s, ErrBadAddress)
	}
	return strings.ToLower(local) + "@" + ascii, nil
}

// AddressHash is hash(a) of docs/protocol.md §3.6: lowercase hex SHA-256 of the
// normalised addr-spec.
func AddressHash(address string) (string, error) {
	n, err := NormalizeAddress(address)
	if err != nil {
		return "", err
	}
	return HashNormalized(n), nil
}

// HashNormalized hashes an address already normalised by NormalizeAddress
// (protocol.HashAddress: the protocol defines the hash, keyring the
// normalisation, which needs IDNA).
func HashNormalized(normalized string) string {
	return protocol.HashAddress(normalized)
}

// SplitAddress returns the local part and domain of a normalised address.
func SplitAddress(normalized string) (local, domain string) {
	at := strings.LastIndexByte(normalized, '@')
	if at < 0 {
		return normalized, ""
	}
	return normalized[:at], normalized[at+1:]
}

// StripSubaddress removes a subaddress tag from a normalised address:
// the local part is cut at the first of the delimiter characters, as
// Postfix's recipient_delimiter does, so "user+tag@d" gives "user@d" with
// "+". It returns the address unchanged and false when there is no tag,
// when delimiters is empty, or when the local part would be empty.
func StripSubaddress(normalized, delimiters string) (string, bool) {
	if delimiters == "" {
		return normalized, false
	}
	local, domain := SplitAddress(normalized)
	i := strings.IndexAny(local, delimiters)
	if i <= 0 {
		return normalized, false
	}
	return local[:i] + "@" + domain, true
}
