package protocol

import (
	"bytes"
	"errors"
	"testing"
)

// pkeskCases are PKESK framings and bodies CheckPKESK must accept or
// refuse. (seal's TestPKESKAgreement checks the verdicts against
// go-crypto's packet reader on real packets and their mutations.)
func pkeskCases() []struct {
	name string
	b    []byte
	ok   bool
} {
	body := ecdhBody()
	n := len(body)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	withBody := func(b []byte) []byte { return append([]byte{0xc1, byte(len(b))}, b...) }
	rsa := []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, algoRSA, 0x00, 0x09, 0x01, 0xff}
	elg := []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, algoElGamal, 0x00, 0x08, 0xff, 0x00, 0x01, 0x01}
	return []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"new format", ecdhPKESK(), true},
		{"new format, two-octet length", cat([]byte{0xc1, 0xc0, 8}, body, make([]byte, 200-n)), true},
		{"new format, five-octet length", cat([]byte{0xc1, 0xff, 0, 0, 0, byte(n)}, body), true},
		{"new format, partial lengths", cat([]byte{0xc1, 0xe0 | 4}, body[:16], []byte{0xe0}, body[16:17], []byte{byte(n - 17)}, body[17:]), true},
		{"new format, partial then empty", cat([]byte{0xc1, 0xe0 | 6}, body[:64], []byte{byte(n - 64)}, body[64:], []byte{}), true},
		{"old format, one-octet length", cat([]byte{0x84, byte(n)}, body), true},
		{"old format, two-octet length", cat([]byte{0x85, 0, byte(n)}, body), true},
		{"old format, four-octet length", cat([]byte{0x86, 0, 0, 0, byte(n)}, body), true},
		{"old format, to the end", cat([]byte{0x87}, body), true},
		{"old format, to the end with more", cat([]byte{0x87}, body, []byte{1, 2}), true},
		{"octets after the fields, inside the body", withBody(cat(body, []byte{9, 9})), true},
		{"RSA", withBody(rsa), true},
		{"ElGamal", withBody(elg), true},
		{"ECDH, shortest", withBody([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, algoECDH, 0, 0, 1, 7}), true},

		{"empty", nil, false},
		{"no packet bit", cat([]byte{0x41, byte(n)}, body), false},
		{"SEIPD tag", cat([]byte{0xd2, byte(n)}, body), false},
		{"old format SEIPD", cat([]byte{0xc8 &^ 0x40, byte(n)}, body), false},
		{"data after the packet", cat(ecdhPKESK(), []byte{0}), false},
		{"two packets", cat(ecdhPKESK(), ecdhPKESK()), false},
		{"body truncated", ecdhPKESK()[:n], false},
		{"length truncated", []byte{0xc1}, false},
		{"two-octet length truncated", []byte{0xc1, 0xc5}, false},
		{"five-octet length truncated", []byte{0xc1, 0xff, 0, 0}, false},
		{"old length truncated", []byte{0x86, 0, 0}, false},
		{"partial chain cut", cat([]byte{0xc1, 0xe0 | 4}, body[:16]), false},
		{"version 4", withBody(cat([]byte{4}, body[1:])), false},
		{"version 6", withBody(cat([]byte{6}, body[1:])), false},
		{"no algorithm", withBody(body[:9]), false},
		{"EdDSA", withBody(cat(body[:9], []byte{22}, body[10:])), false},
		{"X25519", withBody(cat(body[:9], []byte{25}, body[10:])), false},
		{"MPI truncated", withBody(body[:20]), false},
		{"MPI length truncated", withBody(body[:11]), false},
		{"no wrapped key", withBody(body[:45]), false},
		{"wrapped key truncated", withBody(body[:n-1]), false},
		{"wrapped key length 0", withBody(cat(body[:45], []byte{0})), false},
		{"wrapped key length 255", withBody(cat(body[:45], []byte{0xff}, bytes.Repeat([]byte{1}, 255))), false},
		{"ElGamal, one MPI", withBody(elg[:13]), false},
		{"RSA, no MPI", withBody(rsa[:10]), false},
	}
}

func TestCheckPKESK(t *testing.T) {
	t.Parallel()
	for _, c := range pkeskCases() {
		err := CheckPKESK(c.b)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}
