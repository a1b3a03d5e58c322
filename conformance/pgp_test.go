package conformance_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// newKey makes a v4 Ed25519/X25519 key for addr, as any OpenPGP
// implementation would (docs/rules.md §5: "Ed25519/X25519, v4").
func newKey(t testing.TB, addr string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("", "", addr, &packet.Config{
		Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519,
		DefaultHash: crypto.SHA256, DefaultCipher: packet.CipherAES256,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// publicKey is e's binary transferable public key.
func publicKey(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fingerprint is e's primary key v4 fingerprint in lowercase hex (§3.6).
func fingerprint(e *openpgp.Entity) string { return hex.EncodeToString(e.PrimaryKey.Fingerprint) }

// readPublicKey parses a WKD answer: a binary (not armored) transferable
// public key holding no secret key (docs/protocol.md §3.1).
func readPublicKey(t testing.TB, b []byte) *openpgp.Entity {
	t.Helper()
	if len(b) == 0 || b[0]&0x80 == 0 {
		t.Fatalf("WKD answer is not a binary OpenPGP key (first bytes %.20q) (docs/protocol.md §3.1 \"returns the binary transferable public key\")", b)
	}
	e, err := openpgp.ReadEntity(packet.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("WKD answer does not parse as a transferable public key: %v", err)
	}
	if e.PrivateKey != nil {
		t.Fatal("WKD served a secret key")
	}
	return e
}

// hasUserID reports whether e has a user id naming addr.
func hasUserID(e *openpgp.Entity, addr string) bool {
	for _, id := range e.Identities {
		if id.UserId != nil && strings.EqualFold(id.UserId.Email, addr) {
			return true
		}
	}
	return false
}

// part is one block or attachment: its plaintext and, once sealed, the
// uploaded SEIPD packet.
type part struct {
	id, kind    string
	ctype, name string // the catalog's "type" and "name"
	plain       []byte
	sealed      []byte
}

// sealed is a message sealed by hand after docs/protocol.md §3.4: one AES-256
// session key; the catalog and every part one SEIPD v1 packet holding one
// literal data packet (format 'b', empty name).
type sealed struct {
	oldFormat    bool // the PKESK in an old-format packet, as GnuPG writes it
	key          []byte
	catalogPlain []byte
	catalog      []byte
	parts        []*part
}

// sealMessage encrypts catalog and parts under a fresh session key; with
// signer the catalog holds one-pass signature, literal data, signature.
func sealMessage(t testing.TB, catalog []byte, parts []*part, signer *openpgp.Entity) *sealed {
	t.Helper()
	s := &sealed{key: make([]byte, 32), catalogPlain: catalog, parts: parts}
	rand.Read(s.key)
	s.catalog = s.encryptCatalog(t, catalog, signer)
	for _, p := range parts {
		p.sealed = s.encryptPart(t, p.plain)
	}
	return s
}

// encryptPart is SEIPD v1 (with MDC) holding literal data 'b' "" 0,
// written with go-crypto's own packet writers.
func (s *sealed) encryptPart(t testing.TB, plain []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := packet.SerializeSymmetricallyEncrypted(&b, packet.CipherAES256, false, packet.CipherSuite{}, s.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	lit, err := packet.SerializeLiteral(w, true, "", 0) // closing lit closes w, which writes the MDC
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lit.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := lit.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// encryptCatalog is encryptPart with, when signer is set, a one-pass
// signature before and a binary document signature after the literal data.
func (s *sealed) encryptCatalog(t testing.TB, plain []byte, signer *openpgp.Entity) []byte {
	t.Helper()
	if signer == nil {
		return s.encryptPart(t, plain)
	}
	key, ok := signer.SigningKey(time.Now())
	if !ok {
		t.Fatal("signer has no signing key")
	}
	var b bytes.Buffer
	w, err := packet.SerializeSymmetricallyEncrypted(&b, packet.CipherAES256, false, packet.CipherSuite{}, s.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	ops := &packet.OnePassSignature{Version: 3, SigType: packet.SigTypeBinary, Hash: crypto.SHA256,
		PubKeyAlgo: key.PrivateKey.PubKeyAlgo, KeyId: key.PrivateKey.KeyId, IsLast: true}
	if err := ops.Serialize(w); err != nil {
		t.Fatal(err)
	}
	lit, err := packet.SerializeLiteral(nopWriteCloser{w}, true, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	lit.Write(plain)
	if err := lit.Close(); err != nil {
		t.Fatal(err)
	}
	id := key.PrivateKey.KeyId
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: key.PrivateKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: time.Now(), IssuerKeyId: &id}
	h, err := sig.PrepareSign(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(plain)
	if err := sig.Sign(h, key.PrivateKey, nil); err != nil {
		t.Fatal(err)
	}
	if err := sig.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pkesk wraps the session key to rcpt's encryption key: a version 3 PKESK.
func (s *sealed) pkesk(t testing.TB, rcpt *openpgp.Entity) []byte {
	t.Helper()
	k, ok := rcpt.EncryptionKey(time.Now())
	if !ok {
		t.Fatal("recipient key cannot encrypt")
	}
	var b bytes.Buffer
	if err := packet.SerializeEncryptedKey(&b, k.PublicKey, packet.CipherAES256, s.key, nil); err != nil {
		t.Fatal(err)
	}
	if s.oldFormat {
		return oldPacket(1, packetBody(t, b.Bytes()))
	}
	return b.Bytes()
}

// header writes the header JSON of docs/protocol.md §3.3 by hand, fields in the
// order given there. With pretty it is indented and ends in a newline, so
// that only the exact bytes can match a receipt.
func (s *sealed) header(t testing.TB, fromHash, toHash string, rcpt *openpgp.Entity, pretty bool) []byte {
	t.Helper()
	var parts []string
	for _, p := range s.parts {
		parts = append(parts, fmt.Sprintf(`{"id": %q, "kind": %q, "size": %d, "sha256": %q}`, p.id, p.kind, len(p.sealed), sha256Hex(p.sealed)))
	}
	sep := ""
	if pretty {
		sep = "\n  "
	}
	h := fmt.Sprintf(`{`+sep+`"version": 1,`+sep+`"from": %q,`+sep+`"to": %q,`+sep+`"key_fingerprint": %q,`+sep+
		`"encrypted_key": %q,`+sep+`"catalog": {"size": %d, "sha256": %q},`+sep+`"parts": [%s]`,
		fromHash, toHash, fingerprint(rcpt), base64.StdEncoding.EncodeToString(s.pkesk(t, rcpt)),
		len(s.catalog), sha256Hex(s.catalog), strings.Join(parts, ", "))
	if pretty {
		return []byte(h + "\n}\n")
	}
	return []byte(h + "}")
}

// bytesTotal is parts.bytes of §3.6: encrypted catalog plus parts.
func (s *sealed) bytesTotal() int {
	n := len(s.catalog)
	for _, p := range s.parts {
		n += len(p.sealed)
	}
	return n
}

// counts is the number of blocks and attachments.
func (s *sealed) counts() (blocks, attachments int) {
	for _, p := range s.parts {
		if p.kind == "block" {
			blocks++
		} else {
			attachments++
		}
	}
	return
}

// ticketRequest is a POST /v1/tickets body for this message.
func (s *sealed) ticketRequest(sender, recipient string) []byte {
	b, a := s.counts()
	return []byte(fmt.Sprintf(`{"sender": %q, "recipient": %q, "preference": ["pow"], "parts": {"blocks": %d, "attachments": %d, "bytes": %d}}`,
		sender, recipient, b, a, s.bytesTotal()))
}

// opened is what a receiver finds in one SEIPD packet.
type opened struct {
	literal *packet.LiteralData
	data    []byte
	ops     *packet.OnePassSignature
	sig     []byte // the signature packet, re-serialised
	other   []string
}

// openPKESK parses encrypted_key (standard base64 of exactly one PKESK v3
// packet) and unwraps the session key with priv.
func openPKESK(t testing.TB, b64 string, priv *openpgp.Entity) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		t.Fatalf("encrypted_key is not standard base64 (docs/protocol.md §3.6): %v", err)
	}
	r := bytes.NewReader(raw)
	p, err := packet.Read(r)
	if err != nil {
		t.Fatalf("encrypted_key is not an OpenPGP packet: %v", err)
	}
	ek, ok := p.(*packet.EncryptedKey)
	if !ok {
		t.Fatalf("encrypted_key holds a %T, want a PKESK packet (docs/protocol.md §3.6)", p)
	}
	if r.Len() != 0 {
		t.Errorf("encrypted_key has %d bytes after its PKESK packet (docs/protocol.md §3.6 \"the whole PKESK packet\")", r.Len())
	}
	if ek.Version != 3 {
		t.Errorf("PKESK version %d, want 3 (docs/protocol.md §3.6 \"PKESK v3\")", ek.Version)
	}
	for _, k := range (openpgp.EntityList{priv}).KeysById(ek.KeyId) {
		if k.PrivateKey == nil {
			continue
		}
		if err := ek.Decrypt(k.PrivateKey, nil); err == nil {
			if ek.CipherFunc != packet.CipherAES256 || len(ek.Key) != 32 {
				t.Errorf("session key cipher %v (%d bytes), want AES-256 (docs/protocol.md §3.4)", ek.CipherFunc, len(ek.Key))
			}
			return ek.Key
		}
	}
	t.Fatalf("PKESK (key id %016x) does not decrypt with the recipient's key", ek.KeyId)
	return nil
}

// openSEIPD checks that b is exactly one SEIPD v1 packet and decrypts it,
// checking the MDC, and lists the packets inside.
func openSEIPD(t testing.TB, what string, b, key []byte) *opened {
	t.Helper()
	if len(b) == 0 || b[0] != 0xc0|18 {
		t.Fatalf("%s: first octet %#x, want 0xd2 (a SEIPD packet, docs/protocol.md §3.4)", what, b[:min(len(b), 1)])
	}
	r := bytes.NewReader(b)
	p, err := packet.Read(r)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	se, ok := p.(*packet.SymmetricallyEncrypted)
	if !ok || !se.IntegrityProtected || se.Version != 1 {
		t.Fatalf("%s: %T version %d, want SEIPD version 1 with MDC (docs/protocol.md §3.6)", what, p, se.Version)
	}
	rc, err := se.Decrypt(packet.CipherAES256, key)
	if err != nil {
		t.Fatalf("%s: decrypt: %v", what, err)
	}
	o := &opened{}
	for {
		p, err := packet.Read(rc)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: inner packets: %v", what, err)
		}
		switch p := p.(type) {
		case *packet.LiteralData:
			if o.literal != nil {
				t.Errorf("%s: two literal data packets", what)
			}
			o.literal = p
			if o.data, err = io.ReadAll(p.Body); err != nil {
				t.Fatalf("%s: literal data: %v", what, err)
			}
		case *packet.OnePassSignature:
			o.ops = p
			o.other = append(o.other, "one-pass signature")
		case *packet.Signature:
			var b bytes.Buffer
			p.Serialize(&b)
			o.sig = b.Bytes()
			o.other = append(o.other, "signature")
		default:
			o.other = append(o.other, fmt.Sprintf("%T", p))
		}
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("%s: MDC: %v", what, err)
	}
	if r.Len() != 0 {
		t.Errorf("%s: %d bytes after the SEIPD packet (docs/protocol.md §3.6: the upload is the whole SEIPD packet)", what, r.Len())
	}
	if o.literal == nil {
		t.Fatalf("%s: no literal data packet (docs/protocol.md §3.4)", what)
	}
	if !o.literal.IsBinary || o.literal.Format != 'b' || o.literal.FileName != "" {
		t.Errorf("%s: literal data format %q name %q, want 'b' and empty (docs/protocol.md §3.6)", what, o.literal.Format, o.literal.FileName)
	}
	return o
}
