package imapout

import (
	"context"
	"math"
	"slices"
	"sort"
	"sync"

	"tollbridge/store"
)

// mailboxIndex holds the UID, modseq, message id and flags of every
// message of one mailbox, as the store had them at mailbox modseq seq.
// Every change of a mailbox (flags by any session or node, APPEND, COPY,
// expunge) takes the next mailboxes.modseq in its own transaction and
// stamps the rows it changes with it, and every expunge leaves a record
// with it: the index is brought up to date by reading only what changed
// after seq, so a FETCH (FLAGS) or a SELECT of a big mailbox costs two
// small queries instead of reading every row again (Dovecot keeps its
// index files for the same reason).
type mailboxIndex struct {
	mu   sync.Mutex // held while the index is read or brought up to date
	seq  int64      // 0: not read yet
	rows []store.IndexRow
	used uint64 // when it was last asked for (flagCaches.clock); flagCaches.mu
}

// flagCaches are an account's mailbox indexes, one a mailbox (and
// UIDVALIDITY), shared by the user's sessions: a client that opens a
// connection per task finds them warm.
type flagCaches struct {
	mu    sync.Mutex
	m     map[metaKey]*mailboxIndex // uid 0
	clock uint64
}

// maxFlagCaches bounds an account's mailbox indexes: a client that
// synchronizes every folder in turn keeps the ones it uses most; the
// least recently used goes first.
const maxFlagCaches = 16

// get returns the index of key, creating an empty one.
func (fc *flagCaches) get(key metaKey) *mailboxIndex {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.clock++
	if x := fc.m[key]; x != nil {
		x.used = fc.clock
		return x
	}
	if fc.m == nil {
		fc.m = map[metaKey]*mailboxIndex{}
	}
	if len(fc.m) >= maxFlagCaches {
		var oldest metaKey
		var at uint64 = math.MaxUint64
		for k, x := range fc.m {
			if x.used < at {
				oldest, at = k, x.used
			}
		}
		delete(fc.m, oldest)
	}
	x := &mailboxIndex{used: fc.clock}
	fc.m[key] = x
	return x
}

// lockedIndex returns the account's index of box brought up to date with
// state (at least), locked: the caller unlocks it.
func (s *session) lockedIndex(box *store.Mailbox, state store.MailboxState) (*mailboxIndex, error) {
	x := s.acct.flags.get(metaKey{mailbox: box.ID, validity: box.UIDValidity})
	x.mu.Lock()
	if err := x.refresh(s.ctx, s.srv.st, box.ID, state.ModSeq); err != nil {
		x.mu.Unlock()
		return nil, err
	}
	return x, nil
}

// refresh brings the index up to modseq seq or later: the rows changed
// since, less the messages expunged since, or the whole mailbox when the
// index is empty or the expunge records it would need were pruned. x.mu
// is held.
func (x *mailboxIndex) refresh(ctx context.Context, st *store.Store, mailboxID, seq int64) error {
	if x.seq != 0 && x.seq >= seq {
		return nil
	}
	if x.seq != 0 {
		gone, complete, err := st.ExpungedAfter(ctx, mailboxID, x.seq, math.MaxInt64)
		if err != nil {
			return err
		}
		if complete {
			changed, err := st.IndexRows(ctx, mailboxID, x.seq)
			if err != nil {
				return err
			}
			x.rows, x.seq = merge(x.rows, changed, gone), seq
			return nil
		}
	}
	rows, err := st.IndexRows(ctx, mailboxID, 0)
	if err != nil {
		x.seq, x.rows = 0, nil
		return err
	}
	x.rows, x.seq = rows, seq
	return nil
}

// merge applies changed rows and expunged UIDs (both ascending) to rows
// (ascending): a row changed after it was expunged is left out too.
func merge(rows, changed []store.IndexRow, gone []uint32) []store.IndexRow {
	var added []store.IndexRow
	for _, c := range changed {
		if i, ok := findRow(rows, c.UID); ok {
			rows[i] = c
		} else {
			added = append(added, c)
		}
	}
	if len(gone) > 0 {
		rows = slices.DeleteFunc(rows, func(r store.IndexRow) bool {
			_, expunged := slices.BinarySearch(gone, r.UID)
			return expunged
		})
	}
	for _, a := range added {
		if _, expunged := slices.BinarySearch(gone, a.UID); !expunged {
			rows = append(rows, a)
		}
	}
	if len(added) > 0 {
		// New messages have UIDs above all others; a changed row read
		// before its neighbours is put in place all the same.
		slices.SortFunc(rows, func(a, b store.IndexRow) int { return int(int64(a.UID) - int64(b.UID)) })
	}
	return rows
}

func findRow(rows []store.IndexRow, uid uint32) (int, bool) {
	return slices.BinarySearchFunc(rows, uid, func(r store.IndexRow, uid uint32) int { return int(int64(r.UID) - int64(uid)) })
}

// flagRows reads the flag rows of uids (ascending) in the selected
// mailbox from the account's index of it.
func (s *session) flagRows(uids []uint32) ([]*store.MessageRow, error) {
	irows, err := s.indexRows(uids)
	if err != nil {
		return nil, err
	}
	rows := make([]store.MessageRow, len(irows))
	out := make([]*store.MessageRow, len(irows))
	for i, r := range irows {
		rows[i] = store.MessageRow{UID: r.UID, MessageID: r.MessageID, Flags: r.Flags, ModSeq: r.ModSeq}
		out[i] = &rows[i]
	}
	return out, nil
}

// indexRows returns the index rows of uids (ascending) in the selected
// mailbox, copied from the account's index of it.
func (s *session) indexRows(uids []uint32) ([]store.IndexRow, error) {
	v := s.sel
	if len(uids) == 0 {
		return nil, nil
	}
	state, err := s.srv.st.MailboxState(s.ctx, v.box.ID)
	if err != nil {
		// A deleted mailbox: the store answers as it did before.
		rows, err := s.srv.st.MessageRows(s.ctx, v.box.ID, uids, store.RowFlags)
		out := make([]store.IndexRow, len(rows))
		for i, r := range rows {
			out[i] = store.IndexRow{UID: r.UID, ModSeq: r.ModSeq, MessageID: r.MessageID, Flags: r.Flags}
		}
		return out, err
	}
	x, err := s.lockedIndex(v.box, state)
	if err != nil {
		return nil, err
	}
	defer x.mu.Unlock()
	s.readState = &state
	return x.pick(uids), nil
}

// pick returns copies of the rows of those of uids (ascending) the index
// holds.
func (x *mailboxIndex) pick(uids []uint32) []store.IndexRow {
	out := make([]store.IndexRow, 0, len(uids))
	j := sort.Search(len(x.rows), func(i int) bool { return x.rows[i].UID >= uids[0] })
	for _, uid := range uids {
		for j < len(x.rows) && x.rows[j].UID < uid {
			j++
		}
		if j < len(x.rows) && x.rows[j].UID == uid {
			out = append(out, x.rows[j])
		}
	}
	return out
}

// uids returns the UIDs the index holds and the lowest without \Seen (0
// if none), for SELECT.
func (x *mailboxIndex) uids() (uids []uint32, firstUnseen uint32) {
	uids = make([]uint32, len(x.rows))
	for i, r := range x.rows {
		uids[i] = r.UID
		if firstUnseen == 0 && !slices.Contains(r.Flags, `\Seen`) {
			firstUnseen = r.UID
		}
	}
	return uids, firstUnseen
}
