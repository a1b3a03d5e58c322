package imapout

import (
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// CONDSTORE and QRESYNC (RFC 7162). Every change of a mailbox (flags,
// arrival, expunge) takes the next value of the mailbox's modseq in the
// same store transaction, and each message keeps the modseq of its last
// change; expunges leave records (UID and modseq) that the store prunes
// after a while, raising the mailbox's expunged floor. What vanished since
// a modseq is read from those records while they are complete, and is
// worked out from the UIDs that still exist when they are not.

// imapserver calls SelectResync only on sessions that have it.
var _ imapserver.SessionQResync = (*session)(nil)

// SelectResync implements imapserver.SessionQResync: after SELECT (QRESYNC
// (uidvalidity modseq [known-uids [seq-match]])) it sends VANISHED
// (EARLIER) for the known UIDs expunged since modseq, then FETCH (UID
// FLAGS MODSEQ) for every message changed since (RFC 7162 §3.2.5).
func (s *session) SelectResync(w *imapserver.FetchWriter, q *imap.SelectQResync) error {
	v := s.sel
	if v == nil {
		return nil
	}
	known := q.KnownUIDs
	if known == nil {
		known = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}} // 1:*
	}
	gone, err := s.vanished(known, int64(q.ModSeq), seqMatchFloor(v, q.SeqMatch))
	if err != nil {
		return err
	}
	if err := w.WriteVanished(gone); err != nil {
		return err
	}
	return s.writeChanged(w, int64(q.ModSeq))
}

// writeChanged sends FETCH (UID FLAGS MODSEQ) for the messages of the
// view changed after modseq since, as the view knows them.
func (s *session) writeChanged(w *imapserver.FetchWriter, since int64) error {
	v := s.sel
	if since >= v.flagSeq {
		return nil
	}
	changes, err := s.srv.st.ChangedFlags(s.ctx, v.box.ID, since, v.uidNext-1)
	if err != nil {
		return err
	}
	for _, c := range changes {
		i := v.index(c.UID)
		if i < 0 || c.ModSeq > v.flagSeq {
			continue // the next poll reports it
		}
		resp := w.CreateMessage(uint32(i + 1))
		resp.WriteUID(imap.UID(c.UID))
		resp.WriteFlags(s.flagList(c.UID, c.Flags))
		resp.WriteModSeq(uint64(c.ModSeq))
		if err := resp.Close(); err != nil {
			return err
		}
	}
	return nil
}

// vanished returns the UIDs in set, above floor, that were expunged after
// modseq since and that the view no longer holds. While the expunge
// records since then are complete, they answer; once pruned, every UID of
// set below UIDNEXT that the mailbox no longer holds is reported, which
// RFC 7162 §3.2.5.2 allows (the client may hear of UIDs it never knew).
func (s *session) vanished(set imap.UIDSet, since int64, floor uint32) (imap.UIDSet, error) {
	v := s.sel
	last := v.uidNext - 1
	uids, complete, err := s.srv.st.ExpungedAfter(s.ctx, v.box.ID, since, v.expSeq)
	if err != nil {
		return nil, err
	}
	var out []uint32
	if complete {
		for _, uid := range uids {
			if uid > floor && uidContains(set, uid, last) && v.index(uid) < 0 {
				out = append(out, uid)
			}
		}
		return uidSet(out), nil
	}
	var gaps imap.UIDSet
	for _, r := range set {
		start, stop := bounds(uint32(r.Start), uint32(r.Stop), last)
		gaps = append(gaps, v.gaps(max(start, floor+1), min(stop, last))...)
	}
	return gaps, nil
}

// gaps returns the UIDs in [start, stop] that the view does not hold.
func (v *selected) gaps(start, stop uint32) imap.UIDSet {
	var out imap.UIDSet
	if start == 0 || start > stop {
		return nil
	}
	i := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= start })
	next := start
	for ; i < len(v.uids) && v.uids[i] <= stop; i++ {
		if v.uids[i] > next {
			out = append(out, imap.UIDRange{Start: imap.UID(next), Stop: imap.UID(v.uids[i] - 1)})
		}
		next = v.uids[i] + 1
	}
	if next <= stop && next != 0 {
		out = append(out, imap.UIDRange{Start: imap.UID(next), Stop: imap.UID(stop)})
	}
	return out
}

// seqMatchFloor applies QRESYNC's message sequence match data (RFC 7162
// §3.2.5.2): pairs of a sequence number and the UID the client had for
// it, compared in order with the mailbox now; up to the last pair that
// still matches, before the first that does not, the client knows every
// expunge. It returns that UID (0: no help).
func seqMatchFloor(v *selected, m *imap.SelectSeqMatch) uint32 {
	if m == nil {
		return 0
	}
	seqs, ok1 := m.SeqNums.Nums()
	uids, ok2 := m.UIDs.Nums()
	if !ok1 || !ok2 || len(seqs) != len(uids) {
		return 0 // a malformed hint is ignored; the answer is only longer
	}
	var floor uint32
	for i, seq := range seqs {
		if seq == 0 || int(seq) > len(v.uids) || v.uids[seq-1] != uint32(uids[i]) {
			break
		}
		floor = uint32(uids[i])
	}
	return floor
}

// fetchVanished sends the VANISHED (EARLIER) of UID FETCH (CHANGEDSINCE n
// VANISHED) before its FETCH responses (RFC 7162 §3.2.6).
func (s *session) fetchVanished(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	set, ok := numSet.(imap.UIDSet)
	if !ok || !options.Vanished {
		return nil
	}
	if imap.IsSearchRes(numSet) {
		set = s.sel.result
	}
	gone, err := s.vanished(set, int64(options.ChangedSince), 0)
	if err != nil {
		return err
	}
	return w.WriteVanished(gone)
}

// expungeTeller is what EXPUNGE, MOVE and the updates write expunges
// with.
type expungeTeller interface {
	WriteExpunge(seqNum uint32) error
	WriteVanished(uids imap.UIDSet) error
}

// tellExpunged drops the gone UIDs from the view and tells the client:
// one VANISHED once QRESYNC is enabled (RFC 7162 §3.2.10), else an
// EXPUNGE per message, each numbered after the ones before it
// (RFC 9051 §7.4.1).
func (s *session) tellExpunged(w expungeTeller, gone []uint32, qresync bool) error {
	v := s.sel
	var told []uint32
	for _, uid := range gone {
		i := v.index(uid)
		if i < 0 {
			continue
		}
		seq := v.remove(i)
		if qresync {
			told = append(told, uid)
		} else if err := w.WriteExpunge(seq); err != nil {
			return err
		}
	}
	if qresync {
		return w.WriteVanished(uidSet(told))
	}
	return nil
}

// modifiedSet is the [MODIFIED …] of a conditional STORE: sequence
// numbers for STORE, UIDs for UID STORE (RFC 7162 §3.1.3).
func (v *selected) modifiedSet(uids []uint32, byUID bool) imap.NumSet {
	if byUID {
		return uidSet(uids)
	}
	var set imap.SeqSet
	for _, uid := range uids {
		if i := v.index(uid); i >= 0 {
			set = appendSeq(set, uint32(i+1))
		}
	}
	return set
}

// qresync reports whether the client enabled QRESYNC.
func (s *session) qresync() bool { return s.conn.EnabledCaps().Has(imap.CapQResync) }

// condstore reports whether the client enabled CONDSTORE, explicitly or
// by a CONDSTORE enabling command (RFC 7162 §3.1).
func (s *session) condstore() bool { return s.conn.EnabledCaps().Has(imap.CapCondStore) }
