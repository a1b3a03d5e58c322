package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var partSizes = []int{0, 1, 2, 15, 16, 17, 21, 22, 23, 40, 511, 512, 513, 8191, 8192, 8384,
	chunkSize - 7, chunkSize - 6, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 7, 1 << 20, 1<<20 + 13}

func TestPartRoundTrip(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	for _, n := range partSizes {
		plain := pseudo(n, uint64(n))
		enc := sealPart(t, k, plain)
		got, err := openPart(k, enc)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: plaintext differs", n)
		}
	}
}

// TestPartSmallWritesAndReads streams with odd write sizes and reads one
// byte at a time: framing must not depend on how the stream is cut.
func TestPartSmallWritesAndReads(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	plain := pseudo(3*chunkSize+1234, 7)
	var buf bytes.Buffer
	w, err := k.EncryptPart(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for rest, step := plain, 1; len(rest) > 0; step = step*3%1021 + 1 {
		n := min(step, len(rest))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := k.DecryptPart(iotest.OneByteReader(bytes.NewReader(buf.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("plaintext differs")
	}
	// The ciphertext is the same as one written in a single Write, apart
	// from the random prefix: same length.
	if one := sealPart(t, k, plain); len(one) != buf.Len() {
		t.Fatalf("length %d for small writes, %d for one write", buf.Len(), len(one))
	}
}

// TestPartProfile checks the packets we write with go-crypto's parser, and
// that go-crypto's own reader decrypts PKESK || part.
func TestPartProfile(t *testing.T) {
	t.Parallel()
	bob := newEntity(t, "bob")
	k := newKey(t)
	for _, n := range []int{0, 100, 3*chunkSize + 5} {
		plain := pseudo(n, 1)
		enc := sealPart(t, k, plain)
		if enc[0] != 0xd2 {
			t.Fatalf("first octet %#x, want 0xd2 (new format tag 18)", enc[0])
		}
		p, err := packet.Read(bytes.NewReader(enc))
		if err != nil {
			t.Fatal(err)
		}
		se, ok := p.(*packet.SymmetricallyEncrypted)
		if !ok || se.Version != 1 || !se.IntegrityProtected {
			t.Fatalf("got %T %+v, want SEIPD v1", p, p)
		}
		pkesk, err := k.Wrap(bob)
		if err != nil {
			t.Fatal(err)
		}
		md, err := openpgp.ReadMessage(io.MultiReader(bytes.NewReader(pkesk), bytes.NewReader(enc)), openpgp.EntityList{bob}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(md.UnverifiedBody)
		if err != nil {
			t.Fatalf("%d bytes: go-crypto: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: go-crypto reads different plaintext", n)
		}
		lit := md.LiteralData
		if lit.Format != 'b' || lit.FileName != "" || lit.Time != 0 || md.IsSigned {
			t.Fatalf("literal %+v signed %v, want format b, no name, date 0, unsigned", lit, md.IsSigned)
		}
	}
}

// TestPartFromGoCrypto decrypts a part that go-crypto wrote (its own
// SEIPD and literal writers, byte-at-a-time CFB): the format is standard.
func TestPartFromGoCrypto(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	for _, n := range []int{0, 1, 700, 100000} {
		plain := pseudo(n, 3)
		enc := goCryptoSealPart(t, k, plain)
		got, err := openPart(k, enc)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: plaintext differs", n)
		}
	}
}

// goCryptoSealPart encrypts with go-crypto's packet writers only.
func goCryptoSealPart(t testing.TB, k *SessionKey, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := goCryptoEncrypt(&buf, k, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func goCryptoEncrypt(w io.Writer, k *SessionKey, plain io.Reader) error {
	lit, err := goCryptoPartWriter(w, k)
	if err != nil {
		return err
	}
	if _, err := io.Copy(lit, plain); err != nil {
		return err
	}
	return lit.Close()
}

// goCryptoPartWriter is EncryptPart done with go-crypto's packet writers.
func goCryptoPartWriter(w io.Writer, k *SessionKey) (io.WriteCloser, error) {
	seipd, err := packet.SerializeSymmetricallyEncrypted(w, packet.CipherAES256, false, packet.CipherSuite{}, k.key[:], nil)
	if err != nil {
		return nil, err
	}
	return packet.SerializeLiteral(seipd, true, "", 0) // Close closes seipd too
}

func TestPartWrongKey(t *testing.T) {
	t.Parallel()
	k, other := newKey(t), newKey(t)
	for _, n := range []int{0, 10, 100000} {
		enc := sealPart(t, k, pseudo(n, 9))
		_, err := openPart(other, enc)
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("%d bytes: wrong key gave %v, want ErrTampered", n, err)
		}
	}
}

// innerSEIPD builds a SEIPD v1 packet with a valid MDC around arbitrary
// contents, to test structure checks behind a good integrity check.
func innerSEIPD(t testing.TB, k *SessionKey, contents ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	sw, err := newSEIPDWriter(&buf, k.key[:])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range contents {
		if _, err := sw.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// literalPacket returns a literal data packet with a definite length.
func literalPacket(format byte, body []byte) []byte {
	var buf bytes.Buffer
	pw := newPacketWriter(&buf, tagLiteral)
	pw.Write([]byte{format, 0, 0, 0, 0, 0})
	pw.Write(body)
	pw.Close()
	return buf.Bytes()
}

func compressedPacket(t testing.TB, inner []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	cw, err := packet.SerializeCompressed(nopCloser{&buf}, packet.CompressionZLIB, nil)
	if err != nil {
		t.Fatal(err)
	}
	cw.Write(inner)
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPartStructure: whatever the integrity check says, a part is exactly
// one SEIPD v1 packet holding exactly one literal packet.
func TestPartStructure(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	good := literalPacket('b', []byte("hello"))
	valid := innerSEIPD(t, k, good)
	if got, err := openPart(k, valid); err != nil || string(got) != "hello" {
		t.Fatalf("control: %q %v", got, err)
	}
	longLit := literalPacket('b', []byte("hello"))
	longLit[1] += 10 // claims 10 more bytes than there are
	var ops bytes.Buffer
	(&packet.OnePassSignature{Version: 3, SigType: 0, Hash: 8, PubKeyAlgo: 22, KeyId: 1, IsLast: true}).Serialize(&ops)
	cases := map[string][]byte{
		"no packets":           innerSEIPD(t, k),
		"two literals":         innerSEIPD(t, k, good, good),
		"compressed literal":   innerSEIPD(t, k, compressedPacket(t, good)),
		"one-pass signature":   innerSEIPD(t, k, ops.Bytes(), good),
		"format x":             innerSEIPD(t, k, literalPacket('x', []byte("hello"))),
		"literal too long":     innerSEIPD(t, k, longLit),
		"garbage after":        innerSEIPD(t, k, good, []byte{0}),
		"data after packet":    append(bytes.Clone(valid), 0),
		"two SEIPD packets":    append(bytes.Clone(valid), valid...),
		"literal not in SEIPD": good,
		"empty":                nil,
		"SED packet (tag 9)":   append([]byte{0xc9}, valid[1:]...),
		"SEIPD version 2":      append([]byte{valid[0], valid[1], 2}, valid[3:]...),
	}
	for name, enc := range cases {
		_, err := openPart(k, enc)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// Formats 'u' and 't' are accepted (bytes unchanged); we write 'b'.
	for _, f := range []byte{'u', 't'} {
		if got, err := openPart(k, innerSEIPD(t, k, literalPacket(f, []byte("a\nb")))); err != nil || string(got) != "a\nb" {
			t.Errorf("format %c: %q %v", f, got, err)
		}
	}
}

func TestPartWriteAfterClose(t *testing.T) {
	t.Parallel()
	w, err := newKey(t).EncryptPart(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, fmt.Errorf("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestPartWriteError(t *testing.T) {
	t.Parallel()
	w, err := newKey(t).EncryptPart(&failWriter{n: 100000})
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(make([]byte, 200000))
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("underlying write error lost")
	}
}

// TestCFBMatchesGoCrypto compares our block-wise CFB with go-crypto's
// byte-wise OpenPGP CFB on the same key and prefix, for every split point.
func TestCFBMatchesGoCrypto(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	plain := pseudo(1000, 5)
	a := goCryptoSealPart(t, k, plain)
	got, err := openPart(k, a)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatal("cannot read go-crypto's part", err)
	}
	// Decrypt with different cuts.
	for cut := 0; cut < 40; cut++ {
		r, err := k.DecryptPart(io.MultiReader(bytes.NewReader(a[:cut+30]), bytes.NewReader(a[cut+30:])))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(iotest.HalfReader(r))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("cut %d: %v", cut, err)
		}
	}
}
