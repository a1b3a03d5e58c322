package keyring

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// zbase32 is the z-base-32 alphabet of the Web Key Directory draft.
const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// WKDPrefix starts every Web Key Directory path (advanced method).
const WKDPrefix = "/.well-known/openpgpkey/"

// ErrBadWKDPath is returned by ParseWKDPath for paths it does not serve.
var ErrBadWKDPath = errors.New("not a WKD path")

// WKDHash is z-base-32 of SHA-1 of the local part lowercased: the name of
// the address's key in the directory.
func WKDHash(local string) string {
	sum := sha1.Sum([]byte(strings.ToLower(local)))
	var out strings.Builder
	// 160 bits = 32 groups of 5 bits, most significant first.
	var acc uint64
	bits := 0
	for _, b := range sum {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			out.WriteByte(zbase32[(acc>>(bits-5))&31])
			bits -= 5
		}
	}
	return out.String()
}

// WKDURL is the advanced-method URL of address's key under a ticket API's
// base URL: {base}/.well-known/openpgpkey/{domain}/hu/{hash}?l={local}.
func WKDURL(base, address string) (string, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return "", err
	}
	local, domain := SplitAddress(addr)
	return strings.TrimRight(base, "/") + WKDPrefix + domain + "/hu/" + WKDHash(local) + "?l=" + url.QueryEscape(local), nil
}

// WKDRequest is a parsed directory path.
type WKDRequest struct {
	Domain string // ASCII, lowercase
	Hash   string // z-base-32, empty for the policy file
	Policy bool   // the request is for {domain}/policy
}

// ParseWKDPath parses the path of a directory request: either
// /.well-known/openpgpkey/{domain}/hu/{hash} or .../{domain}/policy.
func ParseWKDPath(path string) (WKDRequest, error) {
	rest, ok := strings.CutPrefix(path, WKDPrefix)
	if !ok {
		return WKDRequest{}, ErrBadWKDPath
	}
	parts := strings.Split(rest, "/")
	domain := strings.ToLower(parts[0])
	if !validDomain(domain) {
		return WKDRequest{}, fmt.Errorf("domain %q: %w", parts[0], ErrBadWKDPath)
	}
	switch {
	case len(parts) == 2 && parts[1] == "policy":
		return WKDRequest{Domain: domain, Policy: true}, nil
	case len(parts) == 3 && parts[1] == "hu" && validZBase32Hash(parts[2]):
		return WKDRequest{Domain: domain, Hash: parts[2]}, nil
	}
	return WKDRequest{}, ErrBadWKDPath
}

func validZBase32Hash(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(zbase32, s[i]) < 0 {
			return false
		}
	}
	return true
}

func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
