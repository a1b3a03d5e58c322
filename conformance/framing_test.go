package conformance_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// GnuPG 2.2's own framing, written byte by byte: old-format packet headers
// with definite lengths for the PKESK and the packets inside the
// encryption, a definite-length SEIPD. "The format is standard, not ours"
// (§3.4): a receiver must read it as well as go-crypto's partial lengths.

// oldPacket is an old-format packet (RFC 4880 §4.2.1) of a tag below 16.
func oldPacket(tag byte, body []byte) []byte {
	ctb := 0x80 | tag<<2
	switch n := len(body); {
	case n < 256:
		return append([]byte{ctb, byte(n)}, body...)
	case n < 65536:
		return append([]byte{ctb | 1, byte(n >> 8), byte(n)}, body...)
	default:
		return append(binary.BigEndian.AppendUint32([]byte{ctb | 2}, uint32(n)), body...)
	}
}

// newPacket is a new-format packet with a definite length.
func newPacket(tag byte, body []byte) []byte {
	h := []byte{0xc0 | tag}
	switch n := len(body); {
	case n < 192:
		h = append(h, byte(n))
	case n < 8384:
		h = append(h, byte((n-192)>>8)+192, byte(n-192))
	default:
		h = binary.BigEndian.AppendUint32(append(h, 0xff), uint32(n))
	}
	return append(h, body...)
}

// packetBody strips the header of one new-format, definite-length packet.
func packetBody(t testing.TB, b []byte) []byte {
	t.Helper()
	if b[0]&0xc0 != 0xc0 {
		t.Fatalf("not a new-format packet: %#x", b[0])
	}
	switch l := b[1]; {
	case l < 192:
		return b[2 : 2+int(l)]
	case l < 224:
		return b[3 : 3+(int(l)-192)<<8+int(b[2])+192]
	case l == 0xff:
		return b[6 : 6+int(binary.BigEndian.Uint32(b[2:6]))]
	}
	t.Fatal("partial length")
	return nil
}

// seipdByHand is SEIPD v1: version 1, then AES-256 CFB (zero IV, no
// resync) of random prefix || inner packets || MDC packet.
func seipdByHand(key, inner []byte) []byte {
	prefix := make([]byte, 18)
	rand.Read(prefix[:16])
	prefix[16], prefix[17] = prefix[14], prefix[15]
	pt := append(append(prefix, inner...), 0xd3, 0x14)
	sum := sha1.Sum(pt)
	pt = append(pt, sum[:]...)
	block, _ := aes.NewCipher(key)
	return newPacket(18, append([]byte{1}, cfb(block, pt)...))
}

// cfb is CFB encryption with a zero IV: C_i = P_i xor E(C_i-1).
func cfb(b cipher.Block, pt []byte) []byte {
	out := make([]byte, len(pt))
	prev, ks := make([]byte, b.BlockSize()), make([]byte, b.BlockSize())
	for i := 0; i < len(pt); i += len(ks) {
		b.Encrypt(ks, prev)
		n := min(len(ks), len(pt)-i)
		for j := 0; j < n; j++ {
			out[i+j] = pt[i+j] ^ ks[j]
		}
		copy(prev, out[i:i+n])
	}
	return out
}

// literal is an old-format literal data packet: 'b', no name, date 0.
func literal(data []byte) []byte {
	return oldPacket(11, append([]byte{'b', 0, 0, 0, 0, 0}, data...))
}

// sealGnuPGStyle is sealMessage with GnuPG's framing.
func sealGnuPGStyle(t testing.TB, catalog []byte, parts []*part, signer *openpgp.Entity) *sealed {
	t.Helper()
	s := &sealed{key: make([]byte, 32), catalogPlain: catalog, parts: parts, oldFormat: true}
	rand.Read(s.key)
	key, _ := signer.SigningKey(time.Now())
	ops := binary.BigEndian.AppendUint64([]byte{3, 0, 8, byte(key.PrivateKey.PubKeyAlgo)}, key.PrivateKey.KeyId)
	id := key.PrivateKey.KeyId
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: key.PrivateKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: time.Now(), IssuerKeyId: &id}
	h, _ := sig.PrepareSign(nil)
	h.Write(catalog)
	if err := sig.Sign(h, key.PrivateKey, nil); err != nil {
		t.Fatal(err)
	}
	var sb bytes.Buffer
	sig.Serialize(&sb)
	inner := append(append(oldPacket(4, append(ops, 1)), literal(catalog)...), oldPacket(2, packetBody(t, sb.Bytes()))...)
	s.catalog = seipdByHand(s.key, inner)
	for _, p := range parts {
		p.sealed = seipdByHand(s.key, literal(p.plain))
	}
	return s
}

// TestGnuPGFramingSelfCheck makes sure the hand framing above is a valid
// OpenPGP message (read by go-crypto), so that a receiver refusing it is
// the receiver's fault.
func TestGnuPGFramingSelfCheck(t *testing.T) {
	t.Parallel()
	alice, bob := newKey(t, "alice@example.org"), newKey(t, "bob@example.net")
	p := &part{id: "b1", kind: "block", plain: bytes.Repeat([]byte("x"), 70000)}
	s := sealGnuPGStyle(t, []byte(`{"catalog": true}`), []*part{p}, alice)
	for what, b := range map[string][]byte{"catalog": s.catalog, "part": p.sealed} {
		md, err := openpgp.ReadMessage(bytes.NewReader(append(s.pkesk(t, bob), b...)), openpgp.EntityList{bob, alice}, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, err := io.ReadAll(md.UnverifiedBody)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if what == "catalog" && (string(got) != `{"catalog": true}` || md.SignatureError != nil || md.Signature == nil) {
			t.Errorf("catalog: %q, signature %v %v", got, md.Signature, md.SignatureError)
		}
		if what == "part" && !bytes.Equal(got, p.plain) {
			t.Errorf("part: %d bytes back", len(got))
		}
	}
	if s.pkesk(t, bob)[0] != 0x84 && s.pkesk(t, bob)[0] != 0x85 {
		t.Errorf("PKESK not in old format: %#x", s.pkesk(t, bob)[0])
	}
}
