package imapout

import (
	"cmp"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

var _ imapserver.SessionThread = (*session)(nil)

// ThreadAlgorithms implements imapserver.SessionThread.
func (s *session) ThreadAlgorithms() []imap.ThreadAlgorithm {
	return []imap.ThreadAlgorithm{imap.ThreadOrderedSubject, imap.ThreadReferences}
}

// Thread implements imapserver.SessionThread with the two algorithms of
// RFC 5256, over the messages SEARCH criteria finds.
func (s *session) Thread(kind imapserver.NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imapserver.Thread, error) {
	items, err := s.sortItems(criteria, &imap.SearchOptions{ReturnAll: true})
	if err != nil {
		return nil, err
	}
	var roots []*container
	if alg == imap.ThreadOrderedSubject {
		roots = orderedSubject(items)
	} else {
		roots = references(items)
	}
	out := make([]imapserver.Thread, len(roots))
	for i, c := range roots {
		out[i] = c.thread(kind)
	}
	return out, nil
}

// container is a node of a thread tree (RFC 5256 §4): a message, or a
// dummy (item nil) standing for one that is referenced but not here.
type container struct {
	item     *sortItem
	parent   *container
	children []*container
}

func (c *container) thread(kind imapserver.NumKind) imapserver.Thread {
	t := imapserver.Thread{}
	if c.item != nil {
		t.Num = c.item.num(kind)
	}
	for _, ch := range c.children {
		t.Children = append(t.Children, ch.thread(kind))
	}
	return t
}

// first is the message a container is dated and named by: itself, or
// for a dummy its first child (RFC 5256 §4 steps 5 and 6).
func (c *container) first() *sortItem {
	for c.item == nil {
		if len(c.children) == 0 {
			return &sortItem{}
		}
		c = c.children[0]
	}
	return c.item
}

// bySent orders messages by sent date, then sequence number (RFC 5256
// §2.2).
func bySent(a, b *sortItem) int {
	if c := a.sent().Compare(b.sent()); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// orderedSubject is THREAD=ORDEREDSUBJECT (RFC 5256 §3): messages grouped
// by base subject, each group's first message (by sent date) the parent
// of the others, groups ordered by their first message's sent date.
func orderedSubject(items []*sortItem) []*container {
	slices.SortStableFunc(items, func(a, b *sortItem) int {
		if c := cmp.Compare(a.base().key, b.base().key); c != 0 {
			return c
		}
		return bySent(a, b)
	})
	var roots []*container
	var last string
	for i, it := range items {
		key := it.base().key
		c := &container{item: it}
		if i == 0 || key != last {
			roots = append(roots, c)
			last = key
			continue
		}
		parent := roots[len(roots)-1]
		c.parent = parent
		parent.children = append(parent.children, c)
	}
	slices.SortStableFunc(roots, func(a, b *container) int { return bySent(a.item, b.item) })
	return roots
}

// references is THREAD=REFERENCES (RFC 5256 §4), steps 1 to 7; items
// are in sequence order.
func references(items []*sortItem) []*container {
	all := linkByReferences(items)
	var roots []*container
	for _, c := range all {
		if c.parent == nil {
			roots = append(roots, c) // (2) the root set
		}
	}
	roots = pruneDummies(roots, true) // (4)
	for _, c := range roots {         // (5)
		if c.item == nil {
			slices.SortStableFunc(c.children, func(a, b *container) int { return bySent(a.first(), b.first()) })
		}
	}
	slices.SortStableFunc(roots, func(a, b *container) int { return bySent(a.first(), b.first()) })
	roots = mergeBySubject(roots) // (6)
	sortSiblings(roots)           // (7)
	return roots
}

// linkByReferences is step 1: a container per Message-ID (the first
// message with an id owns it; later ones and those without an id get
// their own), linked by References, or else the first In-Reply-To id.
// It returns every container, in the order made.
func linkByReferences(items []*sortItem) []*container {
	ids := map[string]*container{}
	var all []*container
	lookup := func(id string) *container {
		c := ids[id]
		if c == nil {
			c = &container{}
			ids[id] = c
			all = append(all, c)
		}
		return c
	}
	for _, it := range items {
		env := it.envelope()
		c := ids[env.MessageID]
		if env.MessageID == "" || c == nil || c.item != nil {
			c = &container{}
			all = append(all, c)
			if env.MessageID != "" && ids[env.MessageID] == nil {
				ids[env.MessageID] = c
			}
		}
		c.item = it
		var prev *container
		for _, ref := range messageRefs(it) { // (1.B)
			rc := lookup(ref)
			if prev != nil && rc.parent == nil && !wouldLoop(prev, rc) {
				link(prev, rc)
			}
			prev = rc
		}
		unlink(c) // (1.C): the message's own references win
		if prev != nil && !wouldLoop(prev, c) {
			link(prev, c)
		}
	}
	return all
}

// messageRefs are a message's references: its References ids, or else
// the first In-Reply-To id.
func messageRefs(it *sortItem) []string {
	if it.md == nil {
		return nil
	}
	if len(it.md.References) > 0 {
		return it.md.References
	}
	if irt := it.envelope().InReplyTo; len(irt) > 0 {
		return irt[:1]
	}
	return nil
}

// wouldLoop reports whether making parent the parent of child makes a
// loop: child is parent or one of its ancestors.
func wouldLoop(parent, child *container) bool {
	for p := parent; p != nil; p = p.parent {
		if p == child {
			return true
		}
	}
	return false
}

func link(parent, child *container) {
	child.parent = parent
	parent.children = append(parent.children, child)
}

func unlink(c *container) {
	if p := c.parent; p != nil {
		p.children = slices.DeleteFunc(p.children, func(x *container) bool { return x == c })
		c.parent = nil
	}
}

// pruneDummies is step 4: a dummy without children goes; one with
// children goes and they take its place, except at the root where a
// dummy with two or more children stays.
func pruneDummies(list []*container, atRoot bool) []*container {
	var out []*container
	for _, c := range list {
		c.children = pruneDummies(c.children, false)
		switch {
		case c.item != nil:
			out = append(out, c)
		case len(c.children) == 0:
		case !atRoot || len(c.children) == 1:
			for _, ch := range c.children {
				ch.parent = c.parent
			}
			out = append(out, c.children...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// mergeBySubject is step 6: top-level threads with the same base subject
// are gathered under one thread.
func mergeBySubject(roots []*container) []*container {
	table := map[string]*container{}
	for _, c := range roots {
		key := c.first().base().key
		if key == "" {
			continue
		}
		t := table[key]
		if t == nil || t.item != nil && (c.item == nil || t.item.base().reply && !c.item.base().reply) {
			table[key] = c
		}
	}
	for _, c := range roots {
		key := c.first().base().key
		t := table[key]
		if key == "" || t == c {
			continue
		}
		switch {
		case t.item == nil && c.item == nil:
			for _, ch := range c.children {
				ch.parent = t
			}
			t.children = append(t.children, c.children...)
			c.children, c.parent = nil, t // gone: its root is t's
		case t.item == nil, c.item.base().reply && !t.item.base().reply:
			link(t, c)
		default:
			d := &container{}
			link(d, t)
			link(d, c)
			table[key] = d
		}
	}
	var out []*container
	seen := map[*container]bool{}
	for _, c := range roots {
		for c.parent != nil {
			c = c.parent
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// sortSiblings is step 7: every set of siblings by sent date, the
// deepest first, a dummy dated by its first child.
func sortSiblings(list []*container) {
	for _, c := range list {
		sortSiblings(c.children)
	}
	slices.SortStableFunc(list, func(a, b *container) int { return bySent(a.first(), b.first()) })
}
