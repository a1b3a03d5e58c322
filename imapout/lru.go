package imapout

import (
	"container/list"
	"sync"

	"tollbridge/store"
)

// lru is a cache bounded by the total weight (about the bytes) of its
// values, dropping the least recently used first. It is safe for
// concurrent use; values are shared, so they must not be changed.
type lru[K comparable, V any] struct {
	mu     sync.Mutex
	max    int64
	weight int64
	order  *list.List // front: most recent
	byKey  map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key    K
	value  V
	weight int64
}

func newLRU[K comparable, V any](max int64) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), byKey: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry[K, V]).value, true
}

// put adds a value of the given weight; one heavier than a quarter of
// the bound is not kept, so that one big value cannot empty the cache.
func (c *lru[K, V]) put(k K, v V, weight int64) {
	if weight > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		e := el.Value.(*lruEntry[K, V])
		c.weight += weight - e.weight
		e.value, e.weight = v, weight
		c.order.MoveToFront(el)
	} else {
		c.byKey[k] = c.order.PushFront(&lruEntry[K, V]{key: k, value: v, weight: weight})
		c.weight += weight
	}
	for c.weight > c.max {
		last := c.order.Back()
		e := last.Value.(*lruEntry[K, V])
		c.order.Remove(last)
		delete(c.byKey, e.key)
		c.weight -= e.weight
	}
}

// metaCacheBytes bounds an account's decoded metadata caches: some 10,000
// messages' worth, so that SEARCH of header fields and listing a big
// mailbox again need neither the database's sealed copies nor AES.
const metaCacheBytes = 32 << 20

// metaKey names a message in a mailbox for as long as the mailbox's
// UIDVALIDITY lasts: a UID is never given to another message, and a
// user's UIDVALIDITY values are never reused (store: uid_validity_seq).
type metaKey struct {
	mailbox  int64
	validity uint32
	uid      uint32
}

// cachedMeta is a decoded metadata cache and the message it describes.
type cachedMeta struct {
	messageID int64
	md        *meta
}

// cachedMetaOf returns the decoded metadata of row in the selected
// mailbox, if the account has it.
func (s *session) cachedMetaOf(row *store.MessageRow) *meta {
	if s.sel == nil {
		return nil
	}
	c, ok := s.acct.metaCache.get(metaKey{s.sel.box.ID, s.sel.box.UIDValidity, row.UID})
	if !ok || c.messageID != row.MessageID {
		return nil
	}
	return c.md
}

// keepMeta adds the decoded metadata of row in the selected mailbox to
// the account's cache; sealedSize is its stored size, which stands for
// its weight.
func (s *session) keepMeta(row *store.MessageRow, md *meta, sealedSize int) {
	if s.sel == nil || md == nil {
		return
	}
	s.acct.metaCache.put(metaKey{s.sel.box.ID, s.sel.box.UIDValidity, row.UID},
		cachedMeta{messageID: row.MessageID, md: md}, int64(3*sealedSize+512))
}
