package imapout

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/store"
)

// batch is how many messages FETCH, STORE and SEARCH read from the store
// at once: memory stays bounded whatever the mailbox size, and no query
// stays open while the client is written to.
const batch = 256

// flagBatch is how many rows are read at once with their flags only
// (a few bytes each); whole rows not in the account's cache are read
// batch at a time.
const flagBatch = 4096

// maxSections bounds the BODY[…] and BINARY[…] items of one FETCH.
const maxSections = 64

// Fetch implements imapserver.Session. Messages are answered one by one;
// one whose content fails its integrity checks is left out and named in
// the final NO, after all the others.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.fetchState, s.readState = nil, nil
	// Each section item is rendered into a spool held until the message's
	// answer is written: bound them (clients ask for a handful).
	if n := len(options.BodySection) + len(options.BinarySection) + len(options.BinarySectionSize); n > maxSections {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeLimit,
			Text: fmt.Sprintf("%d body sections in one FETCH; at most %d", n, maxSections)}
	}
	idx, err := s.sel.resolve(numSet)
	if err != nil {
		return err
	}
	if err := s.fetchVanished(w, numSet, options); err != nil {
		return err
	}
	f := fetch{s: s, w: w, options: options, markSeen: s.marksSeen(options), cols: store.RowFlags, condstore: s.condstore(), lists: s.newFlagLists()}
	if options.InternalDate || options.RFC822Size || needsMeta(options) {
		f.cols = store.RowMeta
	}
	for _, chunk := range chunks(idx, flagBatch) {
		if err := f.chunk(chunk); err != nil {
			return err
		}
	}
	if len(f.failed) > 0 {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCorruption,
			Text: fmt.Sprintf("Message UID %s failed its integrity check and is not shown", uidSet(f.failed))}
	}
	if _, bySeq := numSet.(imap.SeqSet); f.missing && bySeq {
		// UIDs that no longer exist are ignored (RFC 9051 §6.4.8); a
		// sequence number the client still holds is not.
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: codeExpungeIssued,
			Text: "Some messages were expunged by another session"}
	}
	// Answered OK: the Poll that follows takes the state last read.
	s.fetchState = s.readState
	return nil
}

// marksSeen reports whether a FETCH sets \Seen: a non-PEEK body or binary
// section in a mailbox selected read-write (RFC 9051 §6.4.5).
func (s *session) marksSeen(options *imap.FetchOptions) bool {
	if s.sel.readOnly {
		return false
	}
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range options.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// fetch is one FETCH command under way.
type fetch struct {
	s        *session
	w        *imapserver.FetchWriter
	options  *imap.FetchOptions
	markSeen bool
	cols     store.RowColumns
	failed   []uint32 // UIDs whose content failed its integrity checks
	missing  bool     // some messages were expunged meanwhile
	// condstore: a FETCH that sets \Seen tells UID and MODSEQ too
	// (RFC 7162 §3.1).
	condstore bool
	lists     *flagLists
}

// chunk answers one batch of messages, given by their indexes in the
// selected mailbox.
func (f *fetch) chunk(chunk []int) error {
	s, v := f.s, f.s.sel
	uids := make([]uint32, len(chunk))
	for i, p := range chunk {
		uids[i] = v.uids[p]
	}
	seen, err := f.setSeen(uids)
	if err != nil {
		return err
	}
	if f.cols == store.RowFlags {
		return f.flagsChunk(uids, seen)
	}
	rows, metas, err := s.rows(uids, f.cols == store.RowMeta, needsMeta(f.options))
	if err != nil {
		return err
	}
	if metas == nil {
		metas = make([]*meta, len(rows))
	}
	f.missing = f.missing || len(rows) < len(uids)
	if since := int64(f.options.ChangedSince); since != 0 {
		rows, metas = changedSince(rows, metas, since)
	}
	for i, row := range rows {
		seq := uint32(v.index(row.UID) + 1)
		err := s.fetchOne(f.w, seq, row, metas[i], f.options, fetchSeen{changed: seen[row.UID], condstore: f.condstore, lists: f.lists})
		if errors.Is(err, errUnreadable) {
			err = f.gone(row, err)
		}
		if errors.Is(err, errGone) {
			f.missing = true
			continue
		}
		if errors.Is(err, errUnreadable) {
			s.srv.log.Error("imap: message cannot be shown", "user", s.user.Address, "mailbox", v.box.Name, "uid", row.UID, "err", err)
			f.failed = append(f.failed, row.UID)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// flagsChunk is chunk for a FETCH of UID, FLAGS and MODSEQ only, which
// the mailbox index answers alone: no message is opened, so none can be
// unreadable, and each row is made on the stack.
func (f *fetch) flagsChunk(uids []uint32, seen map[uint32]bool) error {
	s, v := f.s, f.s.sel
	rows, err := s.indexRows(uids)
	if err != nil {
		return err
	}
	f.missing = f.missing || len(rows) < len(uids)
	since := int64(f.options.ChangedSince)
	for _, r := range rows {
		if since != 0 && r.ModSeq <= since {
			continue
		}
		row := store.MessageRow{UID: r.UID, MessageID: r.MessageID, Flags: r.Flags, ModSeq: r.ModSeq}
		seq := uint32(v.index(row.UID) + 1)
		if err := s.fetchOne(f.w, seq, &row, nil, f.options, fetchSeen{changed: seen[row.UID], condstore: f.condstore, lists: f.lists}); err != nil {
			return err
		}
	}
	return nil
}

// gone turns the integrity error of a message expunged meanwhile by
// another session into errGone: its blobs may have gone with it.
func (f *fetch) gone(row *store.MessageRow, err error) error {
	there, cerr := f.s.stillThere(f.s.sel.box.ID, row)
	switch {
	case cerr != nil:
		return cerr
	case !there:
		return errGone
	}
	return err
}

// setSeen adds \Seen to uids when the FETCH marks them seen, and says
// which of them changed.
func (f *fetch) setSeen(uids []uint32) (map[uint32]bool, error) {
	seen := map[uint32]bool{}
	if !f.markSeen {
		return seen, nil
	}
	s, v := f.s, f.s.sel
	states, modseq, err := s.srv.st.StoreFlags(s.ctx, v.box.ID, uids, store.FlagsAdd, []string{string(imap.FlagSeen)})
	if err != nil {
		return nil, err
	}
	if modseq != 0 {
		v.own[modseq] = true
	}
	for _, st := range states {
		seen[st.UID] = st.Changed
	}
	return seen, nil
}

func needsMeta(o *imap.FetchOptions) bool {
	return o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
}

// item is one prepared FETCH body item: the bytes to send.
type item struct {
	r      io.Reader
	size   int64
	closer io.Closer // frees r after writing, if set
}

// fetchOne prepares everything a message's FETCH response holds, then
// writes it: nothing is written for a message that cannot be shown.
// fetchSeen says whether this FETCH set the message's \Seen, and whether
// the answer then carries UID and MODSEQ (CONDSTORE); lists makes the
// FETCH's FLAGS lists.
type fetchSeen struct {
	changed, condstore bool
	lists              *flagLists
}

func (s *session) fetchOne(w *imapserver.FetchWriter, seq uint32, row *store.MessageRow, md *meta, o *imap.FetchOptions, seen fetchSeen) error {
	var bodies, binaries []item
	defer func() {
		for _, it := range append(bodies, binaries...) {
			if it.closer != nil {
				it.closer.Close()
			}
		}
	}()
	sizes := make([]uint32, len(o.BinarySectionSize))
	if len(o.BodySection)+len(o.BinarySection)+len(o.BinarySectionSize) > 0 && md == nil {
		return errUnreadable
	}
	for _, bs := range o.BodySection {
		it, err := s.bodySection(row, md, bs)
		if err != nil {
			return err
		}
		bodies = append(bodies, it)
	}
	for _, bs := range o.BinarySection {
		it, err := s.binarySection(row, md, bs.Part, bs.Partial)
		if err != nil {
			return err
		}
		binaries = append(binaries, it)
	}
	for i, bs := range o.BinarySectionSize {
		it, err := s.binarySection(row, md, bs.Part, nil)
		if err != nil {
			return err
		}
		sizes[i] = uint32(min(it.size, 1<<32-1))
		if it.closer != nil {
			it.closer.Close()
		}
	}
	if (o.Envelope || o.BodyStructure != nil) && md == nil {
		return errUnreadable
	}

	resp := w.CreateMessage(seq)
	s.writeHead(resp, row, o, seen)
	if o.InternalDate {
		resp.WriteInternalDate(row.Received)
	}
	if o.RFC822Size {
		size := row.Size
		if md != nil {
			size = md.Size
		}
		resp.WriteRFC822Size(max(size, 0))
	}
	if o.Envelope {
		resp.WriteEnvelope(md.Envelope)
	}
	if o.BodyStructure != nil {
		resp.WriteBodyStructure(md.Root.bodyStructure())
	}
	for i, bs := range o.BodySection {
		bodies[i].r = noNUL{bodies[i].r}
		if err := copyLiteral(resp.WriteBodySection(bs, bodies[i].size), bodies[i], s.copyBuf()); err != nil {
			return err
		}
	}
	for i, bs := range o.BinarySection {
		if err := copyLiteral(resp.WriteBinarySection(bs, binaries[i].size), binaries[i], s.copyBuf()); err != nil {
			return err
		}
	}
	for i, bs := range o.BinarySectionSize {
		resp.WriteBinarySectionSize(bs, sizes[i])
	}
	return resp.Close()
}

// writeHead writes the UID, FLAGS and MODSEQ items: asked for, or, for
// a message this FETCH marked \Seen, FLAGS and (with CONDSTORE) UID and
// MODSEQ (RFC 7162 §3.1).
func (s *session) writeHead(resp *imapserver.FetchResponseWriter, row *store.MessageRow, o *imap.FetchOptions, seen fetchSeen) {
	if o.UID || seen.changed && seen.condstore {
		resp.WriteUID(imap.UID(row.UID))
	}
	if o.Flags || seen.changed {
		resp.WriteFlags(seen.lists.list(s.sel, row.UID, row.Flags))
	}
	if o.ModSeq || seen.changed && seen.condstore {
		resp.WriteModSeq(uint64(row.ModSeq))
	}
}

// noNUL replaces NUL bytes with 0x80, as Dovecot does: a BODY item is an
// ordinary literal, where NUL is not allowed (RFC 9051 §4.3), and the
// size stays what RFC822.SIZE and BODYSTRUCTURE say. BINARY items, sent
// as literal8, carry NUL as it is (RFC 3516).
type noNUL struct{ r io.Reader }

func (n noNUL) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	for i, c := range p[:k] {
		if c == 0 {
			p[i] = 0x80
		}
	}
	return k, err
}

func copyLiteral(wc io.WriteCloser, it item, buf []byte) error {
	_, err := io.CopyBuffer(wc, io.LimitReader(it.r, it.size), buf)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// partial applies a <offset.size> partial range to n bytes.
func partial(p *imap.SectionPartial, n int64) (int64, int64) {
	if p == nil {
		return 0, n
	}
	off := min(p.Offset, n)
	return off, min(p.Size, n-off)
}

// bodySection prepares a BODY[section]<partial> item.
func (s *session) bodySection(row *store.MessageRow, md *meta, bs *imap.FetchItemBodySection) (item, error) {
	sp, ok := md.locate(bs.Part, bs.Specifier)
	if !ok {
		return item{r: strings.NewReader(""), size: 0}, nil
	}
	filter := len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0
	var data []byte
	switch {
	case md.fullHeader() && sp.end <= int64(len(md.Header)):
		// Header sections of the top level come from the cache.
		data = md.Header[sp.start:sp.end]
	case filter:
		msg, err := s.rendered(row, md)
		if err != nil {
			return item{}, err
		}
		data = make([]byte, sp.end-sp.start)
		if _, err := msg.ReadAt(data, sp.start); err != nil && err != io.EOF {
			return item{}, err
		}
	default:
		msg, err := s.rendered(row, md)
		if err != nil {
			return item{}, err
		}
		off, n := partial(bs.Partial, sp.end-sp.start)
		return item{r: msg.Section(sp.start+off, n), size: n}, nil
	}
	if filter {
		data = filterHeader(data, append(bs.HeaderFields, bs.HeaderFieldsNot...), len(bs.HeaderFieldsNot) > 0)
	}
	off, n := partial(bs.Partial, int64(len(data)))
	return item{r: strings.NewReader(string(data[off : off+n])), size: n}, nil
}

// rendered returns the verified message as the client sees it, from the
// session's one-message cache (clients fetch big messages in chunks).
func (s *session) rendered(row *store.MessageRow, md *meta) (*store.Spool, error) {
	if c := s.cached; c != nil && c.matches(row) {
		return c.sp, nil
	}
	m, err := s.srv.st.SealedMessage(s.ctx, row.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errGone
	}
	if err != nil {
		return nil, err
	}
	if !sameMessage(row, m) {
		return nil, errGone
	}
	o, err := s.acct.open(s.ctx, m)
	if err != nil {
		return nil, err
	}
	sp, err := s.acct.render(o, s.srv.prefix(m, m.Auth))
	if err != nil {
		return nil, err
	}
	if md != nil && sp.Size() != md.Size {
		sp.Close()
		return nil, fmt.Errorf("%w: message is %d bytes, its metadata says %d", errUnreadable, sp.Size(), md.Size)
	}
	s.cache(row, sp)
	return sp, nil
}

// renderedMessage is the session's last rendered message. Message ids may
// be reused after a deletion, so it is known by id, catalog and the
// fields in front as well.
type renderedMessage struct {
	id      int64
	catalog string
	prefix  string
	sp      *store.Spool
}

func (c *renderedMessage) matches(row *store.MessageRow) bool {
	return c.id == row.MessageID && c.catalog == row.Catalog && c.prefix == row.Source+"\x00"+row.Auth+"\x00"+string(row.Trace)
}

func (s *session) cache(row *store.MessageRow, sp *store.Spool) {
	s.dropCache()
	s.cached = &renderedMessage{id: row.MessageID, catalog: row.Catalog, prefix: row.Source + "\x00" + row.Auth + "\x00" + string(row.Trace), sp: sp}
}

func (s *session) dropCache() {
	if s.cached != nil {
		s.cached.sp.Close()
		s.cached = nil
	}
}

// metas returns the metadata caches of rows, building the missing ones
// (and storing them) from the messages themselves. A message that cannot
// be opened gets nil.
func (s *session) metas(rows []*store.MessageRow) ([]*meta, error) {
	out := make([]*meta, len(rows))
	var missing []int64
	var updates []store.MetaUpdate
	for i, row := range rows {
		if md := s.cachedMetaOf(row); md != nil {
			out[i] = md
			continue
		}
		if len(row.Meta) > 0 {
			md, err := s.acct.metas.open(row.Meta, row.MessageID)
			if err == nil {
				out[i] = md
				updates = s.storeUpgraded(updates, md, row.MessageID)
				s.keepMeta(row, md)
				continue
			}
			s.srv.log.Warn("imap: metadata cache unreadable, rebuilding", "message", row.MessageID, "err", err)
		}
		missing = append(missing, row.MessageID)
	}
	if len(missing) == 0 {
		s.setMetas(updates)
		return out, nil
	}
	sealed, err := s.srv.st.SealedMessages(s.ctx, missing)
	if err != nil {
		return nil, err
	}
	for i, row := range rows {
		m := sealed[row.MessageID]
		if out[i] != nil || !sameMessage(row, m) {
			continue // expunged meanwhile: the caller finds it gone
		}
		md, sp, err := s.acct.build(s.ctx, m, m.Auth)
		if errors.Is(err, errUnreadable) {
			s.srv.log.Error("imap: message cannot be shown", "message", row.MessageID, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		s.cache(row, sp)
		b, err := s.acct.metas.seal(md, row.MessageID)
		if err != nil {
			return nil, err
		}
		out[i] = md
		row.Meta = b
		s.keepMeta(row, md)
		updates = append(updates, store.MetaUpdate{MessageID: row.MessageID, Meta: b, Size: md.Size})
	}
	s.setMetas(updates)
	return out, nil
}

// changedSince keeps the rows (and their metas) changed after modseq
// since (RFC 7162 §3.1.4.1).
func changedSince(rows []*store.MessageRow, metas []*meta, since int64) ([]*store.MessageRow, []*meta) {
	keptRows, keptMetas := rows[:0], metas[:0]
	for i, r := range rows {
		if r.ModSeq > since {
			keptRows, keptMetas = append(keptRows, r), append(keptMetas, metas[i])
		}
	}
	return keptRows, keptMetas
}

// storeUpgraded adds md to updates when it was read from an older
// layout, so that it is stored in the current one.
func (s *session) storeUpgraded(updates []store.MetaUpdate, md *meta, messageID int64) []store.MetaUpdate {
	if !md.upgraded {
		return updates
	}
	b, err := s.acct.metas.seal(md, messageID)
	if err != nil {
		return updates
	}
	md.upgraded = false
	return append(updates, store.MetaUpdate{MessageID: messageID, Meta: b, Size: md.Size})
}

// setMetas stores metadata caches; a failure only costs a rebuild later.
func (s *session) setMetas(updates []store.MetaUpdate) {
	if err := s.srv.st.SetMessageMeta(s.ctx, updates); err != nil {
		s.srv.log.Warn("imap: storing metadata caches", "err", err)
	}
}

// fillSizes sets the size of rows whose message has no metadata cache yet
// (filed by a path without the private key), building the cache.
func (s *session) fillSizes(rows []*store.MessageRow) error {
	var unknown []*store.MessageRow
	for _, row := range rows {
		if row.Size < 0 {
			unknown = append(unknown, row)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	metas, err := s.metas(unknown)
	if err != nil {
		return err
	}
	for i, md := range metas {
		if md != nil {
			unknown[i].Size = md.Size
		}
	}
	return nil
}
