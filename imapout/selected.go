package imapout

import (
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/store"
)

// selected is a session's view of its selected mailbox: the UIDs its
// client knows, in order (message sequence number n is uids[n-1]), and how
// far it has been told about changes. Changes by anybody are found in the
// store by modseq, so sessions share no locks; a session is only told
// about a change at a point where IMAP allows it (RFC 9051 §7.5.1).
type selected struct {
	box      *store.Mailbox
	readOnly bool
	uids     []uint32
	uidNext  uint32 // every UID below is in uids or was expunged
	flagSeq  int64  // flag changes up to this modseq were reported
	expSeq   int64  // expunges up to this modseq were reported
	own      map[int64]bool
	recent   map[uint32]bool
	told     int // the RECENT count the client was last told
	keywords []string
	result   imap.UIDSet // SEARCH RETURN (SAVE)
	gone     bool        // the mailbox was deleted
	// condstore: the client was told HIGHESTMODSEQ with CONDSTORE
	// enabled; a CONDSTORE enabling command after SELECT tells it then.
	condstore bool
}

// systemFlags are the flags every mailbox supports.
var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

func (v *selected) flags() []imap.Flag {
	out := append([]imap.Flag{}, systemFlags...)
	for _, k := range v.keywords {
		out = append(out, imap.Flag(k))
	}
	return out
}

func (v *selected) permanentFlags() []imap.Flag {
	if v.readOnly {
		return []imap.Flag{}
	}
	return append(v.flags(), imap.FlagWildcard)
}

// index returns the position of uid in the view, -1 if absent.
func (v *selected) index(uid uint32) int {
	i := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= uid })
	if i < len(v.uids) && v.uids[i] == uid {
		return i
	}
	return -1
}

// remove drops a message from the view and returns its sequence number.
func (v *selected) remove(i int) uint32 {
	delete(v.recent, v.uids[i])
	v.uids = append(v.uids[:i], v.uids[i+1:]...)
	return uint32(i + 1)
}

func (v *selected) lastUID() uint32 {
	if len(v.uids) == 0 {
		return 0
	}
	return v.uids[len(v.uids)-1]
}

// Select implements imapserver.Session.
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.sel = nil
	st := s.srv.st
	box, err := st.MailboxByName(s.ctx, s.user.ID, name)
	if err != nil {
		return nil, mailboxError(err)
	}
	state, err := st.MailboxState(s.ctx, box.ID)
	if err != nil {
		return nil, mailboxError(err)
	}
	uids, firstUnseen, err := s.selectUIDs(box, state)
	if err != nil {
		return nil, err
	}
	v := &selected{
		box: box, readOnly: options.ReadOnly, uids: uids, uidNext: state.UIDNext,
		flagSeq: state.ModSeq, expSeq: state.ModSeq, own: map[int64]bool{}, recent: map[uint32]bool{},
		keywords: state.Keywords,
	}
	if n := len(uids); n > 0 && uids[n-1] >= v.uidNext {
		v.uidNext = uids[n-1] + 1
	}
	seenUpTo := box.RecentUID
	if !v.readOnly {
		if seenUpTo, err = st.ClaimRecent(s.ctx, box.ID, v.uidNext-1); err != nil {
			return nil, err
		}
	}
	for i := len(uids) - 1; i >= 0 && uids[i] > seenUpTo; i-- {
		v.recent[uids[i]] = true
	}
	v.told = len(v.recent)
	data := &imap.SelectData{
		Flags: v.flags(), PermanentFlags: v.permanentFlags(),
		NumMessages: uint32(len(uids)), NumRecent: uint32(len(v.recent)),
		UIDNext: imap.UID(v.uidNext), UIDValidity: box.UIDValidity,
		HighestModSeq: uint64(state.ModSeq), // RFC 7162 §3.1.2.1: always, never NOMODSEQ
	}
	v.condstore = options.CondStore || options.QResync != nil || s.condstore()
	if i := v.index(firstUnseen); firstUnseen != 0 && i >= 0 {
		data.FirstUnseenSeqNum = uint32(i + 1)
	}
	if s.conn.EnabledCaps().Has(imap.CapIMAP4rev2) {
		data.List = &imap.ListData{Delim: delim, Mailbox: box.Name}
	}
	s.sel = v
	return data, nil
}

// selectUIDs returns the UIDs of box and the lowest without \Seen (0 if
// none) as of state, from the account's index of the mailbox; from the
// store itself when the index went past state meanwhile (the view must
// start exactly at state.ModSeq).
func (s *session) selectUIDs(box *store.Mailbox, state store.MailboxState) ([]uint32, uint32, error) {
	x, err := s.lockedIndex(box, state)
	if err != nil {
		return nil, 0, err
	}
	if x.seq == state.ModSeq {
		uids, first := x.uids()
		x.mu.Unlock()
		return uids, first, nil
	}
	x.mu.Unlock()
	uids, err := s.srv.st.MailboxUIDs(s.ctx, box.ID, 0, 0)
	if err != nil {
		return nil, 0, err
	}
	first, err := s.srv.st.FirstUnseen(s.ctx, box.ID)
	return uids, first, err
}

// Unselect implements imapserver.Session.
func (s *session) Unselect() error {
	s.sel = nil
	return nil
}

// Poll implements imapserver.Session: it tells the client what changed in
// its selected mailbox since it last heard, in the order RFC 9051 wants:
// EXPUNGE or VANISHED (when allowed), FLAGS, EXISTS and RECENT, then FETCH
// of changed flags (with MODSEQ once CONDSTORE is enabled).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if err := s.checkKey(); err != nil {
		return err
	}
	v := s.sel
	if v == nil || v.gone {
		return nil
	}
	state, err := s.pollState()
	if errors.Is(err, store.ErrNotFound) {
		return s.mailboxGone(w, allowExpunge)
	}
	if err != nil {
		return err
	}
	if err := s.pollHighest(w, state, allowExpunge); err != nil {
		return err
	}
	if state.ModSeq == v.flagSeq && (state.ModSeq == v.expSeq || !allowExpunge) && state.UIDNext == v.uidNext && v.told == len(v.recent) {
		return nil
	}
	if allowExpunge && state.ModSeq > v.expSeq {
		if err := s.pollExpunged(w, state); err != nil {
			return err
		}
	}
	if newKeywords(v.keywords, state.Keywords) {
		v.keywords = state.Keywords
		if err := w.WriteMailboxFlags(v.flags()); err != nil {
			return err
		}
	}
	known := v.uidNext - 1
	if err := s.pollNew(w, state); err != nil {
		return err
	}
	if v.told != len(v.recent) {
		// After EXISTS, or after EXPUNGEs of recent messages: the client
		// cannot know which messages it lost were \Recent (RFC 3501
		// §7.3.2), and must never count more than exist.
		v.told = len(v.recent)
		if err := w.WriteNumRecent(uint32(v.told)); err != nil {
			return err
		}
	}
	if state.ModSeq > v.flagSeq {
		return s.pollFlags(w, state, known)
	}
	return nil
}

// pollState reads the selected mailbox's state, or takes what the FETCH
// just answered read.
func (s *session) pollState() (store.MailboxState, error) {
	if st := s.fetchState; st != nil {
		s.fetchState = nil
		return *st, nil
	}
	return s.srv.st.MailboxState(s.ctx, s.sel.box.ID)
}

// pollHighest sends OK [HIGHESTMODSEQ] when CONDSTORE was enabled after
// SELECT (RFC 7162 §3.1), and, while expunges wait for a command that
// may report them, one below the first of them, so that a client whose
// connection drops never takes a MODSEQ it saw for proof that it heard
// of them (RFC 7162 §3.2).
func (s *session) pollHighest(w *imapserver.UpdateWriter, state store.MailboxState, allowExpunge bool) error {
	v := s.sel
	if !w.CondStore() {
		return nil
	}
	first := !v.condstore
	v.condstore = true
	pending := !allowExpunge && state.ModSeq > v.expSeq
	if pending {
		gone, err := s.srv.st.ExpungedUIDs(s.ctx, v.box.ID, v.expSeq, state.ModSeq)
		if err != nil {
			return err
		}
		pending = len(gone) > 0
	}
	if first || pending {
		return w.WriteHighestModSeq(uint64(min(v.flagSeq, v.expSeq)))
	}
	return nil
}

// pollExpunged tells the client which of its messages others expunged.
func (s *session) pollExpunged(w *imapserver.UpdateWriter, state store.MailboxState) error {
	v := s.sel
	gone, complete, err := s.srv.st.ExpungedAfter(s.ctx, v.box.ID, v.expSeq, state.ModSeq)
	if err != nil {
		return err
	}
	if !complete {
		// The records were pruned under a long-open session: what the
		// view holds and the mailbox no longer does is what vanished.
		if gone, err = s.lostUIDs(); err != nil {
			return err
		}
	}
	if err := s.tellExpunged(w, gone, w.QResync()); err != nil {
		return err
	}
	v.expSeq = state.ModSeq
	return nil
}

// lostUIDs returns the UIDs of the view that the mailbox no longer holds.
func (s *session) lostUIDs() ([]uint32, error) {
	v := s.sel
	now, err := s.srv.st.MailboxUIDs(s.ctx, v.box.ID, 0, v.uidNext)
	if err != nil {
		return nil, err
	}
	var lost []uint32
	j := 0
	for _, uid := range v.uids {
		for j < len(now) && now[j] < uid {
			j++
		}
		if j == len(now) || now[j] != uid {
			lost = append(lost, uid)
		}
	}
	return lost, nil
}

// pollFlags sends FETCH for flags others changed, up to the UIDs the
// client knew before this poll.
func (s *session) pollFlags(w *imapserver.UpdateWriter, state store.MailboxState, known uint32) error {
	v := s.sel
	changes, err := s.srv.st.ChangedFlags(s.ctx, v.box.ID, v.flagSeq, known)
	if err != nil {
		return err
	}
	condstore := w.CondStore()
	for _, c := range changes {
		i := v.index(c.UID)
		if v.own[c.ModSeq] || i < 0 {
			continue
		}
		flags := s.flagList(c.UID, c.Flags)
		if condstore {
			err = w.WriteMessageFlagsModSeq(uint32(i+1), imap.UID(c.UID), flags, uint64(c.ModSeq))
		} else {
			err = w.WriteMessageFlags(uint32(i+1), imap.UID(c.UID), flags)
		}
		if err != nil {
			return err
		}
	}
	v.flagSeq = state.ModSeq
	for m := range v.own {
		if m <= v.flagSeq {
			delete(v.own, m)
		}
	}
	return nil
}

// pollNew adds messages that arrived to the view (EXISTS), claiming the
// \Recent ones; Poll tells their number.
func (s *session) pollNew(w *imapserver.UpdateWriter, state store.MailboxState) error {
	v := s.sel
	if state.UIDNext <= v.uidNext {
		return nil
	}
	st := s.srv.st
	fresh, err := st.MailboxUIDs(s.ctx, v.box.ID, v.uidNext-1, state.UIDNext)
	if err != nil {
		return err
	}
	v.uidNext = state.UIDNext
	if len(fresh) == 0 {
		return nil
	}
	v.uids = append(v.uids, fresh...)
	if err := w.WriteNumMessages(uint32(len(v.uids))); err != nil {
		return err
	}
	if v.readOnly {
		return nil
	}
	prev, err := st.ClaimRecent(s.ctx, v.box.ID, fresh[len(fresh)-1])
	if err != nil {
		return err
	}
	for _, uid := range fresh {
		if uid > prev {
			v.recent[uid] = true
		}
	}
	return nil
}

// mailboxGone empties the view of a mailbox another session deleted.
func (s *session) mailboxGone(w *imapserver.UpdateWriter, allowExpunge bool) error {
	v := s.sel
	if !allowExpunge {
		return nil
	}
	all := append([]uint32(nil), v.uids...)
	if w.QResync() {
		v.gone = true
		return s.tellExpunged(w, all, true)
	}
	for len(v.uids) > 0 {
		if err := w.WriteExpunge(v.remove(len(v.uids) - 1)); err != nil {
			return err
		}
	}
	v.gone = true
	return nil
}

func newKeywords(known, now []string) bool {
	for _, k := range now {
		found := false
		for _, x := range known {
			if strings.EqualFold(x, k) {
				found = true
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}

// Idle implements imapserver.Session: changes are reported as soon as the
// store announces them, and at least every second.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	events, unsubscribe := s.srv.st.Hub().Subscribe(s.user.ID)
	defer unsubscribe()
	if err := s.Poll(w, true); err != nil {
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case e := <-events:
			if s.sel == nil || e.MailboxID != 0 && e.MailboxID != s.sel.box.ID {
				continue
			}
		case <-tick.C:
		}
		if err := s.Poll(w, true); err != nil {
			return err
		}
	}
}

// errBadSeq is the answer to a sequence number the client cannot know.
var errBadSeq = &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Invalid message sequence number"}

// resolve returns the view positions a sequence or UID set names, in
// order. Sequence numbers beyond the mailbox (including * when it is
// empty) are a BAD command; UIDs that do not exist are ignored.
func (v *selected) resolve(numSet imap.NumSet) ([]int, error) {
	if imap.IsSearchRes(numSet) {
		numSet = v.result
	}
	n := uint32(len(v.uids))
	var out []int
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			start, stop := bounds(r.Start, r.Stop, n)
			if start == 0 || stop > n {
				return nil, errBadSeq
			}
			for i := start; i <= stop; i++ {
				out = append(out, int(i-1))
			}
		}
	case imap.UIDSet:
		last := v.lastUID()
		for _, r := range set {
			start, stop := bounds(uint32(r.Start), uint32(r.Stop), last)
			i := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= start })
			for ; i < len(v.uids) && v.uids[i] <= stop; i++ {
				out = append(out, i)
			}
		}
	}
	sort.Ints(out)
	return compactInts(out), nil
}

func compactInts(s []int) []int {
	if len(s) < 2 {
		return s
	}
	j := 1
	for i := 1; i < len(s); i++ {
		if s[i] != s[j-1] {
			s[j] = s[i]
			j++
		}
	}
	return s[:j]
}

// flagList is what FLAGS shows for a message: its stored flags and, for
// IMAP4rev1 clients, \Recent.
func (s *session) flagList(uid uint32, flags []string) []imap.Flag {
	recent := s.sel != nil && s.sel.recent[uid] && !s.conn.EnabledCaps().Has(imap.CapIMAP4rev2)
	return toFlags(flags, recent)
}

func toFlags(flags []string, recent bool) []imap.Flag {
	out := make([]imap.Flag, 0, len(flags)+1)
	for _, f := range flags {
		out = append(out, imap.Flag(f))
	}
	if recent {
		out = append(out, imap.Flag(`\Recent`))
	}
	return out
}

// flagLists is flagList for the many messages of one FETCH: the rows of
// the mailbox index share one flag slice per distinct set of flags, and
// each gets its FLAGS list made once.
type flagLists struct {
	showRecent bool // not IMAP4rev2: \Recent is a flag
	made       map[flagListKey][]imap.Flag
}

type flagListKey struct {
	first  *string
	n      int
	recent bool
}

func (s *session) newFlagLists() *flagLists {
	return &flagLists{showRecent: !s.conn.EnabledCaps().Has(imap.CapIMAP4rev2), made: map[flagListKey][]imap.Flag{}}
}

// list returns the FLAGS list of message uid of view v with flags; the
// caller must not change it.
func (l *flagLists) list(v *selected, uid uint32, flags []string) []imap.Flag {
	recent := l.showRecent && v.recent[uid]
	if len(flags) == 0 {
		if recent {
			return []imap.Flag{`\Recent`}
		}
		return []imap.Flag{}
	}
	key := flagListKey{first: &flags[0], n: len(flags), recent: recent}
	out, ok := l.made[key]
	if !ok {
		out = toFlags(flags, recent)
		l.made[key] = out
	}
	return out
}

// uidSet turns ascending UIDs into a UID set.
func uidSet(uids []uint32) imap.UIDSet {
	var set imap.UIDSet
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		set = append(set, imap.UIDRange{Start: imap.UID(uids[i]), Stop: imap.UID(uids[j])})
		i = j + 1
	}
	return set
}

// chunks splits positions into runs of at most n.
func chunks(idx []int, n int) [][]int {
	var out [][]int
	for len(idx) > n {
		out = append(out, idx[:n])
		idx = idx[n:]
	}
	if len(idx) > 0 {
		out = append(out, idx)
	}
	return out
}
