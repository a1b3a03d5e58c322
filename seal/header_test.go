package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/protocol"
)

func addrHash(a string) string {
	s := sha256.Sum256([]byte(strings.ToLower(a)))
	return hex.EncodeToString(s[:])
}

// sealed is one message sealed once: session key, encrypted catalog and
// parts, and their refs.
type sealed struct {
	key     *SessionKey
	catalog []byte
	parts   [][]byte
	plain   [][]byte
	ref     protocol.Ref
	refs    []protocol.HeaderPart
}

func sealMessage(t testing.TB, sender *openpgp.Entity, sizes ...int) *sealed {
	t.Helper()
	s := &sealed{key: newKey(t)}
	s.catalog = sealCatalog(t, s.key, []byte(testCatalog), sender)
	s.ref = protocol.RefOf(s.catalog)
	for i, n := range sizes {
		plain := pseudo(n, uint64(i))
		hw := NewHashingWriter(nil)
		var buf bytes.Buffer
		w, err := s.key.EncryptPart(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		hw.Write(buf.Bytes())
		s.parts = append(s.parts, buf.Bytes())
		s.plain = append(s.plain, plain)
		ref := hw.Ref()
		kind := protocol.KindBlock
		if i > 0 {
			kind = protocol.KindAttachment
		}
		s.refs = append(s.refs, protocol.HeaderPart{ID: fmt.Sprintf("p%d", i+1), Kind: kind, Size: ref.Size, SHA256: ref.SHA256})
	}
	return s
}

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	alice, bob := newEntity(t, "alice"), newEntity(t, "bob")
	s := sealMessage(t, alice, 120, 81234)
	h, err := s.key.NewHeader(bob, protocol.Header{From: addrHash("alice@example.org"), To: addrHash("bob@example.net"), Catalog: s.ref, Parts: s.refs})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Field order as in docs/protocol.md §3.3.
	order := []string{`{"version":1,"from":"`, `","to":"`, `","key_fingerprint":"`, `","encrypted_key":"`,
		`","catalog":{"size":`, `,"sha256":"`, `"},"parts":[{"id":"p1","kind":"block","size":`, `,"sha256":"`}
	rest := string(b)
	for _, o := range order {
		i := strings.Index(rest, o)
		if i < 0 {
			t.Fatalf("%q not in order in %s", o, b)
		}
		rest = rest[i+len(o):]
	}
	if h.KeyFingerprint != hex.EncodeToString(bob.PrimaryKey.Fingerprint) || len(h.KeyFingerprint) != 40 {
		t.Fatalf("key_fingerprint %s", h.KeyFingerprint)
	}
	if len(b) > 1024 {
		t.Errorf("header is %d bytes", len(b))
	}
	h2, err := protocol.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := h2.Marshal(); !bytes.Equal(b, b2) {
		t.Fatalf("re-marshal differs:\n%s\n%s", b, b2)
	}
	k, err := UnwrapHeader(h2, bob)
	if err != nil {
		t.Fatal(err)
	}
	if k.key != s.key.key {
		t.Fatal("unwrapped a different key")
	}
	if _, err := UnwrapHeader(h2, alice); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("other recipient's key: %v", err)
	}
	// Parts may be empty (a message whose bodies are all empty).
	h3, err := s.key.NewHeader(bob, protocol.Header{From: h.From, To: h.To, Catalog: s.ref})
	if err != nil {
		t.Fatal(err)
	}
	if b3, _ := h3.Marshal(); !bytes.Contains(b3, []byte(`"parts":[]`)) {
		t.Fatalf("no parts: %s", b3)
	}
}

// TestMultiRecipient seals once and makes headers for 1, 3 and 50
// recipients. By construction the only per-recipient work is NewHeader,
// which takes no part bytes: one PKESK. Every recipient decrypts the very
// same catalog and part bytes.
func TestMultiRecipient(t *testing.T) {
	t.Parallel()
	alice := newEntity(t, "alice")
	s := sealMessage(t, alice, 0, 5000, 3*chunkSize)
	for _, n := range []int{1, 3, 50} {
		seen := make(map[string]bool)
		for i := range n {
			rcpt := newEntity(t, fmt.Sprintf("r%d", i))
			h, err := s.key.NewHeader(rcpt, protocol.Header{From: addrHash("alice@example.org"), To: addrHash(fmt.Sprintf("r%d@example.net", i)), Catalog: s.ref, Parts: s.refs})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := h.Marshal()
			if len(b) > 1024 {
				t.Errorf("header %d bytes", len(b))
			}
			if seen[h.EncryptedKey] {
				t.Fatal("two recipients got the same PKESK")
			}
			seen[h.EncryptedKey] = true
			h, err = protocol.ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			k, err := UnwrapHeader(h, rcpt)
			if err != nil {
				t.Fatal(err)
			}
			if protocol.RefOf(s.catalog) != h.Catalog {
				t.Fatal("catalog ref")
			}
			c, err := k.OpenCatalog(bytes.NewReader(s.catalog), 1<<20)
			if err != nil || c.Verify(openpgp.EntityList{alice}) != VerdictPass {
				t.Fatalf("recipient %d: catalog: %v", i, err)
			}
			// Decrypting every part for 50 recipients is slow and adds
			// nothing; check them for the first recipients.
			if i >= 3 {
				continue
			}
			for j, enc := range s.parts {
				if ref := protocol.RefOf(enc); ref.Size != h.Parts[j].Size || ref.SHA256 != h.Parts[j].SHA256 {
					t.Fatalf("part %d ref", j)
				}
				got, err := openPart(k, enc)
				if err != nil || !bytes.Equal(got, s.plain[j]) {
					t.Fatalf("recipient %d part %d: %v", i, j, err)
				}
			}
		}
	}
}

// TestOutboxKey keeps the session key wrapped to the bridge's outbox key and
// makes a recipient's header later from it (docs/rules.md §4).
func TestOutboxKey(t *testing.T) {
	t.Parallel()
	alice, bob, outbox := newEntity(t, "alice"), newEntity(t, "bob"), newEntity(t, "outbox")
	s := sealMessage(t, alice, 100)
	kept, err := s.key.Wrap(outbox)
	if err != nil {
		t.Fatal(err)
	}
	// ... later, in an outbox worker, with bob's key now known:
	k, err := Unwrap(kept, outbox)
	if err != nil {
		t.Fatal(err)
	}
	h, err := k.NewHeader(publicOnly(t, bob), protocol.Header{From: addrHash("alice@example.org"), To: addrHash("bob@example.net"), Catalog: s.ref, Parts: s.refs})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Marshal()
	h, err = protocol.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := UnwrapHeader(h, bob)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openPart(bk, s.parts[0]); err != nil || !bytes.Equal(got, s.plain[0]) {
		t.Fatalf("bob reads part: %v", err)
	}
	if _, err := Unwrap(kept, bob); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("bob unwraps the outbox copy: %v", err)
	}
}

func TestUnwrap(t *testing.T) {
	t.Parallel()
	bob, carol := newEntity(t, "bob"), newEntity(t, "carol")
	k := newKey(t)
	pkesk, err := k.Wrap(bob)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := parsePKESK(pkesk)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := bob.EncryptionKey(timeNow())
	if ek.Version != 3 || ek.KeyId != enc.PublicKey.KeyId || ek.Algo != 18 {
		t.Fatalf("PKESK v%d key %X algo %d", ek.Version, ek.KeyId, ek.Algo)
	}
	// Wildcard key id 0.
	wild := bytes.Clone(pkesk)
	idAt := bytes.Index(wild, keyIDBytes(ek.KeyId))
	copy(wild[idAt:], make([]byte, 8))
	if got, err := Unwrap(wild, bob); err != nil || got.key != k.key {
		t.Fatalf("wildcard: %v", err)
	}
	if _, err := Unwrap(wild, carol); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wildcard, other key: %v", err)
	}
	if _, err := Unwrap(pkesk, carol); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := Unwrap(pkesk, publicOnly(t, bob)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("public key only: %v", err)
	}
	if err := bob.EncryptPrivateKeys([]byte("pw"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Unwrap(pkesk, bob); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("locked key: %v", err)
	}
	if _, err := Unwrap(append(bytes.Clone(pkesk), 0), carol); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func keyIDBytes(id uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(id >> (56 - 8*i))
	}
	return b
}

// TestHashingWriter checks size and SHA-256 of what passes through.
func TestHashingWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	hw := NewHashingWriter(&buf)
	hw.Write([]byte("hello "))
	hw.Write([]byte("world"))
	want := sha256.Sum256([]byte("hello world"))
	if r := hw.Ref(); r.Size != 11 || r.SHA256 != hex.EncodeToString(want[:]) || buf.String() != "hello world" {
		t.Fatalf("%+v", r)
	}
	if protocol.RefOf([]byte("hello world")) != hw.Ref() {
		t.Fatal("RefOf differs")
	}
}

// TestNewHeaderValidates: NewHeader checks what it makes by the
// protocol's rules (protocol's own tests cover ParseHeader's).
func TestNewHeaderValidates(t *testing.T) {
	t.Parallel()
	bob := newEntity(t, "bob")
	s := sealMessage(t, nil, 10, 20)
	if _, err := s.key.NewHeader(bob, protocol.Header{From: "nothex", To: addrHash("b@y"), Catalog: s.ref, Parts: s.refs}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "from") {
		t.Errorf("NewHeader with bad from: %v", err)
	}
	dup := append(append([]protocol.HeaderPart{}, s.refs...), s.refs[0])
	if _, err := s.key.NewHeader(bob, protocol.Header{From: addrHash("a@x"), To: addrHash("b@y"), Catalog: s.ref, Parts: dup}); !errors.Is(err, ErrMalformed) {
		t.Errorf("NewHeader with a part twice: %v", err)
	}
}
