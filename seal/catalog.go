package seal

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// maxSignaturePacket bounds the signature packet kept for verification.
const maxSignaturePacket = 1 << 20

// SealCatalog writes catalog to w as one SEIPD v1 packet under k holding a
// one-pass signature, the literal data (format 'b', empty name, date 0) and
// a binary document signature (SHA-256) by signer's signing key, whose
// private key must be decrypted. With signer == nil the packet holds only
// the literal data.
func (k *SessionKey) SealCatalog(w io.Writer, catalog []byte, signer *openpgp.Entity) error {
	if signer != nil {
		if err := checkSigner(signer); err != nil {
			return fmt.Errorf("seal: catalog: %w", err)
		}
	}
	sw, err := newSEIPDWriter(w, k.key[:])
	if err != nil {
		return fmt.Errorf("seal: catalog: %w", err)
	}
	var lit io.WriteCloser
	if signer == nil {
		lit, err = packet.SerializeLiteral(nopCloser{sw}, true, "", 0)
	} else {
		cfg := &packet.Config{DefaultHash: crypto.SHA256}
		lit, err = openpgp.Sign(sw, signer, &openpgp.FileHints{IsBinary: true}, cfg)
	}
	if err != nil {
		return fmt.Errorf("seal: catalog: %w", err)
	}
	if _, err := lit.Write(catalog); err != nil {
		return fmt.Errorf("seal: catalog: %w", err)
	}
	if err := lit.Close(); err != nil {
		return fmt.Errorf("seal: catalog: %w", err)
	}
	if err := sw.Close(); err != nil {
		return fmt.Errorf("seal: catalog: %w", err)
	}
	return nil
}

// checkSigner makes sure signer can make a signature GnuPG 2.2 reads: a v4
// key of an algorithm it knows, with its private part unlocked.
func checkSigner(signer *openpgp.Entity) error {
	key, ok := signer.SigningKey(time.Now())
	if !ok {
		return errors.New("signer has no valid signing key")
	}
	if key.PublicKey.Version != 4 {
		return fmt.Errorf("signing key %X is version %d, want 4", key.PublicKey.Fingerprint, key.PublicKey.Version)
	}
	switch key.PublicKey.PubKeyAlgo {
	case packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoECDSA, packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
	default:
		return fmt.Errorf("signing key %X uses algorithm %d, which GnuPG 2.2 cannot verify", key.PublicKey.Fingerprint, key.PublicKey.PubKeyAlgo)
	}
	if key.PrivateKey == nil || key.PrivateKey.Encrypted {
		return fmt.Errorf("signing key %X is not unlocked", key.PublicKey.Fingerprint)
	}
	return nil
}

// nopCloser gives an io.Writer a Close that does nothing.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Catalog is an opened catalog. Its signature, if any, is kept for Verify:
// the signer's key is found from the catalog's "from" field, which is inside.
type Catalog struct {
	// Plaintext is the catalog's literal data (UTF-8 JSON, unverified
	// until Verify says pass).
	Plaintext []byte
	// Signed reports whether the catalog carried a one-pass signature.
	Signed bool
	// SignerKeyID is the key id the one-pass signature names, 0 if unsigned.
	SignerKeyID uint64

	ops    *packet.OnePassSignature
	sig    []byte // the signature packet exactly as read
	sigErr error  // why the signature cannot verify, found while opening
}

// OpenCatalog reads one catalog (a SEIPD v1 packet holding either one-pass
// signature, literal data, signature, or only literal data) from r and
// decrypts it. Plaintext longer than limit bytes is an error wrapping
// ErrTooLarge. It returns only after the MDC has been checked, so a returned
// Catalog is exactly what was sealed under k; whether the sender signed it
// is for Verify to say.
//
// A signature packet that cannot be parsed (an unknown algorithm, say) does
// not make the catalog unreadable; Verify reports fail for it.
func (k *SessionKey) OpenCatalog(r io.Reader, limit int64) (_ *Catalog, err error) {
	defer recoverMalformed(&err, "catalog")
	if limit <= 0 {
		return nil, fmt.Errorf("seal: catalog: limit %d must be positive", limit)
	}
	c, err := k.openCatalog(r, limit)
	if err != nil {
		return nil, fmt.Errorf("seal: catalog: %w", err)
	}
	return c, nil
}

func (k *SessionKey) openCatalog(r io.Reader, limit int64) (*Catalog, error) {
	sr, err := openSEIPD(r, k.key[:], nil)
	if err != nil {
		return nil, err
	}
	c := new(Catalog)
	first, err := sr.peek()
	if err == io.EOF {
		return nil, malformed("no literal data packet", nil)
	}
	if err != nil {
		return nil, err
	}
	if tag, _ := packetTag(first); tag == tagOnePassSig {
		c.Signed = true
		if err := c.readOnePass(sr); err != nil {
			return nil, err
		}
	}
	lit, err := readLiteral(sr)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(lit.Body, limit+1))
	if err != nil {
		if errors.Is(err, ErrTampered) {
			return nil, err
		}
		return nil, sr.verdict("literal packet", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if c.Signed {
		if err := c.readSignature(sr); err != nil {
			return nil, err
		}
	}
	if err := sr.expectEnd(r); err != nil {
		return nil, err
	}
	c.Plaintext = data
	return c, nil
}

// readOnePass reads the one-pass signature packet, whatever its nested
// flag says. A packet go-crypto cannot parse is skipped and remembered as
// a signature failure.
func (c *Catalog) readOnePass(sr *seipdReader) error {
	p, err := packet.Read(sr)
	if errors.Is(err, ErrTampered) {
		return err
	}
	if err != nil {
		c.sigErr = fmt.Errorf("one-pass signature packet: %w", err)
		return nil
	}
	ops, ok := p.(*packet.OnePassSignature)
	if !ok {
		return sr.verdict("one-pass signature packet", nil)
	}
	// The nested flag is not checked: PGPy writes 0 for a single
	// signature, and GnuPG and go-crypto ignore it too (docs/protocol.md §3.6). A
	// second one-pass signature or signature packet is still refused,
	// since exactly one literal data packet and one signature must follow.
	c.ops = ops
	c.SignerKeyID = ops.KeyId
	return nil
}

// readSignature reads the signature packet that must follow the literal
// data of a signed catalog, keeping its exact bytes.
func (c *Catalog) readSignature(sr *seipdReader) error {
	b, err := sr.peek()
	if err == io.EOF {
		return malformed("signed catalog without a signature packet", nil)
	}
	if err != nil {
		return err
	}
	if tag, ok := packetTag(b); !ok || tag != tagSignature {
		return sr.verdict(fmt.Sprintf("expected a signature packet, found octet %#02x", b), nil)
	}
	rec := &recorder{r: sr, max: maxSignaturePacket}
	p, err := packet.Read(rec)
	if errors.Is(err, ErrTampered) {
		return err
	}
	switch {
	case err != nil:
		c.sigErr = fmt.Errorf("signature packet: %w", err)
	case rec.over:
		c.sigErr = errors.New("signature packet too large")
	default:
		if _, ok := p.(*packet.Signature); !ok {
			return sr.verdict("signature packet", nil)
		}
		c.sig = rec.buf.Bytes()
	}
	return nil
}

// recorder keeps a copy of up to max bytes read through it.
type recorder struct {
	r    io.Reader
	buf  bytes.Buffer
	max  int
	over bool
}

func (rc *recorder) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	if rc.buf.Len()+n > rc.max {
		rc.over = true
	} else {
		rc.buf.Write(p[:n])
	}
	return n, err
}
