package imapout

import (
	"slices"
	"sort"

	"tollbridge/store"
)

// flagCache holds the flag rows (store.RowFlags) of a run of the selected
// mailbox's messages as the store had them at one mailbox modseq. Every
// change of a mailbox (flags by any session or node, APPEND, COPY,
// expunge) takes the next mailboxes.modseq in its own transaction, so
// while the mailbox's modseq is still seq nothing it holds is stale; a
// FETCH (FLAGS) of a big mailbox then costs one small query instead of
// reading every row again.
type flagCache struct {
	seq int64
	// rows covers every message of the view from lo to hi (ascending
	// UIDs; one absent was expunged).
	lo, hi uint32
	rows   []store.MessageRow
}

// flagRows reads the flag rows of uids in the selected mailbox, from the
// view's cache while the mailbox's modseq says nothing changed.
func (s *session) flagRows(uids []uint32) ([]*store.MessageRow, error) {
	v := s.sel
	if len(uids) == 0 {
		return nil, nil
	}
	state, err := s.srv.st.MailboxState(s.ctx, v.box.ID)
	if err != nil {
		// A deleted mailbox: the store answers as it did before.
		return s.srv.st.MessageRows(s.ctx, v.box.ID, uids, store.RowFlags)
	}
	c := &v.flagCache
	lo, hi := uids[0], uids[len(uids)-1]
	if c.rows != nil && c.seq == state.ModSeq && c.lo <= lo && hi <= c.hi {
		return c.pick(uids), nil
	}
	rows, err := s.srv.st.MessageRows(s.ctx, v.box.ID, uids, store.RowFlags)
	if err != nil {
		return nil, err
	}
	if v.run(uids) {
		c.add(v, state.ModSeq, lo, hi, rows)
	}
	return rows, nil
}

// run reports whether uids are all the view's UIDs from the first to the
// last: only then does a read of them say which messages of that range
// exist.
func (v *selected) run(uids []uint32) bool {
	i := v.index(uids[0])
	return i >= 0 && i+len(uids) <= len(v.uids) && slices.Equal(v.uids[i:i+len(uids)], uids)
}

// add keeps rows, read at modseq seq for the view's run lo..hi: appended
// to the cache when they continue it (a FETCH 1:* reads in chunks),
// else in its place unless the cache holds more of the same modseq.
func (c *flagCache) add(v *selected, seq int64, lo, hi uint32, rows []*store.MessageRow) {
	next := -1
	if i := v.index(c.hi); i >= 0 && c.rows != nil {
		next = i + 1
	}
	if c.seq != seq || next < 0 || next >= len(v.uids) || v.uids[next] != lo {
		if c.seq == seq && len(rows) < len(c.rows) {
			return // a FETCH of a few messages keeps the bigger run
		}
		c.seq, c.lo, c.rows = seq, lo, make([]store.MessageRow, 0, len(rows))
	}
	for _, r := range rows {
		c.rows = append(c.rows, *r)
	}
	c.hi = hi
}

// pick returns copies of the cached rows of uids (within lo..hi); the
// caller may change them.
func (c *flagCache) pick(uids []uint32) []*store.MessageRow {
	out := make([]*store.MessageRow, 0, len(uids))
	copies := make([]store.MessageRow, 0, len(uids))
	j := sort.Search(len(c.rows), func(i int) bool { return c.rows[i].UID >= uids[0] })
	for _, uid := range uids {
		for j < len(c.rows) && c.rows[j].UID < uid {
			j++
		}
		if j < len(c.rows) && c.rows[j].UID == uid {
			copies = append(copies, c.rows[j])
			out = append(out, &copies[len(copies)-1])
		}
	}
	return out
}
