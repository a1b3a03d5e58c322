package seal

import (
	"tollbridge/internal/gpgtest"

	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"tollbridge/protocol"
)

// GnuPG interoperability (docs/protocol.md §3.4: PKESK || part is a complete
// OpenPGP message GnuPG 2.2 decrypts). These tests run gpg; they skip only
// when gpg is not installed (CI installs Debian's gnupg 2.2).

func fpr(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// TestGnuPGReadsOurs: gpg decrypts PKESK || catalog (checking the sender's
// signature) and PKESK || part, and --list-packets shows our profile.
func TestGnuPGReadsOurs(t *testing.T) {
	t.Parallel()
	g := gpgtest.New(t)
	alice, bob := newEntity(t, "alice"), newEntity(t, "bob")
	g.ImportSecret(bob)
	g.ImportPublic(alice)

	s := sealMessage(t, alice, 0, 1, 3*chunkSize+17)
	h, err := s.key.NewHeader(bob, protocol.Header{From: addrHash("alice@example.org"), To: addrHash("bob@example.org"), Catalog: s.ref, Parts: s.refs})
	if err != nil {
		t.Fatal(err)
	}
	pkesk, err := h.PKESK()
	if err != nil {
		t.Fatal(err)
	}
	msg := append(bytes.Clone(pkesk), s.catalog...)
	out, status := g.MustRun(msg, "--decrypt")
	if string(out) != testCatalog {
		t.Fatalf("gpg decrypted catalog to %q", out)
	}
	gpgtest.WantStatus(t, status, "DECRYPTION_INFO 2 9", "GOODMDC", "DECRYPTION_OKAY",
		"GOODSIG "+fpr(alice)[24:], "VALIDSIG "+fpr(alice))
	if strings.Contains(status, "BADSIG") || strings.Contains(status, "ERRSIG") {
		t.Fatalf("bad signature:\n%s", status)
	}

	listing, _ := g.MustRun(msg, "--list-packets")
	lst := string(listing)
	for _, want := range []string{
		":pubkey enc packet: version 3, algo 18, keyid " + fmt.Sprintf("%016X", mustEncKey(t, bob).KeyId),
		":encrypted data packet:", "mdc_method: 2",
		":onepass_sig packet: keyid " + fmt.Sprintf("%016X", alice.PrimaryKey.KeyId),
		":literal data packet:", "mode b (62), created 0, name=\"\"",
		":signature packet: algo 22, keyid " + fmt.Sprintf("%016X", alice.PrimaryKey.KeyId),
		"version 4, created", "md5len 0, sigclass 0x00", "digest algo 8",
	} {
		if !strings.Contains(lst, want) {
			t.Errorf("--list-packets lacks %q:\n%s", want, lst)
		}
	}
	if strings.Contains(lst, "compressed packet") {
		t.Errorf("compression packet:\n%s", lst)
	}

	for i, part := range s.parts {
		out, status := g.MustRun(append(bytes.Clone(pkesk), part...), "--decrypt")
		if !bytes.Equal(out, s.plain[i]) {
			t.Fatalf("part %d: gpg decrypted %d bytes, want %d", i, len(out), len(s.plain[i]))
		}
		gpgtest.WantStatus(t, status, "DECRYPTION_INFO 2 9", "GOODMDC", "DECRYPTION_OKAY")
	}

	// Unsigned catalog: decrypts, no signature.
	unsigned := sealCatalog(t, s.key, []byte(testCatalog), nil)
	out, status = g.MustRun(append(bytes.Clone(pkesk), unsigned...), "--decrypt")
	if string(out) != testCatalog || strings.Contains(status, "SIG ") {
		t.Fatalf("unsigned catalog: %q\n%s", out, status)
	}

	// And gpg refuses a tampered part.
	bad := append(bytes.Clone(pkesk), s.parts[1]...)
	bad[len(bad)-5] ^= 1
	if _, status, err := g.Run(bad, "--decrypt"); err == nil || strings.Contains(status, "GOODMDC") {
		t.Fatalf("gpg accepted a tampered part:\n%s", status)
	}
}

func mustEncKey(t *testing.T, e *openpgp.Entity) *packet.PublicKey {
	t.Helper()
	k, ok := e.EncryptionKey(timeNow())
	if !ok {
		t.Fatal("no encryption key")
	}
	return k.PublicKey
}

// TestWeReadGnuPG: gpg signs and encrypts a catalog and encrypts a part;
// we split its output into PKESK and SEIPD, Unwrap, open and verify.
func TestWeReadGnuPG(t *testing.T) {
	t.Parallel()
	g := gpgtest.New(t)
	alice, bob := newEntity(t, "alice"), newEntity(t, "bob")
	g.ImportSecret(alice)
	g.ImportPublic(bob)
	// GnuPG 2.2 always writes PKESK v3 and SEIPD v1 (with MDC) for these
	// keys; no compression and AES-256 must be asked for.
	profile := []string{"--compress-algo", "none", "--cipher-algo", "AES256", "--digest-algo", "SHA256",
		"--recipient", fpr(bob)}

	out, _ := g.MustRun([]byte(testCatalog), append(profile, "--local-user", fpr(alice), "--sign", "--encrypt")...)
	pkesk, seipd := splitFirstPacket(t, out)
	k, err := Unwrap(pkesk, bob)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.OpenCatalog(bytes.NewReader(seipd), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Plaintext) != testCatalog || !c.Signed {
		t.Fatalf("catalog %q signed %v", c.Plaintext, c.Signed)
	}
	if v, err := c.Check(openpgp.EntityList{publicOnly(t, alice)}); v != VerdictPass {
		t.Fatalf("verdict %v: %v", v, err)
	}
	if v := c.Verify(openpgp.EntityList{bob}); v != VerdictFail {
		t.Fatalf("verdict with another key %v", v)
	}

	plain := pseudo(3*chunkSize+99, 21)
	out, _ = g.MustRun(plain, append(profile, "--encrypt")...)
	pkesk, seipd = splitFirstPacket(t, out)
	k, err = Unwrap(pkesk, bob)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openPart(k, seipd)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("part from gpg: %v", err)
	}
	// A header carrying gpg's PKESK works too.
	h := &protocol.Header{Version: 1, From: addrHash("a"), To: addrHash("b"), KeyFingerprint: strings.ToLower(fpr(bob)),
		EncryptedKey: b64(pkesk), Catalog: protocol.RefOf(seipd)}
	b, _ := h.Marshal()
	h, err = protocol.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnwrapHeader(h, bob); err != nil {
		t.Fatal(err)
	}
}

// splitFirstPacket splits an OpenPGP message into its first packet (which
// must be a PKESK) and the rest (which must be exactly one packet).
func splitFirstPacket(t *testing.T, msg []byte) (first, rest []byte) {
	t.Helper()
	r := bytes.NewReader(msg)
	p, err := packet.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(*packet.EncryptedKey); !ok {
		t.Fatalf("first packet %T, want PKESK", p)
	}
	n := len(msg) - r.Len()
	first, rest = msg[:n], msg[n:]
	r = bytes.NewReader(rest)
	p, err = packet.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	se, ok := p.(*packet.SymmetricallyEncrypted)
	if !ok || se.Version != 1 || !se.IntegrityProtected {
		t.Fatalf("second packet %T %+v, want SEIPD v1", p, p)
	}
	if _, err := io.Copy(io.Discard, se.Contents); err != nil || r.Len() != 0 {
		t.Fatalf("more than one packet after the PKESK (%d bytes left, %v)", r.Len(), err)
	}
	return first, rest
}
