package imapout

import (
	"slices"
	"sort"
	"sync"

	"tollbridge/store"
)

// flagCache holds the flag rows (store.RowFlags) of a run of a mailbox's
// messages as the store had them at one mailbox modseq. Every change of a
// mailbox (flags by any session or node, APPEND, COPY, expunge) takes the
// next mailboxes.modseq in its own transaction, so while the mailbox's
// modseq is still seq nothing it holds is stale; a FETCH (FLAGS) of a big
// mailbox then costs one small query instead of reading every row again.
type flagCache struct {
	seq int64
	// rows holds every message of the mailbox from UID lo to hi
	// (ascending UIDs).
	lo, hi uint32
	rows   []store.MessageRow
}

// flagCaches are an account's flag caches, one a mailbox (and
// UIDVALIDITY), shared by the user's sessions: a client that opens a
// connection per task finds them warm.
type flagCaches struct {
	mu sync.Mutex
	m  map[metaKey]*flagCache // uid 0
}

// maxFlagCaches bounds an account's flag caches: clients list a few
// mailboxes over and over.
const maxFlagCaches = 8

// flagRows reads the flag rows of uids in the selected mailbox, from the
// account's cache while the mailbox's modseq says nothing changed.
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
	fc := &s.acct.flags
	key := metaKey{mailbox: v.box.ID, validity: v.box.UIDValidity}
	if rows := fc.pick(key, state.ModSeq, uids); rows != nil {
		return rows, nil
	}
	rows, err := s.srv.st.MessageRows(s.ctx, v.box.ID, uids, store.RowFlags)
	if err != nil {
		return nil, err
	}
	if v.run(uids) {
		fc.add(key, v, state.ModSeq, uids[0], uids[len(uids)-1], rows)
	}
	return rows, nil
}

// pick returns copies of the cached rows of uids when the cache of key
// holds them at modseq seq; nil when it does not.
func (fc *flagCaches) pick(key metaKey, seq int64, uids []uint32) []*store.MessageRow {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	c := fc.m[key]
	if c == nil || c.seq != seq || uids[0] < c.lo || c.hi < uids[len(uids)-1] {
		return nil
	}
	return c.pick(uids)
}

// add keeps rows read at seq for the run lo..hi of view v.
func (fc *flagCaches) add(key metaKey, v *selected, seq int64, lo, hi uint32, rows []*store.MessageRow) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	c := fc.m[key]
	if c == nil {
		if len(fc.m) >= maxFlagCaches || fc.m == nil {
			fc.m = map[metaKey]*flagCache{}
		}
		c = &flagCache{}
		fc.m[key] = c
	}
	c.add(v, seq, lo, hi, rows)
}

// run reports whether uids are all the view's UIDs from the first to the
// last: only then does a read of them say which messages of that range
// exist. (A view lacks no UID of the mailbox below its uidNext but those
// expunged, which the read finds gone too.)
func (v *selected) run(uids []uint32) bool {
	i := v.index(uids[0])
	return i >= 0 && i+len(uids) <= len(v.uids) && slices.Equal(v.uids[i:i+len(uids)], uids)
}

// add keeps rows, read at modseq seq for the view's run lo..hi: appended
// to the cache when they continue it in v (a FETCH 1:* reads in chunks),
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
