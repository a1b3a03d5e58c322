package imapout

import (
	"cmp"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"tollbridge/store"
)

var _ imapserver.SessionSort = (*session)(nil)

// sortItem is one message to sort or thread: its place in the view and
// what its keys are read from. md is nil for a message that cannot be
// shown; its keys are then empty.
type sortItem struct {
	seq     uint32
	uid     uint32
	arrival time.Time
	size    int64
	md      *meta
	subject *baseSubject                  // computed on first use
	keys    map[imapserver.SortKey]string // string keys, computed on first use
}

// num is the item's number of the kind a command asked for.
func (it *sortItem) num(kind imapserver.NumKind) uint32 {
	if kind == imapserver.NumKindUID {
		return it.uid
	}
	return it.seq
}

// sent is the DATE key of RFC 5256 §3: the Date field's instant, or the
// internal date when there is none or it cannot be read.
func (it *sortItem) sent() time.Time {
	if it.md != nil && it.md.Envelope != nil && !it.md.Envelope.Date.IsZero() {
		return it.md.Envelope.Date
	}
	return it.arrival
}

func (it *sortItem) envelope() *imap.Envelope {
	if it.md == nil || it.md.Envelope == nil {
		return &imap.Envelope{}
	}
	return it.md.Envelope
}

// base is the item's base subject (RFC 5256 §2.1).
func (it *sortItem) base() *baseSubject {
	if it.subject == nil {
		b := extractBaseSubject(it.envelope().Subject)
		it.subject = &b
	}
	return it.subject
}

// Sort implements imapserver.SessionSort: the messages SEARCH criteria
// finds, ordered by the keys of RFC 5256 and RFC 5957 read from the
// metadata cache, ties in sequence order.
func (s *session) Sort(kind imapserver.NumKind, keys []imapserver.SortCriterion, criteria *imap.SearchCriteria, options *imap.SearchOptions) ([]uint32, error) {
	items, err := s.sortItems(criteria, options)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(items, func(a, b *sortItem) int {
		for _, k := range keys {
			c := compareKey(k.Key, a, b)
			if k.Reverse {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	out := make([]uint32, len(items))
	for i, it := range items {
		out[i] = it.num(kind)
	}
	return out, nil
}

// compareKey compares two items by one key.
func compareKey(k imapserver.SortKey, a, b *sortItem) int {
	switch k {
	case imapserver.SortKeyArrival:
		return a.arrival.Compare(b.arrival)
	case imapserver.SortKeyDate:
		return a.sent().Compare(b.sent())
	case imapserver.SortKeySize:
		return cmp.Compare(a.size, b.size)
	}
	return cmp.Compare(a.stringKey(k), b.stringKey(k))
}

// stringKey is a string sort key of the item, computed once.
func (it *sortItem) stringKey(k imapserver.SortKey) string {
	if v, ok := it.keys[k]; ok {
		return v
	}
	if it.keys == nil {
		it.keys = map[imapserver.SortKey]string{}
	}
	env := it.envelope()
	var v string
	switch k {
	case imapserver.SortKeySubject:
		v = it.base().key
	case imapserver.SortKeyFrom:
		v = firstMailbox(env.From)
	case imapserver.SortKeyTo:
		v = firstMailbox(env.To)
	case imapserver.SortKeyCc:
		v = firstMailbox(env.Cc)
	case imapserver.SortKeyDisplayFrom:
		v = displayName(env.From)
	case imapserver.SortKeyDisplayTo:
		v = displayName(env.To)
	}
	v = asciiUpper(v) // the i;ascii-casemap collation (RFC 5256 §3)
	it.keys[k] = v
	return v
}

// firstAddress is the first address of a list that is not a group
// marker.
func firstAddress(as []imap.Address) (imap.Address, bool) {
	for _, a := range as {
		if a.Host != "" {
			return a, true
		}
	}
	return imap.Address{}, false
}

// firstMailbox is the addr-mailbox of the first address (FROM, TO, CC).
func firstMailbox(as []imap.Address) string {
	a, _ := firstAddress(as)
	return a.Mailbox
}

// displayName is the DISPLAYFROM/DISPLAYTO key of RFC 5957 §2: the first
// address's decoded display name, or its addr-spec when it has none.
func displayName(as []imap.Address) string {
	a, ok := firstAddress(as)
	if !ok {
		return ""
	}
	if name := decodeText(a.Name); name != "" {
		return name
	}
	return a.Mailbox + "@" + a.Host
}

// asciiUpper maps ASCII letters to upper case and leaves other bytes.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// sortItems runs SEARCH criteria and loads what sorting and threading
// need of every match, in sequence order.
func (s *session) sortItems(criteria *imap.SearchCriteria, options *imap.SearchOptions) ([]*sortItem, error) {
	data, err := s.Search(imapserver.NumKindUID, criteria, options)
	if err != nil {
		return nil, err
	}
	uids, _ := data.All.(imap.UIDSet).Nums()
	v := s.sel
	idx := make([]int, 0, len(uids))
	for _, uid := range uids {
		if i := v.index(uint32(uid)); i >= 0 {
			idx = append(idx, i)
		}
	}
	items := make([]*sortItem, 0, len(idx))
	for _, chunk := range chunks(idx, batch) {
		rows, err := s.srv.st.MessageRows(s.ctx, v.box.ID, v.uidsAt(chunk), store.RowMeta)
		if err != nil {
			return nil, err
		}
		metas, err := s.metas(rows)
		if err != nil {
			return nil, err
		}
		for i, row := range rows {
			it := &sortItem{seq: uint32(v.index(row.UID) + 1), uid: row.UID, arrival: row.Received, size: max(row.Size, 0)}
			if md := metas[i]; md != nil {
				// Only what the keys need: the header and the part tree
				// are let go at once (10,000 of them add up).
				it.size = md.Size
				it.md = &meta{Size: md.Size, Envelope: md.Envelope, References: md.References}
			}
			items = append(items, it)
		}
	}
	return items, nil
}
