package imapout

import (
	"container/list"
	"sync"
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

// clear drops every value.
func (c *lru[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.byKey)
	c.weight = 0
}

// len reports how many values the cache holds.
func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
