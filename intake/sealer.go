// Package intake is the one way plaintext becomes sealed mail (docs/rules.md
// §2): submission, the MX, IMAP APPEND and bounces all hand their message to
// a Sealer, which splits it (translate) and encrypts it once (seal) straight
// into the store's blobs. It also names what the other rooms need of those
// two: the verdict shown as tollbridge= and the addresses of a From: field.
package intake

import (
	"context"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/seal"
	"tollbridge/store"
	"tollbridge/translate"
)

// Options tune how a message is sealed.
type Options struct {
	// StripBcc removes Bcc: fields before sealing (submission: blind
	// copies stay blind, docs/protocol.md §3.5).
	StripBcc bool
}

// Sealer splits messages (translate) and encrypts them (seal) straight
// into the store's blobs: one session key, one encrypted catalog, one
// encrypted copy of each part, whatever the number of recipients. It is
// the one way plaintext mail becomes sealed mail in the bridge.
type Sealer struct {
	Store *store.Store
	// Deferred commits blobs without fsync: the caller makes a group of
	// them durable at once (store.Blobs.SyncAll) before the transaction
	// that references them. For imports; delivery leaves it false.
	Deferred bool
}

// Message is what a Sealer makes of a plaintext message: split and
// encrypted once, its blobs written and fsynced but not yet referenced by
// any row (store.NewMessage and store.OutboxMessage reference them; once
// stored it is a store.SealedMessage).
type Message struct {
	Key     *seal.SessionKey
	Catalog *translate.Catalog    // plaintext catalog, never stored as is
	Parts   []protocol.HeaderPart // encrypted parts, in catalog order
	Blobs   map[string]store.BlobRef
	Size    int64 // size of the rebuilt message

	blobs    *store.Blobs
	deferred bool // commit blobs without fsync (Sealer.Deferred)
}

// commit commits a blob, durably unless the sealing is deferred.
func (sd *Message) commit(w *store.BlobWriter) (store.BlobRef, error) {
	if sd.deferred {
		return w.CommitUnsynced()
	}
	return w.Commit()
}

// Seal splits src, signs the catalog with signer (nil: unsigned) and
// encrypts everything under a new session key. from becomes the catalog's
// from: the envelope sender, who signs (docs/protocol.md §3.6).
func (s *Sealer) Seal(src io.ReaderAt, size int64, from string, signer *openpgp.Entity, opts Options) (*Message, error) {
	key, err := seal.NewSessionKey()
	if err != nil {
		return nil, err
	}
	sd := &Message{Key: key, Blobs: map[string]store.BlobRef{}, blobs: s.Store.Blobs(), deferred: s.Deferred}
	sink := &blobSink{sd: sd}
	cat, err := translate.Split(src, size, sink, translate.Options{StripBcc: opts.StripBcc})
	if err != nil {
		sd.Abort()
		return nil, fmt.Errorf("split: %w", err)
	}
	cat.From = from
	sd.Catalog, sd.Size = cat, cat.MessageSize()
	if err := sd.sealCatalog(signer); err != nil {
		sd.Abort()
		return nil, err
	}
	for _, p := range cat.Parts {
		ref, ok := sd.Blobs[p.ID]
		if !ok {
			sd.Abort()
			return nil, fmt.Errorf("split: part %s was not written", p.ID)
		}
		sd.Parts = append(sd.Parts, protocol.HeaderPart{ID: p.ID, Kind: p.Kind, Size: ref.Size, SHA256: ref.Hash})
	}
	return sd, nil
}

func (sd *Message) sealCatalog(signer *openpgp.Entity) error {
	plain, err := sd.Catalog.Marshal()
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	w, err := sd.blobs.Create()
	if err != nil {
		return err
	}
	if err := sd.Key.SealCatalog(w, plain, signer); err != nil {
		w.Abort()
		return fmt.Errorf("catalog: %w", err)
	}
	ref, err := sd.commit(w)
	if err != nil {
		return err
	}
	sd.Blobs[store.CatalogBlob] = ref
	return nil
}

// CatalogRef is the encrypted catalog's size and hash, as a header names it.
func (sd *Message) CatalogRef() protocol.Ref {
	ref := sd.Blobs[store.CatalogBlob]
	return protocol.Ref{Size: ref.Size, SHA256: ref.Hash}
}

// Header makes the per-recipient header: the session key wrapped to to.
func (sd *Message) Header(fromHash, toHash string, to *openpgp.Entity) ([]byte, error) {
	h, err := sd.Key.NewHeader(to, protocol.Header{From: fromHash, To: toHash, Catalog: sd.CatalogRef(), Parts: sd.Parts})
	if err != nil {
		return nil, err
	}
	return h.Marshal()
}

// Abort removes the blobs written so far; only for a message whose rows
// were never committed.
func (sd *Message) Abort() {
	for _, ref := range sd.Blobs {
		sd.blobs.Remove(ref.Hash)
	}
}

// blobSink is a translate.Sink encrypting each part into its own blob.
type blobSink struct{ sd *Message }

func (s *blobSink) CreatePart(id, kind string) (translate.PartWriter, error) {
	bw, err := s.sd.blobs.Create()
	if err != nil {
		return nil, err
	}
	enc, err := s.sd.Key.EncryptPart(bw)
	if err != nil {
		bw.Abort()
		return nil, err
	}
	return &blobPart{id: id, sd: s.sd, bw: bw, enc: enc}, nil
}

type blobPart struct {
	id  string
	sd  *Message
	bw  *store.BlobWriter
	enc io.WriteCloser
}

func (p *blobPart) Write(b []byte) (int, error) { return p.enc.Write(b) }

func (p *blobPart) Commit() error {
	if err := p.enc.Close(); err != nil {
		p.bw.Abort()
		return fmt.Errorf("part %s: %w", p.id, err)
	}
	ref, err := p.sd.commit(p.bw)
	if err != nil {
		return fmt.Errorf("part %s: %w", p.id, err)
	}
	p.sd.Blobs[p.id] = ref
	return nil
}

func (p *blobPart) Abort() error { return p.bw.Abort() }

// nullSenderHash stands for the empty envelope sender (bounces) in headers.
var nullSenderHash = keyring.HashNormalized("")

// senderHash is hash(a) of an envelope sender; "" for the null sender.
func senderHash(from string) string {
	if from == "" {
		return nullSenderHash
	}
	if h, err := keyring.AddressHash(from); err == nil {
		return h
	}
	return keyring.HashNormalized(from)
}

// SealFor seals a raw message to local users' keys, unsigned: legacy mail
// from the MX, bounces, and mail clients' own copies (IMAP APPEND). It
// returns one NewMessage per user, sharing the blobs; the caller stores
// them (setting mailbox, flags and trace as it needs).
func (s *Sealer) SealFor(src io.ReaderAt, size int64, from string, users []*store.User) ([]*store.NewMessage, *Message, error) {
	sd, err := s.Seal(src, size, from, nil, Options{})
	if err != nil {
		return nil, nil, err
	}
	var out []*store.NewMessage
	for _, u := range users {
		key, err := keyring.ReadKey(u.PublicKey)
		if err != nil {
			sd.Abort()
			return nil, nil, fmt.Errorf("key of %s: %w", u.Address, err)
		}
		h, err := sd.Header(senderHash(from), u.AddressHash, key)
		if err != nil {
			sd.Abort()
			return nil, nil, fmt.Errorf("header for %s: %w", u.Address, err)
		}
		out = append(out, &store.NewMessage{UserID: u.ID, Header: h, Blobs: sd.Blobs, Received: s.Store.Now()})
	}
	return out, sd, nil
}

// ForUser seals a client's own message (IMAP APPEND) to the user's key;
// it has the shape imapout's Config.Seal wants.
func (s *Sealer) ForUser(ctx context.Context, u *store.User, src io.ReaderAt, size int64) (*store.NewMessage, error) {
	ms, _, err := s.SealFor(src, size, u.Address, []*store.User{u})
	if err != nil {
		return nil, err
	}
	ms[0].Source = store.SourceAppend
	return ms[0], nil
}
