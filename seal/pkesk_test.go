package seal

import (
	"bytes"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"tollbridge/protocol"
)

// agreePKESK fails when protocol.CheckPKESK, which parses the packet by
// hand with the standard library, and parsePKESK (go-crypto's reader, the
// one Unwrap uses) disagree on whether b is one PKESK v3 packet: a server
// that checks headers with the first must take exactly the headers a
// recipient can read with the second (docs/protocol.md §3.6).
func agreePKESK(t *testing.T, b []byte) {
	t.Helper()
	hand := protocol.CheckPKESK(b)
	var lib error
	func() {
		defer recoverMalformed(&lib, "pkesk")
		_, lib = parsePKESK(b)
	}()
	if (hand == nil) != (lib == nil) {
		t.Fatalf("%x: protocol.CheckPKESK: %v; go-crypto: %v", b, hand, lib)
	}
}

// reframe writes body as a PKESK packet in the other framings RFC 4880
// §4.2 allows: old format with 1, 2 and 4 length octets and to the end,
// new format with five length octets and with partial lengths.
func reframe(body []byte) [][]byte {
	n := len(body)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	out := [][]byte{
		cat([]byte{0x84, byte(n)}, body),
		cat([]byte{0x85, byte(n >> 8), byte(n)}, body),
		cat([]byte{0x86, 0, 0, byte(n >> 8), byte(n)}, body),
		cat([]byte{0x87}, body),
		cat([]byte{0xc1, 0xff, 0, 0, byte(n >> 8), byte(n)}, body),
	}
	if n > 8 {
		out = append(out, cat([]byte{0xc1, 0xe0 | 3}, body[:8], []byte{byte(n - 8)}, body[8:]))
	}
	return out
}

// pkeskVariants are real PKESKs (ECDH and RSA, as Wrap makes them) in
// every framing, and each of them truncated at every length, with every
// octet changed, and with octets added.
func pkeskVariants(t testing.TB) [][]byte {
	k := newKey(t)
	rsa, err := openpgp.NewEntity("rsa", "", "rsa@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	var real [][]byte
	for _, e := range []*openpgp.Entity{newEntity(t, "bob"), rsa} {
		p, err := k.Wrap(e)
		if err != nil {
			t.Fatal(err)
		}
		body := p[2:]
		if p[1] >= 192 { // a two-octet length
			body = p[3:]
		}
		real = append(real, p)
		real = append(real, reframe(body)...)
		real = append(real, reframe(append(bytes.Clone(body), 7, 7))...)
	}
	// ECDH's wrapped-key length octet: 0 and 255 are reserved.
	ecdh := real[0][2:]
	at := 10 + 2 + (int(ecdh[10])<<8|int(ecdh[11])+7)/8
	for _, l := range []byte{0, 0xff, 0xfe} {
		body := append(bytes.Clone(ecdh[:at]), l)
		real = append(real, reframe(append(body, bytes.Repeat([]byte{1}, int(l))...))...)
	}
	var out [][]byte
	for _, p := range real {
		out = append(out, p, append(bytes.Clone(p), 0), append(bytes.Clone(p), p...))
		for i := range p {
			out = append(out, p[:i])
			for _, v := range []byte{0, 1, 0x7f, 0xff, p[i] ^ 1, p[i] + 1, p[i] - 1} {
				m := bytes.Clone(p)
				m[i] = v
				out = append(out, m)
			}
		}
	}
	return out
}

func TestPKESKAgreement(t *testing.T) {
	t.Parallel()
	for _, b := range pkeskVariants(t) {
		agreePKESK(t, b)
	}
}

// FuzzPKESKAgreement looks for a PKESK the two parsers judge differently.
func FuzzPKESKAgreement(f *testing.F) {
	for _, b := range pkeskVariants(f)[:64] {
		f.Add(b)
	}
	f.Fuzz(agreePKESK)
}
