package imapout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/store"
)

// Search implements imapserver.Session with the whole RFC 3501/9051
// grammar: sequence and UID sets (and $, SEARCHRES), flags and keywords,
// internal and sent dates, sizes, header fields (from the metadata cache)
// and BODY/TEXT on the decrypted, decoded text parts.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	v := s.sel
	c := s.compile(criteria)
	all := make([]int, len(v.uids))
	for i := range all {
		all[i] = i
	}
	data := &imap.SearchData{}
	var matched []uint32
	var seqs imap.SeqSet
	for _, chunk := range chunks(all, flagBatch) {
		rows, metas, err := s.rows(v.uidsAt(chunk), c.needs > needFlags, c.needs >= needMeta)
		if err != nil {
			return nil, err
		}
		sealed := s.sealedLoader(rows)
		for i, row := range rows {
			m := &candidate{s: s, seq: uint32(v.index(row.UID) + 1), row: row, sealed: sealed(row)}
			if metas != nil {
				m.md = metas[i]
			}
			ok, err := c.match(criteria, m)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			matched = append(matched, row.UID)
			data.ModSeq = max(data.ModSeq, uint64(row.ModSeq)) // RFC 7162 §3.1.5
			num := m.seq
			if kind == imapserver.NumKindUID {
				num = row.UID
			}
			if data.Min == 0 || num < data.Min {
				data.Min = num
			}
			data.Max = max(data.Max, num)
			data.Count++
			if kind == imapserver.NumKindSeq {
				seqs = appendSeq(seqs, m.seq)
			}
		}
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet(matched)
		if data.All == nil {
			data.All = imap.UIDSet{}
		}
	} else {
		if seqs == nil {
			seqs = imap.SeqSet{}
		}
		data.All = seqs
	}
	if options.ReturnSave {
		v.result = uidSet(matched)
	}
	return data, nil
}

// appendSeq adds an ascending sequence number to a set.
func appendSeq(set imap.SeqSet, n uint32) imap.SeqSet {
	if k := len(set); k > 0 && set[k-1].Stop+1 == n {
		set[k-1].Stop = n
		return set
	}
	return append(set, imap.SeqRange{Start: n, Stop: n})
}

// What a search needs to read, cheapest first.
const (
	needFlags = iota
	needRow
	needMeta
	needText
)

// compiled is a search with its sets made static for this view.
type compiled struct {
	s     *session
	needs int
}

func (s *session) compile(c *imap.SearchCriteria) *compiled {
	out := &compiled{s: s}
	out.prepare(c)
	return out
}

// prepare resolves $ and * in c (in place) and notes what it needs.
func (c *compiled) prepare(k *imap.SearchCriteria) {
	v := c.s.sel
	for i, set := range k.UID {
		if imap.IsSearchRes(set) {
			k.UID[i] = v.result
		}
	}
	if !k.Since.IsZero() || !k.Before.IsZero() || k.Larger > 0 || k.Smaller > 0 {
		c.needs = max(c.needs, needRow)
	}
	if !k.SentSince.IsZero() || !k.SentBefore.IsZero() || len(k.Header) > 0 {
		c.needs = max(c.needs, needMeta)
	}
	if len(k.Body) > 0 || len(k.Text) > 0 {
		c.needs = max(c.needs, needText)
	}
	for i := range k.Not {
		c.prepare(&k.Not[i])
	}
	for i := range k.Or {
		c.prepare(&k.Or[i][0])
		c.prepare(&k.Or[i][1])
	}
}

// candidate is one message being matched.
type candidate struct {
	s      *session
	seq    uint32
	row    *store.MessageRow
	md     *meta
	text   map[string]bool // BODY/TEXT needles already looked for
	sealed func() (*store.SealedMessage, error)
}

func (c *compiled) match(k *imap.SearchCriteria, m *candidate) (bool, error) {
	if !c.matchCheap(k, m) {
		return false, nil
	}
	for _, h := range k.Header {
		if !m.headerHas(h.Key, h.Value) {
			return false, nil
		}
	}
	if !k.SentSince.IsZero() || !k.SentBefore.IsZero() {
		if m.md == nil || !dayIn(sentDay(m.md.Envelope, m.row.Received), k.SentSince, k.SentBefore) {
			return false, nil
		}
	}
	for _, needle := range k.Body {
		if ok, err := m.contains(needle, false); err != nil || !ok {
			return false, err
		}
	}
	for _, needle := range k.Text {
		if ok, err := m.contains(needle, true); err != nil || !ok {
			return false, err
		}
	}
	for i := range k.Not {
		ok, err := c.match(&k.Not[i], m)
		if err != nil || ok {
			return false, err
		}
	}
	for i := range k.Or {
		ok, err := c.match(&k.Or[i][0], m)
		if err != nil {
			return false, err
		}
		if !ok {
			if ok, err = c.match(&k.Or[i][1], m); err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// matchCheap checks what needs no decryption: numbers, flags, dates, size.
func (c *compiled) matchCheap(k *imap.SearchCriteria, m *candidate) bool {
	for _, set := range k.SeqNum {
		if !seqContains(set, m.seq, uint32(len(c.s.sel.uids))) {
			return false
		}
	}
	for _, set := range k.UID {
		if !uidContains(set, m.row.UID, c.s.sel.lastUID()) {
			return false
		}
	}
	for _, f := range k.Flag {
		if !m.hasFlag(f) {
			return false
		}
	}
	for _, f := range k.NotFlag {
		if m.hasFlag(f) {
			return false
		}
	}
	if (!k.Since.IsZero() || !k.Before.IsZero()) && !inDays(m.row.Received, k.Since, k.Before) {
		return false
	}
	size := m.row.Size
	if m.md != nil {
		size = m.md.Size
	}
	if k.Larger > 0 && size <= k.Larger || k.Smaller > 0 && size >= k.Smaller {
		return false
	}
	// MODSEQ: the message's own modseq stands for every flag's (RFC 7162
	// §3.1.5 allows it to a server without one per flag).
	return k.ModSeq == nil || m.row.ModSeq >= int64(k.ModSeq.ModSeq)
}

// bounds turns a range of a set into low and high ends: 0 is "*", the
// last number in use, and "5:2" means "2:5" (RFC 9051 §9).
func bounds(start, stop, last uint32) (uint32, uint32) {
	if start == 0 {
		start = last
	}
	if stop == 0 {
		stop = last
	}
	return min(start, stop), max(start, stop)
}

func seqContains(set imap.SeqSet, n, last uint32) bool {
	for _, r := range set {
		if lo, hi := bounds(r.Start, r.Stop, last); lo <= n && n <= hi {
			return true
		}
	}
	return false
}

func uidContains(set imap.UIDSet, uid, last uint32) bool {
	for _, r := range set {
		if lo, hi := bounds(uint32(r.Start), uint32(r.Stop), last); lo <= uid && uid <= hi {
			return true
		}
	}
	return false
}

// isAddressField reports whether a header field holds an address list.
func isAddressField(name string) bool {
	switch strings.ToLower(name) {
	case "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-to", "resent-cc", "resent-bcc", "resent-sender":
		return true
	}
	return false
}

// addressText is an address list as SEARCH FROM, TO, … compare it: each
// address as "name mailbox@host", lowercased, without the comments and
// white space RFC 5322 allows inside an address.
func addressText(v string) string {
	var b strings.Builder
	for _, a := range parseAddressList(v) {
		if a.Host == "" {
			continue // group markers
		}
		fmt.Fprintf(&b, "%s %s@%s\n", decodeText(a.Name), a.Mailbox, a.Host)
	}
	return strings.ToLower(b.String())
}

// inDays compares the day of t (in the server's time zone, ignoring the
// time) with SINCE (inclusive) and BEFORE (exclusive) days.
func inDays(t, since, before time.Time) bool {
	return dayIn(dayOf(t.In(time.Local)), since, before)
}

// dayOf is the calendar day of t in t's own zone, as a UTC midnight.
func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// dayIn compares a day with SINCE (inclusive) and BEFORE (exclusive) days.
func dayIn(day, since, before time.Time) bool {
	if !since.IsZero() && day.Before(since) {
		return false
	}
	if !before.IsZero() && !day.Before(before) {
		return false
	}
	return true
}

func (m *candidate) hasFlag(f imap.Flag) bool {
	if strings.EqualFold(string(f), `\Recent`) {
		return m.s.sel.recent[m.row.UID]
	}
	for _, x := range m.row.Flags {
		if strings.EqualFold(x, string(f)) {
			return true
		}
	}
	return false
}

// headerHas is SEARCH HEADER (and FROM, TO, …): a field named key whose
// value contains value, case-insensitively, raw or decoded; an empty
// value matches any message with the field.
func (m *candidate) headerHas(key, value string) bool {
	if m.md == nil {
		return false
	}
	value = strings.ToLower(value)
	for _, f := range m.md.headerFields() {
		if !strings.EqualFold(f.Name, key) {
			continue
		}
		if value == "" || strings.Contains(strings.ToLower(f.Value), value) ||
			strings.Contains(strings.ToLower(decodeText(f.Value)), value) ||
			isAddressField(key) && strings.Contains(addressText(f.Value), value) {
			return true
		}
	}
	return false
}

// contains is SEARCH BODY (and TEXT, which also looks at the header).
func (m *candidate) contains(needle string, withHeader bool) (bool, error) {
	if m.md == nil {
		return false, nil
	}
	if withHeader {
		low := strings.ToLower(needle)
		if strings.Contains(strings.ToLower(string(m.md.Header)), low) ||
			strings.Contains(strings.ToLower(decodeText(string(m.md.Header))), low) {
			return true, nil
		}
	}
	if found, ok := m.text[needle]; ok {
		return found, nil
	}
	if m.text == nil {
		m.text = map[string]bool{} // made for the few candidates BODY/TEXT reaches
	}
	if !mayContain(m.md.Filter, needle) {
		m.text[needle] = false // the text filter rules it out
		return false, nil
	}
	found, err := m.s.bodyContains(m.row, m.md, m.sealed, needle)
	if errors.Is(err, errGone) {
		return false, nil // expunged by another session meanwhile
	}
	if errors.Is(err, errUnreadable) {
		m.s.srv.log.Error("imap: message cannot be searched", "uid", m.row.UID, "err", err)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m.text[needle] = found
	return found, nil
}

// sealedLoader gives each row a function that reads its stored message;
// the first call reads those of every row whose session key is not cached,
// in one query.
func (s *session) sealedLoader(rows []*store.MessageRow) func(*store.MessageRow) func() (*store.SealedMessage, error) {
	var batch map[int64]*store.SealedMessage
	return func(row *store.MessageRow) func() (*store.SealedMessage, error) {
		return func() (*store.SealedMessage, error) {
			if batch == nil {
				var ids []int64
				for _, r := range rows {
					if s.acct.keys.get(r.Catalog) == nil {
						ids = append(ids, r.MessageID)
					}
				}
				var err error
				if batch, err = s.srv.st.SealedMessages(s.ctx, ids); err != nil {
					batch = nil
					return nil, err
				}
			}
			m := batch[row.MessageID]
			if m == nil {
				var err error
				m, err = s.srv.st.SealedMessage(s.ctx, row.MessageID)
				if errors.Is(err, store.ErrNotFound) {
					return nil, errGone
				}
				if err != nil {
					return nil, err
				}
			}
			if !sameMessage(row, m) {
				return nil, errGone
			}
			return m, nil
		}
	}
}
