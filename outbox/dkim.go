package outbox

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"tollbridge/seal"
	"tollbridge/store"
)

// DKIMKey is one of a local domain's DKIM signing keys. A domain has an
// Ed25519 and an RSA key and legacy mail carries both signatures (RFC
// 8463): receivers that know Ed25519 check it, the others the RSA one.
type DKIMKey struct {
	// Selector names the key's DNS record, SELECTOR._domainkey.DOMAIN.
	Selector string
	// Signer is an ed25519.PrivateKey or an *rsa.PrivateKey.
	Signer crypto.Signer
}

// Record returns the key's DNS TXT record text, "v=DKIM1; k=…; p=…".
func (k DKIMKey) Record() (string, error) {
	switch pub := k.Signer.Public().(type) {
	case ed25519.PublicKey:
		// RFC 8463 §4.2: the raw 32-byte key, not a SubjectPublicKeyInfo.
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	}
	return "", fmt.Errorf("DKIM key %s: unsupported key type %T", k.Selector, k.Signer.Public())
}

// signedHeaders are the fields a signature covers. Each is listed twice
// in h= (over-signing, RFC 6376 §5.4.2): the second instance, absent
// when signing, makes a field added in transit break the signature, so
// no one can prepend a second From: or Subject: to our signed mail.
var signedHeaders = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Reply-To", "Sender",
}

// legacyMessage is a queued message ready for legacy SMTP: its catalog,
// opened once, and the DKIM-Signature fields to put in front of it.
type legacyMessage struct {
	o          *Outbox
	m          *store.OutboxMessage
	key        *seal.SessionKey
	catalog    []byte
	signatures []string
}

// legacyMessage opens m for relaying and signs it when its From: domain
// is a local one with DKIM keys. Signing needs the body hash before the
// header can be written, so the message is rendered twice, once into the
// signers and once onto the wire, rather than held in memory.
func (o *Outbox) legacyMessage(m *store.OutboxMessage) (*legacyMessage, error) {
	k, cat, err := o.openCatalog(m)
	if err != nil {
		return nil, err
	}
	lm := &legacyMessage{o: o, m: m, key: k, catalog: cat}
	domain := o.fromDomain(cat)
	keys := o.cfg.DKIM[domain]
	if len(keys) == 0 {
		return lm, nil
	}
	if lm.signatures, err = dkimSign(keys, domain, lm.render); err != nil {
		return nil, fmt.Errorf("DKIM signing for %s: %w", domain, err)
	}
	return lm, nil
}

// writeTo writes the signatures, then the message.
func (lm *legacyMessage) writeTo(w io.Writer) error {
	for _, s := range lm.signatures {
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
	}
	return lm.render(w)
}

func (lm *legacyMessage) render(w io.Writer) error {
	return lm.o.renderCatalog(w, lm.m, lm.key, lm.catalog)
}

// fromDomain returns the lower-case domain of the message's (first) From:
// address, or "" when there is none that parses: such mail is not signed.
func (o *Outbox) fromDomain(catalog []byte) string {
	h, err := o.text.Headers(catalog)
	if err != nil {
		return ""
	}
	msg, err := mail.ReadMessage(io.MultiReader(bytes.NewReader(h), strings.NewReader("\r\n\r\n")))
	if err != nil {
		return ""
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) == 0 {
		return ""
	}
	at := strings.LastIndexByte(from[0].Address, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(from[0].Address[at+1:])
}

// dkimSign renders the message once through a signer per key and returns
// their DKIM-Signature fields (each ending in CRLF).
func dkimSign(keys []DKIMKey, domain string, render func(io.Writer) error) ([]string, error) {
	headerKeys := append(append([]string(nil), signedHeaders...), signedHeaders...)
	signers := make([]*dkim.Signer, 0, len(keys))
	ws := make([]io.Writer, 0, len(keys))
	for _, k := range keys {
		s, err := dkim.NewSigner(&dkim.SignOptions{
			Domain: domain, Selector: k.Selector, Signer: k.Signer,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             headerKeys,
		})
		if err != nil {
			closeAll(signers)
			return nil, fmt.Errorf("selector %s: %w", k.Selector, err)
		}
		signers = append(signers, s)
		ws = append(ws, s)
	}
	if err := render(&crlfWriter{w: io.MultiWriter(ws...)}); err != nil {
		closeAll(signers)
		return nil, err
	}
	sigs := make([]string, 0, len(signers))
	for i, s := range signers {
		if err := s.Close(); err != nil {
			closeAll(signers[i+1:])
			return nil, fmt.Errorf("selector %s: %w", keys[i].Selector, err)
		}
		sigs = append(sigs, s.Signature())
	}
	return sigs, nil
}

func closeAll(signers []*dkim.Signer) {
	for _, s := range signers {
		s.Close()
	}
}

// crlfWriter turns a bare LF into CRLF, as the SMTP client's DATA writer
// does, so that the signers hash the bytes the receiver gets.
type crlfWriter struct {
	w      io.Writer
	lastCR bool
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := c.w.Write(p); err != nil {
				return n, err
			}
			c.lastCR = p[len(p)-1] == '\r'
			return n + len(p), nil
		}
		chunk := p[:i]
		bare := (i == 0 && !c.lastCR) || (i > 0 && p[i-1] != '\r')
		if _, err := c.w.Write(chunk); err != nil {
			return n, err
		}
		nl := "\n"
		if bare {
			nl = "\r\n"
		}
		if _, err := io.WriteString(c.w, nl); err != nil {
			return n, err
		}
		n += i + 1
		p = p[i+1:]
		c.lastCR = false
	}
	return n, nil
}
