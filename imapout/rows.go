package imapout

import (
	"tollbridge/store"
)

// metaCacheBytes bounds an account's cache of message rows and their
// decoded metadata (weighed as twice the sealed caches): 10,000 messages
// of ordinary mail fit, so that listing and searching a big mailbox again
// need neither the sealed metadata from the database nor its decryption,
// only the flags. A smaller bound would not do: listing a mailbox that
// does not fit reads it in order, which an LRU cache never serves.
const metaCacheBytes = 96 << 20

// metaKey names a message in a mailbox for as long as the mailbox's
// UIDVALIDITY lasts: a UID is never given to another message, and a
// user's UIDVALIDITY values are never reused (store: uid_validity_seq).
type metaKey struct {
	mailbox  int64
	validity uint32
	uid      uint32
}

// cachedMeta is what never changes of a message row (all but its flags
// and modseq) and its decoded metadata cache.
type cachedMeta struct {
	row store.MessageRow // Flags, ModSeq and Meta left empty
	md  *meta
}

// cachedMetaOf returns the decoded metadata of row in the selected
// mailbox, if the account has it, and fills in row's other columns.
func (s *session) cachedMetaOf(row *store.MessageRow) *meta {
	if s.sel == nil {
		return nil
	}
	c, ok := s.acct.metaCache.get(metaKey{s.sel.box.ID, s.sel.box.UIDValidity, row.UID})
	if !ok || c.row.MessageID != row.MessageID {
		return nil
	}
	flags, modseq := row.Flags, row.ModSeq
	*row = c.row
	row.Flags, row.ModSeq = flags, modseq
	return c.md
}

// keepMeta adds a full row (RowMeta) of the selected mailbox and its
// decoded metadata to the account's cache; the sealed metadata's size
// stands for its weight.
func (s *session) keepMeta(row *store.MessageRow, md *meta) {
	if s.sel == nil || md == nil {
		return
	}
	c := cachedMeta{row: *row, md: md}
	c.row.Flags, c.row.ModSeq, c.row.Meta, c.row.Size = nil, 0, nil, md.Size
	weight := int64(2*len(row.Meta) + len(row.Trace) + 256)
	s.acct.metaCache.put(metaKey{s.sel.box.ID, s.sel.box.UIDValidity, row.UID}, c, weight)
}

// rows reads the rows of uids in the selected mailbox: only flags when
// !full (and no metas), else whole rows and the metadata caches the
// account holds of them; with metas, those it lacks are read (built when
// missing) too, else only their sizes. Whole rows come from the account's cache where it has
// them, with the flags read now; only the others are read whole, a
// batch at a time.
func (s *session) rows(uids []uint32, full, metas bool) ([]*store.MessageRow, []*meta, error) {
	rows, err := s.flagRows(uids)
	if err != nil || !full {
		return rows, nil, err
	}
	mds := make([]*meta, len(rows))
	var missing []uint32
	for i, row := range rows {
		if mds[i] = s.cachedMetaOf(row); mds[i] == nil {
			missing = append(missing, row.UID)
		}
	}
	if len(missing) == 0 {
		return rows, mds, nil
	}
	var read []*store.MessageRow
	var readMetas []*meta
	for i := 0; i < len(missing); i += batch {
		r, m, err := s.readRows(missing[i:min(i+batch, len(missing))], metas)
		if err != nil {
			return nil, nil, err
		}
		read, readMetas = append(read, r...), append(readMetas, m...)
	}
	rows, mds = mergeRows(rows, mds, read, readMetas)
	return rows, mds, nil
}

// readRows reads whole rows from the store with their metadata caches
// (metas) or their sizes.
func (s *session) readRows(uids []uint32, metas bool) ([]*store.MessageRow, []*meta, error) {
	rows, err := s.srv.st.MessageRows(s.ctx, s.sel.box.ID, uids, store.RowMeta)
	if err != nil {
		return nil, nil, err
	}
	if metas {
		mds, err := s.metas(rows)
		for _, r := range rows {
			r.Meta = nil // decoded now; a chunk of rows holds no sealed copies
		}
		return rows, mds, err
	}
	return rows, make([]*meta, len(rows)), s.fillSizes(rows)
}

// mergeRows puts the rows read whole (ascending UIDs, for the rows that
// had no cache) in the place of those rows; one expunged between the two
// reads is left out.
func mergeRows(rows []*store.MessageRow, mds []*meta, read []*store.MessageRow, readMetas []*meta) ([]*store.MessageRow, []*meta) {
	outRows := make([]*store.MessageRow, 0, len(rows))
	outMetas := make([]*meta, 0, len(rows))
	j := 0
	for i, row := range rows {
		if mds[i] != nil {
			outRows, outMetas = append(outRows, row), append(outMetas, mds[i])
			continue
		}
		for j < len(read) && read[j].UID < row.UID {
			j++
		}
		if j < len(read) && read[j].UID == row.UID {
			outRows, outMetas = append(outRows, read[j]), append(outMetas, readMetas[j])
		}
	}
	return outRows, outMetas
}
