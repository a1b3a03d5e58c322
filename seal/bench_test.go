package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"tollbridge/protocol"
)

// Throughput benchmarks over a 100 MiB part. Run with
//
//	go test -run NONE -bench . -benchtime 3x ./seal/
//
// BenchmarkSealVsBare and BenchmarkOpenVsBare time our part writer/reader
// and a bare AES-256 CFB stream over the same bytes in the same run and
// report the ratio; the GoCrypto benchmarks are go-crypto's own packet
// writer/reader (byte-at-a-time OpenPGP CFB), the "before".

const benchSize = 100 << 20

// benchBuf is the write/read size callers use (io.Copy's is 32 KiB).
const benchBuf = 32 << 10

func benchPlain(b *testing.B) []byte {
	b.Helper()
	return pseudo(benchSize, 99)
}

func sealTo(w io.Writer, k *SessionKey, plain []byte) error {
	pw, err := k.EncryptPart(w)
	if err != nil {
		return err
	}
	for p := plain; len(p) > 0; {
		n := min(benchBuf, len(p))
		if _, err := pw.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return pw.Close()
}

func openFrom(k *SessionKey, enc []byte) error {
	r, err := k.DecryptPart(bytes.NewReader(enc))
	if err != nil {
		return err
	}
	_, err = io.CopyBuffer(io.Discard, r, make([]byte, benchBuf))
	return err
}

func bareCFB(plain []byte, decrypt bool) {
	block, _ := aes.NewCipher(make([]byte, 32))
	var s cipher.Stream
	if decrypt {
		s = cipher.NewCFBDecrypter(block, make([]byte, 16)) //nolint:staticcheck // the baseline SEIPD v1 is built on
	} else {
		s = cipher.NewCFBEncrypter(block, make([]byte, 16)) //nolint:staticcheck
	}
	buf := make([]byte, benchBuf)
	for p := plain; len(p) > 0; {
		n := min(benchBuf, len(p))
		s.XORKeyStream(buf[:n], p[:n])
		p = p[n:]
	}
}

func bareCTR(plain []byte) {
	block, _ := aes.NewCipher(make([]byte, 32))
	s := cipher.NewCTR(block, make([]byte, 16))
	buf := make([]byte, benchBuf)
	for p := plain; len(p) > 0; {
		n := min(benchBuf, len(p))
		s.XORKeyStream(buf[:n], p[:n])
		p = p[n:]
	}
}

func BenchmarkSealPart(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if err := sealTo(io.Discard, k, plain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealPartHashed is the real sealing path: encrypt and compute the
// size and SHA-256 of the ciphertext for the header.
func BenchmarkSealPartHashed(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if err := sealTo(NewHashingWriter(nil), k, plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenPart(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	var enc bytes.Buffer
	sealTo(&enc, k, plain)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if err := openFrom(k, enc.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSmallPart opens a 2 KiB part, the size of an ordinary
// mail's text: the cost is per part (allocation, key setup), not per
// byte.
func BenchmarkOpenSmallPart(b *testing.B) {
	k := newKey(b)
	plain := bytes.Repeat([]byte("Line of an ordinary message body.\r\n"), 2048/35)
	var enc bytes.Buffer
	if err := sealTo(&enc, k, plain); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := k.OpenPart(io.NopCloser(bytes.NewReader(enc.Bytes())))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoCryptoSeal(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		// onlyReader hides bytes.Reader's WriterTo, so that go-crypto gets
		// the same 32 KiB writes as our writer.
		if err := goCryptoEncrypt(io.Discard, k, onlyReader{bytes.NewReader(plain)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoCryptoOpen(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	var enc bytes.Buffer
	sealTo(&enc, k, plain)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if err := goCryptoDecrypt(k, enc.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// goCryptoDecrypt reads a part with go-crypto's packet reader and its
// SEIPD decrypter, checking the MDC.
func goCryptoDecrypt(k *SessionKey, enc []byte) error {
	p, err := packet.Read(bytes.NewReader(enc))
	if err != nil {
		return err
	}
	dec, err := p.(*packet.SymmetricallyEncrypted).Decrypt(packet.CipherAES256, k.key[:])
	if err != nil {
		return err
	}
	lp, err := packet.Read(dec)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(io.Discard, lp.(*packet.LiteralData).Body, make([]byte, benchBuf)); err != nil {
		return err
	}
	return dec.Close()
}

func BenchmarkBareCFBEncrypt(b *testing.B) {
	plain := benchPlain(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		bareCFB(plain, false)
	}
}

func BenchmarkBareCFBDecrypt(b *testing.B) {
	plain := benchPlain(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		bareCFB(plain, true)
	}
}

func BenchmarkBareCTR(b *testing.B) {
	plain := benchPlain(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		bareCTR(plain)
	}
}

// BenchmarkSealVsBare alternates sealing and bare CFB encryption of the
// same 100 MiB and reports both rates and their ratio.
func BenchmarkSealVsBare(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	var seal, bare time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if err := sealTo(io.Discard, k, plain); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		bareCFB(plain, false)
		seal, bare = seal+t1.Sub(t0), bare+time.Since(t1)
	}
	reportRatio(b, seal, bare)
}

// BenchmarkOpenVsBare does the same for opening against bare CFB
// decryption.
func BenchmarkOpenVsBare(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	var enc bytes.Buffer
	sealTo(&enc, k, plain)
	var open, bare time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if err := openFrom(k, enc.Bytes()); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		bareCFB(plain, true)
		open, bare = open+t1.Sub(t0), bare+time.Since(t1)
	}
	reportRatio(b, open, bare)
}

func reportRatio(b *testing.B, ours, bare time.Duration) {
	n := float64(b.N) * benchSize / 1e6
	b.ReportMetric(n/ours.Seconds(), "ours-MB/s")
	b.ReportMetric(n/bare.Seconds(), "bareCFB-MB/s")
	b.ReportMetric(bare.Seconds()/ours.Seconds(), "ratio")
}

// BenchmarkWrap is the cost of one more recipient: one PKESK. It does not
// depend on the message size.
func BenchmarkWrap(b *testing.B) {
	bob, k := newEntity(b, "bob"), newKey(b)
	for b.Loop() {
		if _, err := k.Wrap(bob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewHeader(b *testing.B) {
	bob, k := newEntity(b, "bob"), newKey(b)
	parts := []protocol.HeaderPart{{ID: "b1", Kind: protocol.KindBlock, Size: 1, SHA256: addrHash("x")}}
	for b.Loop() {
		h, err := k.NewHeader(bob, protocol.Header{From: addrHash("a"), To: addrHash("b"), Catalog: protocol.RefOf(nil), Parts: parts})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	bob, k := newEntity(b, "bob"), newKey(b)
	pkesk, _ := k.Wrap(bob)
	for b.Loop() {
		if _, err := Unwrap(pkesk, bob); err != nil {
			b.Fatal(err)
		}
	}
}

type onlyReader struct{ io.Reader }

// BenchmarkSealWriteSize compares our part writer with go-crypto's for
// different caller write sizes: go-crypto's partialLengthWriter flushes one
// chunk per Write (so small writes make small chunks) and buffers a whole
// large Write in a bytes.Buffer before encrypting it byte by byte.
func BenchmarkSealWriteSize(b *testing.B) {
	plain, k := benchPlain(b), newKey(b)
	for _, size := range []int{512, 32 << 10, benchSize} {
		for _, impl := range []string{"ours", "gocrypto"} {
			b.Run(fmt.Sprintf("%s/%d", impl, size), func(b *testing.B) {
				b.SetBytes(benchSize)
				for b.Loop() {
					var w io.WriteCloser
					var err error
					if impl == "ours" {
						w, err = k.EncryptPart(io.Discard)
					} else {
						w, err = goCryptoPartWriter(io.Discard, k)
					}
					if err != nil {
						b.Fatal(err)
					}
					for p := plain; len(p) > 0; {
						n := min(size, len(p))
						if _, err := w.Write(p[:n]); err != nil {
							b.Fatal(err)
						}
						p = p[n:]
					}
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
