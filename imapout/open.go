package imapout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"tollbridge/protocol"
	"tollbridge/seal"
	"tollbridge/store"
	"tollbridge/translate"
)

// maxCatalog bounds a catalog's plaintext.
const maxCatalog = 16 << 20

// memSpool is how much of a rendered message is held in memory before it
// goes to an encrypted temporary file.
const memSpool = 4 << 20

// errUnreadable marks a message that cannot be shown: its stored
// ciphertext fails its integrity checks, is not for the user's key, or is
// missing. It is never shown altered; the client gets an error for it.
var errUnreadable = errors.New("message failed its integrity check")

// errGone marks a message that another session expunged after this one
// read its row. It is left out of the answer like any expunged message;
// it is not damaged.
var errGone = errors.New("message expunged meanwhile")

// sameMessage reports whether a stored message read by id is still the
// one a mailbox row named: message ids are reused once the newest message
// is deleted, catalogs are not.
func sameMessage(row *store.MessageRow, m *store.SealedMessage) bool {
	return m != nil && (row.Catalog == "" || m.Blobs["catalog"] == row.Catalog)
}

// stillThere reports whether the message of row is still in mailbox at
// its UID: a message that fails to open is only damaged if it is.
func (s *session) stillThere(mailboxID int64, row *store.MessageRow) (bool, error) {
	now, err := s.srv.st.MessageRows(s.ctx, mailboxID, []uint32{row.UID}, store.RowMeta)
	if err != nil {
		return false, err
	}
	return len(now) == 1 && now[0].MessageID == row.MessageID && now[0].Catalog == row.Catalog, nil
}

// opened is a message whose catalog is decrypted and checked.
type opened struct {
	msg     *store.SealedMessage
	catalog *seal.Catalog
	cat     *translate.Catalog
	key     *seal.SessionKey
	blobs   *store.Blobs
	bufs    *seal.PartBuffers
}

// sessionKey unwraps a message's session key with the user's key, or
// takes it from the account's cache.
func (a *account) sessionKey(m *store.SealedMessage) (*seal.SessionKey, error) {
	hash := m.Blobs[store.CatalogBlob]
	if k := a.keys.get(hash); k != nil {
		return k, nil
	}
	h, err := protocol.ParseHeader(m.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	// After a rotation older mail names a retired key (the header's
	// key_fingerprint); the user's keys are all unlocked together.
	priv := a.key.KeyFor(h.KeyFingerprint)
	if priv == nil {
		priv = a.key.Entity // SessionKey reports the mismatch
	}
	key, err := seal.UnwrapHeader(h, priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	a.keys.put(hash, key)
	return key, nil
}

// open decrypts and checks a message's catalog, or takes it from the
// account's catalog cache. Errors about the stored data wrap
// errUnreadable.
func (a *account) open(ctx context.Context, m *store.SealedMessage) (*opened, error) {
	hash, ok := m.Blobs[store.CatalogBlob]
	if !ok {
		return nil, fmt.Errorf("%w: no catalog", errUnreadable)
	}
	key, err := a.sessionKey(m)
	if err != nil {
		return nil, err
	}
	oc, ok := a.catalogs.get(hash)
	if !ok {
		if oc, err = a.readCatalog(hash, key); err != nil {
			return nil, err
		}
		a.catalogs.put(hash, oc, oc.weight())
	}
	if err := a.srv.checkRebuiltSize(oc.cat, int64(len(oc.catalog.Plaintext))); err != nil {
		return nil, err
	}
	return &opened{msg: m, catalog: oc.catalog, cat: oc.cat, key: key, blobs: a.srv.st.Blobs(), bufs: &a.srv.partBufs}, nil
}

// catalogCacheBytes bounds an account's cache of decrypted catalogs (about
// twice a catalog's plaintext each, a few kilobytes for most mail): a
// random BODY[] then costs the parts only. The bound holds the catalogs
// of some thousands of messages.
const catalogCacheBytes = 32 << 20

// openedCatalog is a decrypted, checked catalog and its parsed form, as
// the account's catalog cache holds it (shared, never changed). It is
// known by the hash of the encrypted catalog, which determines both.
type openedCatalog struct {
	catalog *seal.Catalog
	cat     *translate.Catalog
}

// weight is about the memory the catalog holds: the plaintext and the
// parsed copy of the same bytes.
func (oc openedCatalog) weight() int64 { return 2*int64(len(oc.catalog.Plaintext)) + 512 }

// readCatalog reads, decrypts and parses the catalog stored as hash.
func (a *account) readCatalog(hash string, key *seal.SessionKey) (openedCatalog, error) {
	f, err := a.srv.st.Blobs().Open(hash)
	if err != nil {
		return openedCatalog{}, fmt.Errorf("%w: catalog: %w", errUnreadable, err)
	}
	defer f.Close()
	c, err := key.OpenCatalog(f, maxCatalog)
	if err != nil {
		return openedCatalog{}, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	cat, err := translate.ParseCatalog(c.Plaintext)
	if err != nil {
		return openedCatalog{}, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	return openedCatalog{catalog: c, cat: cat}, nil
}

// checkRebuiltSize refuses a catalog that would rebuild a message bigger
// than this server accepts, or much bigger than what was stored: a catalog
// may name one small part many times, and a few kilobytes of upload must
// not turn into gigabytes rendered at every login. Base64 re-encoding
// grows a decoded part by a third, so twice the stored bytes is ample for
// any real message.
func (s *Server) checkRebuiltSize(cat *translate.Catalog, catalogBytes int64) error {
	stored := catalogBytes
	for _, p := range cat.Parts {
		stored += p.Size
	}
	size := cat.MessageSize()
	if limit := s.maxRebuilt(); size > limit {
		return fmt.Errorf("%w: catalog rebuilds to %d bytes, more than the %d this server shows", errUnreadable, size, limit)
	}
	if size > 2*stored+64<<10 {
		return fmt.Errorf("%w: catalog rebuilds %d stored bytes into %d", errUnreadable, stored, size)
	}
	return nil
}

// OpenPart implements translate.Source: the decrypted part, whose MDC is
// checked when it is read to its end (translate.Join does, and checks size
// and SHA-256 against the catalog).
func (o *opened) OpenPart(id string) (io.ReadCloser, error) {
	hash, ok := o.msg.Blobs[id]
	if !ok {
		return nil, fmt.Errorf("part %s: not stored", id)
	}
	f, err := o.blobs.Open(hash)
	if err != nil {
		return nil, err
	}
	return o.key.OpenPartWith(f, o.bufs)
}

// prefix is what the client sees in front of the rebuilt message m:
// nothing for what the client saved itself (APPEND), else the trace fields
// and the bridge's Authentication-Results field: the signature verdict
// auth, then the results of the legacy checks stored with MX mail (SPF,
// DKIM, DMARC; docs/rules.md §4), each resinfo on a line of its own so that the
// field stays within RFC 5322's line length.
func (s *Server) prefix(m *store.SealedMessage, auth string) []byte {
	if m.Source == store.SourceAppend {
		return nil
	}
	if auth == "" {
		auth = "none"
	}
	out := append([]byte{}, m.Trace...)
	out = append(out, "Authentication-Results: "+s.cfg.Hostname+"; tollbridge="+auth...)
	for _, r := range strings.Split(m.AuthResults, "\n") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, ";\r\n\t"+r...)
		}
	}
	return append(out, "\r\n"...)
}

// render writes the message as the client sees it into a new spool. Only
// a message whose every part passed its checks comes back; the spool is
// the caller's to close. Everything but what the client saved itself
// (APPEND, shown as saved) loses the Authentication-Results fields that
// claim this bridge's name (resultsFilter) before prefix, the bridge's
// own, is put in front. Every view of the message (RFC822.SIZE, BODY[],
// BODYSTRUCTURE, ENVELOPE, SEARCH) is read from this rendering.
func (a *account) render(o *opened, prefix []byte) (*store.Spool, error) {
	sp := store.NewSpool(a.srv.cfg.SpoolDir, memSpool)
	// The results filter only ever takes lines out.
	sp.Grow(len(prefix) + int(min(o.cat.MessageSize(), memSpool)))
	if _, err := sp.Write(prefix); err != nil {
		sp.Close()
		return nil, err
	}
	var w io.Writer = sp
	var filter *resultsFilter
	if o.msg.Source != store.SourceAppend {
		filter = newResultsFilter(sp, a.srv.cfg.Hostname)
		w = filter
	}
	if err := a.srv.joiner.Join(w, o.cat, o); err != nil {
		sp.Close()
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	if filter != nil {
		if err := filter.Close(); err != nil {
			sp.Close()
			return nil, err
		}
	}
	return sp, nil
}

// build opens, renders and describes a message: its metadata cache and
// the rendered message, which the caller closes.
func (a *account) build(ctx context.Context, m *store.SealedMessage, auth string) (*meta, *store.Spool, error) {
	o, err := a.open(ctx, m)
	if err != nil {
		return nil, nil, err
	}
	return a.describe(o, a.srv.prefix(m, auth))
}

// describe renders an opened message and scans it for its metadata cache.
func (a *account) describe(o *opened, prefix []byte) (*meta, *store.Spool, error) {
	sp, err := a.render(o, prefix)
	if err != nil {
		return nil, nil, err
	}
	res, err := scanMessage(sp.Section(0, sp.Size()))
	if err != nil {
		sp.Close()
		return nil, nil, err
	}
	md := newMeta(res)
	md.Text = textParts(o)
	md.Filter = a.textFilter(o.key, md.Text)
	return md, sp, nil
}

// textParts lists an opened message's text parts (text/* leaves) with how
// to decode them.
func textParts(o *opened) []textPart {
	parts := make(map[string]*translate.Part, len(o.cat.Parts))
	for i := range o.cat.Parts {
		parts[o.cat.Parts[i].ID] = &o.cat.Parts[i]
	}
	out := []textPart{}
	var walk func(n *translate.Node, defaultType string, depth int)
	walk = func(n *translate.Node, defaultType string, depth int) {
		if depth > maxDepth {
			return
		}
		fs := parseFields(n.Header.Bytes)
		media, params, err := mime.ParseMediaType(get(fs, "Content-Type"))
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) || media == "" {
			media, params = defaultType, nil
		}
		childType := "text/plain"
		if media == "multipart/digest" {
			childType = "message/rfc822"
		}
		cte := strings.ToLower(get(fs, "Content-Transfer-Encoding"))
		for i := range n.Body {
			it := &n.Body[i]
			switch {
			case it.Node != nil:
				walk(it.Node, childType, depth+1)
			case it.Part != "" && strings.HasPrefix(media, "text/"):
				p := parts[it.Part]
				if p == nil {
					continue
				}
				tp := textPart{Blob: o.msg.Blobs[p.ID], Size: p.Size, SHA256: p.SHA256, Charset: params["charset"]}
				if it.Transfer.Encoding != translate.EncodingBase64 && (cte == "base64" || cte == "quoted-printable") {
					tp.Decode = cte
				}
				out = append(out, tp)
			}
		}
	}
	walk(&o.cat.MIME, "text/plain", 0)
	return out
}
