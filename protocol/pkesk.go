package protocol

import "fmt"

// OpenPGP public-key algorithms whose version 3 PKESK carries the cipher
// octet and checksum inside the encrypted block, which is what GnuPG 2.2
// reads (RFC 4880 §9.1).
const (
	algoRSA        = 1
	algoRSAEncrypt = 2
	algoElGamal    = 16
	algoECDH       = 18
)

// tagPKESK is the OpenPGP packet tag of a Public-Key Encrypted Session
// Key packet.
const tagPKESK = 1

// CheckPKESK reports whether b is exactly one OpenPGP PKESK packet of
// version 3 (header included, nothing after it) for RSA, ElGamal or ECDH,
// with every field of its algorithm present: what §3.6 asks of a header's
// encrypted_key. It parses the packet framing (RFC 4880 §4.2: old and new
// formats, partial body lengths) by hand and accepts exactly what
// go-crypto's packet reader accepts for such a packet (seal tests the two
// against each other), so a header the server takes is one the
// recipient's bridge can read. Whether the key unwraps is not checked:
// that needs the recipient's private key. The error wraps ErrMalformed.
func CheckPKESK(b []byte) error {
	if len(b) == 0 {
		return pkeskError("empty PKESK")
	}
	if b[0]&0x80 == 0 || packetTag(b[0]) != tagPKESK {
		return pkeskError("expected a PKESK packet (tag 1), found octet %#02x", b[0])
	}
	body, rest, err := packetBody(b)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return pkeskError("data after the PKESK packet")
	}
	return checkPKESKBody(body)
}

// packetTag is the tag of a packet whose first octet is b (bit 7 set).
func packetTag(b byte) byte {
	if b&0x40 != 0 { // new format
		return b & 0x3f
	}
	return (b & 0x3f) >> 2 // old format
}

// packetBody splits one packet off b: its body (partial chunks joined)
// and the bytes after it.
func packetBody(b []byte) (body, rest []byte, err error) {
	b0, b := b[0], b[1:]
	if b0&0x40 == 0 { // old format: 1, 2 or 4 length octets, or to the end
		lengthType := b0 & 3
		if lengthType == 3 {
			return b, nil, nil
		}
		n := 1 << lengthType
		if len(b) < n {
			return nil, nil, pkeskError("packet header truncated")
		}
		var length uint64
		for _, c := range b[:n] {
			length = length<<8 | uint64(c)
		}
		return span(b[n:], length)
	}
	for {
		length, partial, n, err := newLength(b)
		if err != nil {
			return nil, nil, err
		}
		chunk, after, err := span(b[n:], length)
		if err != nil {
			return nil, nil, err
		}
		body = append(body, chunk...)
		if !partial {
			return body, after, nil
		}
		b = after
	}
}

// newLength reads a new-format body length at the start of b, returning
// it, whether it is a partial body length, and how many octets it took.
func newLength(b []byte) (length uint64, partial bool, n int, err error) {
	if len(b) == 0 {
		return 0, false, 0, pkeskError("packet length truncated")
	}
	switch o := b[0]; {
	case o < 192:
		return uint64(o), false, 1, nil
	case o < 224:
		if len(b) < 2 {
			return 0, false, 0, pkeskError("packet length truncated")
		}
		return uint64(o-192)<<8 + uint64(b[1]) + 192, false, 2, nil
	case o < 255:
		return 1 << (o & 0x1f), true, 1, nil
	}
	if len(b) < 5 {
		return 0, false, 0, pkeskError("packet length truncated")
	}
	return uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4]), false, 5, nil
}

// span cuts length octets off b.
func span(b []byte, length uint64) (chunk, rest []byte, err error) {
	if uint64(len(b)) < length {
		return nil, nil, pkeskError("packet body truncated: %d of %d octets", len(b), length)
	}
	return b[:length], b[length:], nil
}

// checkPKESKBody checks a version 3 PKESK body: version, key id,
// algorithm and the algorithm's fields. Octets after the fields are
// ignored, as go-crypto ignores them.
func checkPKESKBody(b []byte) error {
	if len(b) < 1 {
		return pkeskError("PKESK body truncated")
	}
	if b[0] != 3 {
		return pkeskError("PKESK version %d, want 3", b[0])
	}
	if len(b) < 10 {
		return pkeskError("PKESK body truncated")
	}
	algo, fields := b[9], b[10:]
	var err error
	switch algo {
	case algoRSA, algoRSAEncrypt:
		_, err = skipMPI(fields)
	case algoElGamal:
		if fields, err = skipMPI(fields); err == nil {
			_, err = skipMPI(fields)
		}
	case algoECDH:
		if fields, err = skipMPI(fields); err == nil {
			err = checkWrappedKey(fields)
		}
	default:
		return pkeskError("PKESK algorithm %d not supported", algo)
	}
	return err
}

// skipMPI returns b after one multiprecision integer (RFC 4880 §3.2).
func skipMPI(b []byte) ([]byte, error) {
	if len(b) < 2 {
		return nil, pkeskError("PKESK: MPI truncated")
	}
	n := ((int(b[0])<<8 | int(b[1])) + 7) / 8
	if len(b)-2 < n {
		return nil, pkeskError("PKESK: MPI truncated")
	}
	return b[2+n:], nil
}

// checkWrappedKey checks ECDH's wrapped session key: one length octet
// (0 and 255 are reserved) and that many octets (RFC 6637 §10).
func checkWrappedKey(b []byte) error {
	if len(b) < 1 {
		return pkeskError("PKESK: wrapped key truncated")
	}
	if b[0] == 0 || b[0] == 0xff {
		return pkeskError("PKESK: wrapped key length %d is reserved", b[0])
	}
	if len(b)-1 < int(b[0]) {
		return pkeskError("PKESK: wrapped key truncated")
	}
	return nil
}

func pkeskError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
