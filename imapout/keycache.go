package imapout

import (
	"container/list"
	"sync"

	"tollbridge/seal"
)

// keyCacheSize bounds the session keys an account keeps unwrapped: a few
// hundred kilobytes, and listing or searching a big mailbox twice costs
// one public-key operation per message, not two.
const keyCacheSize = 20000

// keyCache keeps recently unwrapped message session keys, by the hash of
// the encrypted catalog they open (which determines the key), for as long
// as the user is logged in.
type keyCache struct {
	mu    sync.Mutex
	order *list.List // front: most recent
	byCat map[string]*list.Element
}

type keyEntry struct {
	catalog string
	key     *seal.SessionKey
}

func newKeyCache() *keyCache {
	return &keyCache{order: list.New(), byCat: map[string]*list.Element{}}
}

func (c *keyCache) get(catalog string) *seal.SessionKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byCat[catalog]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*keyEntry).key
}

func (c *keyCache) put(catalog string, key *seal.SessionKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byCat[catalog]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.byCat[catalog] = c.order.PushFront(&keyEntry{catalog: catalog, key: key})
	for c.order.Len() > keyCacheSize {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byCat, last.Value.(*keyEntry).catalog)
	}
}

// clear drops every key (the account stops: its unlocked key goes).
func (c *keyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.byCat)
}

// len reports how many keys the cache holds.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
