package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"tollbridge/protocol"
)

// FuzzOpen feeds arbitrary bytes to everything that reads data from the
// wire: protocol.ParseHeader with UnwrapHeader, Unwrap, DecryptPart,
// OpenCatalog (and Verify); protocol's FuzzParseHeader covers the header
// parser alone. None may
// panic; errors must wrap our sentinels; and no input may decrypt to
// plaintext other than the seeds' own (forging a part would need the
// session key). Keys are fixed (testdata/fuzz-recipient.pgp, a test-only
// unprotected key, and fuzzSessionKey) so that seeds stay valid across runs
// and worker processes. Regenerate the seeds with SEAL_REGEN_FUZZ=1 go test
// -run TestRegenerateFuzzSeeds ./seal/ (and the key too with
// SEAL_REGEN_FUZZ_KEY=1, which invalidates stored seeds and crashers).

var fuzzSessionKey = SessionKey{key: [32]byte([]byte("tollbridge-seal-fuzz-session-key"))}

const fuzzPartPlain = "a block of plaintext"

const fuzzKeyFile = "testdata/fuzz-recipient.pgp"

func fuzzEntity(t testing.TB) *openpgp.Entity {
	t.Helper()
	f, err := os.Open(fuzzKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := openpgp.ReadEntity(packet.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// fuzzSeeds returns valid inputs under the fixed keys plus a few broken ones.
func fuzzSeeds(t testing.TB, e *openpgp.Entity) [][]byte {
	k := &fuzzSessionKey
	pkesk, err := k.Wrap(e)
	if err != nil {
		t.Fatal(err)
	}
	part := sealPart(t, k, []byte(fuzzPartPlain))
	big := sealPart(t, k, bytes.Repeat([]byte(fuzzPartPlain), 4000)) // spans chunks
	signed := sealCatalog(t, k, []byte(testCatalog), e)
	unsigned := sealCatalog(t, k, []byte(testCatalog), nil)
	h, err := k.NewHeader(e, protocol.Header{From: addrHash("a@x"), To: addrHash("b@y"), Catalog: protocol.RefOf(signed), Parts: []protocol.HeaderPart{
		{ID: "b1", Kind: protocol.KindBlock, Size: int64(len(part)), SHA256: protocol.RefOf(part).SHA256}}})
	if err != nil {
		t.Fatal(err)
	}
	header, _ := h.Marshal()
	return [][]byte{pkesk, part, big[:4000], signed, unsigned, header, {}, {0xd2, 0x00}, []byte(`{"version":1}`)}
}

// TestRegenerateFuzzSeeds writes the seed corpus when SEAL_REGEN_FUZZ=1
// (and a new fuzz key first when SEAL_REGEN_FUZZ_KEY=1).
func TestRegenerateFuzzSeeds(t *testing.T) {
	if os.Getenv("SEAL_REGEN_FUZZ") != "1" {
		t.Skip("set SEAL_REGEN_FUZZ=1 to regenerate")
	}
	if os.Getenv("SEAL_REGEN_FUZZ_KEY") == "1" {
		e := newEntity(t, "fuzz")
		var buf bytes.Buffer
		if err := e.SerializePrivate(&buf, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fuzzKeyFile, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSeeds(t, "FuzzOpen", fuzzSeeds(t, fuzzEntity(t)))
	writeSeeds(t, "FuzzInner", fuzzInnerSeeds(t, fuzzEntity(t)))
}

func writeSeeds(t *testing.T, target string, seeds [][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// knownPlain reports whether b is the plaintext of a seed. (An unsigned
// catalog and a part have the same format, so either opens as the other.)
func knownPlain(b []byte) bool {
	return string(b) == fuzzPartPlain || string(b) == testCatalog ||
		bytes.Equal(b, bytes.Repeat([]byte(fuzzPartPlain), 4000))
}

func FuzzOpen(f *testing.F) {
	e := fuzzEntity(f)
	keys := openpgp.EntityList{e}
	for _, s := range fuzzSeeds(f, e) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wantSentinel := func(what string, err error, sentinels ...error) {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("%s: error %v wraps none of %v", what, err, sentinels)
		}

		if h, err := protocol.ParseHeader(data); err == nil {
			b, err := h.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := protocol.ParseHeader(b); err != nil {
				t.Fatalf("re-parse of accepted header: %v", err)
			}
			if k, err := UnwrapHeader(h, e); err == nil && k.key != fuzzSessionKey.key {
				t.Fatal("header unwrapped to a foreign key")
			}
		} else {
			wantSentinel("ParseHeader", err, ErrMalformed)
		}

		if k, err := Unwrap(data, e); err == nil {
			if k.key != fuzzSessionKey.key {
				t.Fatal("Unwrap returned a foreign key")
			}
		} else {
			wantSentinel("Unwrap", err, ErrMalformed, ErrTampered, ErrWrongKey)
		}

		if r, err := fuzzSessionKey.DecryptPart(bytes.NewReader(data)); err == nil {
			got, err := io.ReadAll(r)
			if err == nil && !knownPlain(got) {
				t.Fatalf("decrypted to unexpected plaintext %q", got)
			}
			if err != nil {
				wantSentinel("part Read", err, ErrMalformed, ErrTampered)
			}
		} else {
			wantSentinel("DecryptPart", err, ErrMalformed, ErrTampered)
		}

		if c, err := fuzzSessionKey.OpenCatalog(bytes.NewReader(data), 1<<16); err == nil {
			if !knownPlain(c.Plaintext) {
				t.Fatalf("catalog opened to unexpected plaintext %q", c.Plaintext)
			}
			c.Verify(keys)
		} else {
			wantSentinel("OpenCatalog", err, ErrMalformed, ErrTampered, ErrTooLarge)
		}
	})
}

// FuzzInner fuzzes the packets inside a SEIPD packet with a valid MDC, which
// FuzzOpen can hardly reach through the encryption: the part and catalog
// structure checks and go-crypto's literal, one-pass signature and
// signature parsers. Nothing may panic, and a catalog signature may only
// pass for the catalog the fuzz key really signed.
func FuzzInner(f *testing.F) {
	e := fuzzEntity(f)
	keys := openpgp.EntityList{e}
	k := &fuzzSessionKey
	for _, s := range fuzzInnerSeeds(f, e) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, inner []byte) {
		enc := innerSEIPD(t, k, inner)
		if r, err := k.DecryptPart(bytes.NewReader(enc)); err == nil {
			if _, err := io.ReadAll(r); err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("part Read: %v", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("DecryptPart: %v", err)
		}
		c, err := k.OpenCatalog(bytes.NewReader(enc), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("OpenCatalog: %v", err)
			}
			return
		}
		if c.Verify(keys) == VerdictPass && string(c.Plaintext) != testCatalog {
			t.Fatalf("signature passed for %q", c.Plaintext)
		}
	})
}

// fuzzInnerSeeds returns packet sequences for FuzzInner: valid and broken
// parts and catalogs.
func fuzzInnerSeeds(t testing.TB, e *openpgp.Entity) [][]byte {
	k := &fuzzSessionKey
	c, err := k.OpenCatalog(bytes.NewReader(sealCatalog(t, k, []byte(testCatalog), e)), 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	var ops bytes.Buffer
	c.ops.Serialize(&ops)
	lit := literalPacket('b', []byte(testCatalog))
	var streamed bytes.Buffer
	pw := newPacketWriter(&streamed, tagLiteral)
	pw.Write(literalHeader[:])
	pw.Write(bytes.Repeat([]byte("x"), chunkSize+10))
	pw.Close()
	return [][]byte{
		lit,
		bytes.Join([][]byte{ops.Bytes(), lit, c.sig}, nil),
		bytes.Join([][]byte{ops.Bytes(), literalPacket('b', []byte("other")), c.sig}, nil),
		compressedPacket(t, lit),
		bytes.Join([][]byte{ops.Bytes(), ops.Bytes(), lit, c.sig, c.sig}, nil),
		streamed.Bytes()[:2000],
	}
}
