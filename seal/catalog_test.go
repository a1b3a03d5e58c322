package seal

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestCatalogSigned(t *testing.T) {
	t.Parallel()
	alice, mallory := newEntity(t, "alice"), newEntity(t, "mallory")
	k := newKey(t)
	enc := sealCatalog(t, k, []byte(testCatalog), alice)
	c, err := k.OpenCatalog(bytes.NewReader(enc), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Plaintext) != testCatalog || !c.Signed || c.SignerKeyID != alice.PrimaryKey.KeyId {
		t.Fatalf("got %q signed %v key %X", c.Plaintext, c.Signed, c.SignerKeyID)
	}
	if v, err := c.Check(openpgp.EntityList{alice}); v != VerdictPass {
		t.Fatalf("right key: %v %v", v, err)
	}
	// Public part only, as fetched by WKD.
	if v := c.Verify(openpgp.EntityList{publicOnly(t, alice)}); v != VerdictPass {
		t.Fatalf("right public key: %v", v)
	}
	if v := c.Verify(openpgp.EntityList{mallory}); v != VerdictFail {
		t.Fatalf("other key: %v", v)
	}
	if v := c.Verify(nil); v != VerdictFail {
		t.Fatalf("no key: %v", v)
	}
	if v := c.Verify(openpgp.EntityList{mallory, alice}); v != VerdictPass {
		t.Fatalf("key list holding the right key: %v", v)
	}

	// A modified plaintext or signature fails.
	changed := *c
	changed.Plaintext = bytes.Replace(c.Plaintext, []byte("Hello"), []byte("Hellp"), 1)
	if v := changed.Verify(openpgp.EntityList{alice}); v != VerdictFail {
		t.Fatalf("modified catalog: %v", v)
	}
	for i := len(c.sig) - 40; i < len(c.sig); i++ {
		badSig := *c
		badSig.sig = bytes.Clone(c.sig)
		badSig.sig[i] ^= 0x10
		if v := badSig.Verify(openpgp.EntityList{alice}); v != VerdictFail {
			t.Fatalf("signature byte %d modified: %v", i, v)
		}
	}
}

// TestCatalogSignatureSwapped builds a catalog whose (intact, MDC-valid)
// signature belongs to other content: Verify fails.
func TestCatalogSignatureSwapped(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	k := newKey(t)
	a, _ := k.OpenCatalog(bytes.NewReader(sealCatalog(t, k, []byte(testCatalog), alice)), 1<<20)
	b, _ := k.OpenCatalog(bytes.NewReader(sealCatalog(t, k, []byte(testCatalog+" "), alice)), 1<<20)
	var ops bytes.Buffer
	if err := a.ops.Serialize(&ops); err != nil {
		t.Fatal(err)
	}
	enc := innerSEIPD(t, k, ops.Bytes(), literalPacket('b', a.Plaintext), b.sig)
	c, err := k.OpenCatalog(bytes.NewReader(enc), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Verify(openpgp.EntityList{alice}); v != VerdictFail {
		t.Fatalf("swapped signature: %v", v)
	}
	// The same assembly with the matching signature passes (control).
	enc = innerSEIPD(t, k, ops.Bytes(), literalPacket('b', a.Plaintext), a.sig)
	if c, err := k.OpenCatalog(bytes.NewReader(enc), 1<<20); err != nil || c.Verify(openpgp.EntityList{alice}) != VerdictPass {
		t.Fatalf("control: %v", err)
	}
}

func TestCatalogUnsigned(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	k := newKey(t)
	enc := sealCatalog(t, k, []byte(testCatalog), nil)
	c, err := k.OpenCatalog(bytes.NewReader(enc), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Plaintext) != testCatalog || c.Signed {
		t.Fatalf("got %q signed %v", c.Plaintext, c.Signed)
	}
	if v := c.Verify(openpgp.EntityList{alice}); v != VerdictNone || v.String() != "none" {
		t.Fatalf("unsigned: %v", v)
	}
	if VerdictPass.String() != "pass" || VerdictFail.String() != "fail" {
		t.Fatal("verdict strings")
	}
}

func TestCatalogLimit(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	enc := sealCatalog(t, k, []byte(testCatalog), nil)
	n := int64(len(testCatalog))
	if _, err := k.OpenCatalog(bytes.NewReader(enc), n); err != nil {
		t.Fatalf("limit = size: %v", err)
	}
	if _, err := k.OpenCatalog(bytes.NewReader(enc), n-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit = size-1: %v", err)
	}
	if _, err := k.OpenCatalog(bytes.NewReader(enc), 0); err == nil {
		t.Fatal("limit 0 accepted")
	}
}

func TestCatalogEmptyAndLarge(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	k := newKey(t)
	for _, n := range []int{0, 1, 511, 512, 513, 100000} {
		plain := pseudo(n, 4)
		c, err := k.OpenCatalog(bytes.NewReader(sealCatalog(t, k, plain, alice)), 1<<20)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(c.Plaintext, plain) || c.Verify(openpgp.EntityList{alice}) != VerdictPass {
			t.Fatalf("%d bytes: wrong plaintext or signature", n)
		}
	}
}

// TestCatalogProfile reads PKESK || catalog with go-crypto's ReadMessage,
// which checks the signature too, and checks the packets we wrote.
func TestCatalogProfile(t *testing.T) {
	t.Parallel()
	alice, bob := newEntity(t, "alice"), newEntity(t, "bob")
	k := newKey(t)
	enc := sealCatalog(t, k, []byte(testCatalog), alice)
	pkesk, err := k.Wrap(bob)
	if err != nil {
		t.Fatal(err)
	}
	md, err := openpgp.ReadMessage(io.MultiReader(bytes.NewReader(pkesk), bytes.NewReader(enc)), openpgp.EntityList{bob, publicOnly(t, alice)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != testCatalog || !md.IsSigned || md.SignatureError != nil || md.Signature == nil {
		t.Fatalf("go-crypto: signed %v err %v", md.IsSigned, md.SignatureError)
	}
	sig := md.Signature
	if sig.SigType != packet.SigTypeBinary || sig.Hash != crypto.SHA256 || sig.Version != 4 || sig.PubKeyAlgo != packet.PubKeyAlgoEdDSA {
		t.Fatalf("signature %+v", sig)
	}
	if lit := md.LiteralData; lit.Format != 'b' || lit.FileName != "" || lit.Time != 0 {
		t.Fatalf("literal %+v", lit)
	}
	if time.Since(sig.CreationTime) > time.Minute {
		t.Fatalf("signature time %v", sig.CreationTime)
	}
}

func TestCatalogStructure(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	k := newKey(t)
	c, err := k.OpenCatalog(bytes.NewReader(sealCatalog(t, k, []byte(testCatalog), alice)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var ops, notLast bytes.Buffer
	c.ops.Serialize(&ops)
	o := *c.ops
	o.IsLast = false
	o.Serialize(&notLast)
	lit := literalPacket('b', c.Plaintext)
	cases := map[string][]byte{
		"no packets":          innerSEIPD(t, k),
		"signature missing":   innerSEIPD(t, k, ops.Bytes(), lit),
		"two signatures":      innerSEIPD(t, k, ops.Bytes(), lit, c.sig, c.sig),
		"nested one-pass":     innerSEIPD(t, k, notLast.Bytes(), ops.Bytes(), lit, c.sig, c.sig),
		"literal missing":     innerSEIPD(t, k, ops.Bytes(), c.sig),
		"compressed":          innerSEIPD(t, k, compressedPacket(t, append(append(ops.Bytes(), lit...), c.sig...))),
		"compressed literal":  innerSEIPD(t, k, ops.Bytes(), compressedPacket(t, lit), c.sig),
		"signature first":     innerSEIPD(t, k, c.sig, lit),
		"unsigned with extra": innerSEIPD(t, k, lit, lit),
		"data after":          append(innerSEIPD(t, k, lit), 0xc0),
	}
	for name, enc := range cases {
		if _, err := k.OpenCatalog(bytes.NewReader(enc), 1<<20); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestSealCatalogSignerChecks(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	k := newKey(t)
	if err := k.SealCatalog(io.Discard, []byte("x"), publicOnly(t, alice)); err == nil {
		t.Fatal("signed with a public key only")
	}
	locked := newEntity(t, "locked")
	if err := locked.EncryptPrivateKeys([]byte("pw"), nil); err != nil {
		t.Fatal(err)
	}
	if err := k.SealCatalog(io.Discard, []byte("x"), locked); err == nil {
		t.Fatal("signed with a locked key")
	}
	v6, err := openpgp.NewEntity("v6", "", "v6@example.org", &packet.Config{V6Keys: true, Algorithm: packet.PubKeyAlgoEd25519})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SealCatalog(io.Discard, []byte("x"), v6); err == nil {
		t.Fatal("signed with a v6 key GnuPG 2.2 cannot read")
	}
}

// publicOnly returns the public part of e, as a remote key would be.
func publicOnly(t testing.TB, e *openpgp.Entity) *openpgp.Entity {
	t.Helper()
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	pub, err := openpgp.ReadEntity(packet.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestCatalogOnePassNestedZero opens a catalog framed as PGPy writes it:
// the one-pass signature packet of the only signature has its nested flag
// at 0 (IsLast false). docs/protocol.md §3.6 accepts it whatever the flag says, as
// GnuPG and go-crypto do; what counts is that exactly one signature packet
// follows the literal data and verifies.
func TestCatalogOnePassNestedZero(t *testing.T) {
	t.Parallel()
	alice, mallory := newEntity(t, "alice"), newEntity(t, "mallory")
	k := newKey(t)
	c, err := k.OpenCatalog(bytes.NewReader(sealCatalog(t, k, []byte(testCatalog), alice)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	o := *c.ops
	o.IsLast = false
	var nested0 bytes.Buffer
	if err := o.Serialize(&nested0); err != nil {
		t.Fatal(err)
	}
	// The flag is the packet's last octet: make sure it really is 0.
	if b := nested0.Bytes(); b[len(b)-1] != 0 {
		t.Fatalf("one-pass signature packet ends in %#02x, want nested flag 0", b[len(b)-1])
	}
	lit := literalPacket('b', c.Plaintext)

	got, err := k.OpenCatalog(bytes.NewReader(innerSEIPD(t, k, nested0.Bytes(), lit, c.sig)), 1<<20)
	if err != nil {
		t.Fatalf("one-pass signature with nested = 0: %v", err)
	}
	if !got.Signed || got.SignerKeyID != alice.PrimaryKey.KeyId || string(got.Plaintext) != testCatalog {
		t.Fatalf("got %q signed %v key %X", got.Plaintext, got.Signed, got.SignerKeyID)
	}
	if v, err := got.Check(openpgp.EntityList{publicOnly(t, alice)}); v != VerdictPass {
		t.Fatalf("signer's key: %v %v", v, err)
	}
	if v := got.Verify(openpgp.EntityList{mallory}); v != VerdictFail {
		t.Fatalf("other key: %v", v)
	}

	// Still exactly one signature: two after the literal data are refused,
	// whatever the flag, and so is a second one-pass signature.
	for name, enc := range map[string][]byte{
		"two signatures, nested 0":   innerSEIPD(t, k, nested0.Bytes(), lit, c.sig, c.sig),
		"two one-pass, nested 0 + 0": innerSEIPD(t, k, nested0.Bytes(), nested0.Bytes(), lit, c.sig, c.sig),
	} {
		if _, err := k.OpenCatalog(bytes.NewReader(enc), 1<<20); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}
