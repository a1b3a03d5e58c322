package protocol

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// ecdhBody is the body of a PKESK v3 packet of the shape seal.Wrap writes
// for an X25519 ECDH key: version, key id, algorithm 18, the ephemeral
// point as a 263-bit MPI (0x40 and 32 octets), and a 48-octet wrapped key.
func ecdhBody() []byte {
	b := []byte{3, 1, 2, 3, 4, 5, 6, 7, 8, algoECDH, 0x01, 0x07, 0x40}
	b = append(b, bytes.Repeat([]byte{0xaa}, 32)...)
	b = append(b, 48)
	return append(b, bytes.Repeat([]byte{0xbb}, 48)...)
}

// ecdhPKESK is that body as one new-format packet (as go-crypto writes it).
func ecdhPKESK() []byte {
	body := ecdhBody()
	return append([]byte{0xc0 | tagPKESK, byte(len(body))}, body...)
}

// goodHeader is a valid header with a block and an attachment.
func goodHeader() *Header {
	return &Header{
		Version: HeaderVersion, From: HashAddress("alice@example.org"), To: HashAddress("bob@example.net"),
		KeyFingerprint: strings.Repeat("0123456789", 4),
		EncryptedKey:   base64.StdEncoding.EncodeToString(ecdhPKESK()),
		Catalog:        RefOf([]byte("catalog")),
		Parts: []HeaderPart{
			{ID: "p1", Kind: KindBlock, Size: 10, SHA256: RefOf([]byte("p1")).SHA256},
			{ID: "p2", Kind: KindAttachment, Size: 20, SHA256: RefOf([]byte("p2")).SHA256},
		},
	}
}
