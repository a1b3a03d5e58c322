package seal

import (
	"crypto/cipher"
	"crypto/subtle"
)

// OpenPGP's CFB mode for SEIPD version 1 (RFC 4880 §13.9 without the
// resynchronisation step, §5.13) is plain CFB-128 with an all-zero IV over
// prefix || data, where prefix is 16 random bytes followed by a copy of the
// last two. go-crypto implements it one byte at a time
// (packet.ocfbEncrypter.XORKeyStream); these streams work a block at a time,
// which is what makes sealing and opening run near the speed of the block
// cipher.

// cfbEncrypter is a CFB-128 encrypting cipher.Stream with an all-zero IV.
type cfbEncrypter struct {
	b cipher.Block
	// reg holds the keystream block E(previous ciphertext block); the bytes
	// before used have already been replaced by ciphertext, so once used
	// reaches 16 reg is the previous ciphertext block.
	reg  [16]byte
	used int
}

func newCFBEncrypter(b cipher.Block) *cfbEncrypter {
	x := &cfbEncrypter{b: b}
	b.Encrypt(x.reg[:], x.reg[:])
	return x
}

// XORKeyStream encrypts src into dst; dst and src may overlap exactly.
func (x *cfbEncrypter) XORKeyStream(dst, src []byte) {
	for len(src) > 0 {
		if x.used == len(x.reg) {
			x.b.Encrypt(x.reg[:], x.reg[:])
			x.used = 0
		}
		if x.used == 0 && len(src) >= len(x.reg) {
			// Whole block: ciphertext = keystream ^ plaintext becomes the
			// next register.
			subtle.XORBytes(x.reg[:], x.reg[:], src[:16])
			copy(dst[:16], x.reg[:])
			x.used = 16
			src, dst = src[16:], dst[16:]
			continue
		}
		n := subtle.XORBytes(x.reg[x.used:], x.reg[x.used:], src)
		copy(dst[:n], x.reg[x.used:x.used+n])
		x.used += n
		src, dst = src[n:], dst[n:]
	}
}

// cfbDecrypter is a CFB-128 decrypting cipher.Stream with an all-zero IV.
// Unlike encryption, decryption needs no result of a previous block cipher
// call, so whole blocks are done in batches: all keystream first (from the
// ciphertext still in src), then one XOR.
type cfbDecrypter struct {
	b cipher.Block
	// prev is the last complete ciphertext block (all zero at the start);
	// ks is E(prev); cur collects the ciphertext of the block in progress,
	// of which used bytes have been seen.
	prev, ks, cur [16]byte
	used          int
	batch         []byte
}

// cfbBatch is how many keystream bytes are made at once when decrypting.
const cfbBatch = 4096

// newCFBDecrypter makes its keystream in batch (a multiple of 16 bytes).
func newCFBDecrypter(b cipher.Block, batch []byte) *cfbDecrypter {
	x := &cfbDecrypter{b: b, batch: batch}
	b.Encrypt(x.ks[:], x.prev[:])
	return x
}

// XORKeyStream decrypts src into dst; dst and src may overlap exactly.
func (x *cfbDecrypter) XORKeyStream(dst, src []byte) {
	// Finish a partial block byte by byte.
	for x.used > 0 && len(src) > 0 {
		c := src[0]
		dst[0] = c ^ x.ks[x.used]
		x.cur[x.used] = c
		x.used++
		src, dst = src[1:], dst[1:]
		if x.used == 16 {
			x.prev = x.cur
			x.b.Encrypt(x.ks[:], x.prev[:])
			x.used = 0
		}
	}
	// Whole blocks in batches. The keystream of block i is E(ciphertext of
	// block i-1); block 0 of a batch uses x.ks, already computed.
	for len(src) >= 16 {
		n := min(len(src), len(x.batch)) &^ 15
		ks := x.batch[:n]
		copy(ks[:16], x.ks[:])
		for off := 16; off < n; off += 16 {
			x.b.Encrypt(ks[off:off+16], src[off-16:off])
		}
		copy(x.prev[:], src[n-16:n])
		x.b.Encrypt(x.ks[:], x.prev[:])
		subtle.XORBytes(dst[:n], src[:n], ks)
		src, dst = src[n:], dst[n:]
	}
	// Start a partial block.
	for i, c := range src {
		dst[i] = c ^ x.ks[x.used]
		x.cur[x.used] = c
		x.used++
	}
}
