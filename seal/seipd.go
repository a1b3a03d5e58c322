package seal

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/sha1"
	"hash"
	"io"
)

// mdcTrailerSize is the size of the MDC packet that ends the plaintext of a
// SEIPD v1 packet: tag octet, length octet (20), SHA-1 digest.
const mdcTrailerSize = 2 + sha1.Size

// prefixSize is the random prefix of SEIPD v1 plaintext: one block of random
// bytes and a repeat of its last two.
const prefixSize = aes.BlockSize + 2

// seipdWriter writes one SEIPD version 1 packet (RFC 4880 §5.13): version
// octet, then CFB ciphertext of prefix || contents || MDC packet, where the
// MDC is SHA-1 over the plaintext prefix, the contents and the MDC's own two
// header octets.
type seipdWriter struct {
	out    *packetWriter
	stream *cfbEncrypter
	mdc    hash.Hash
}

// newSEIPDWriter starts a SEIPD v1 packet under key (32 bytes, AES-256) on w.
func newSEIPDWriter(w io.Writer, key []byte) (*seipdWriter, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	sw := &seipdWriter{
		out:    newPacketWriter(w, tagSEIPD),
		stream: newCFBEncrypter(block),
		mdc:    sha1.New(),
	}
	if _, err := sw.out.Write([]byte{1}); err != nil {
		return nil, err
	}
	var prefix [prefixSize]byte
	if _, err := rand.Read(prefix[:aes.BlockSize]); err != nil {
		return nil, err
	}
	prefix[16], prefix[17] = prefix[14], prefix[15]
	if _, err := sw.Write(prefix[:]); err != nil {
		return nil, err
	}
	return sw, nil
}

// Write encrypts p into the packet.
func (sw *seipdWriter) Write(p []byte) (int, error) {
	sw.mdc.Write(p)
	return sw.out.writeXOR(p, sw.stream)
}

// Close appends the MDC packet and ends the SEIPD packet. It does not close
// the underlying writer.
func (sw *seipdWriter) Close() error {
	var trailer [mdcTrailerSize]byte
	trailer[0], trailer[1] = 0xc0|tagMDC, sha1.Size
	sw.mdc.Write(trailer[:2])
	sw.mdc.Sum(trailer[:2]) // appends the digest in place: trailer[2:]
	if _, err := sw.out.writeXOR(trailer[:], sw.stream); err != nil {
		return err
	}
	return sw.out.Close()
}
