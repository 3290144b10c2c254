package proxy

import "sync"

// cache is a bounded map behind a read-write lock, for what the proxy reads on every request (routes,
// verified tokens, users, session and revocation states). A map indexed with a string(bytes)
// conversion or a struct key does not allocate, where sync.Map boxes every key: on this path the
// difference is measurable. When full, an arbitrary entry makes room (Go's map order): a flood of
// distinct keys costs re-reads, not memory.
type cache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

func newCache[K comparable, V any](max int) *cache[K, V] {
	return &cache[K, V]{m: make(map[K]V), max: max}
}

func (c *cache[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

// getBytes is get for a key held as bytes: indexing a map with string(b) does not copy b.
func getBytes[V any](c *cache[string, V], b []byte) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[string(b)]
	c.mu.RUnlock()
	return v, ok
}

func (c *cache[K, V]) put(k K, v V) {
	c.mu.Lock()
	if _, ok := c.m[k]; !ok {
		for len(c.m) >= c.max {
			for old := range c.m {
				delete(c.m, old)
				break
			}
		}
	}
	c.m[k] = v
	c.mu.Unlock()
}

// putIfAbsent stores v unless k has a value, and returns the value k has after the call.
func (c *cache[K, V]) putIfAbsent(k K, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		return old
	}
	for len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
	return v
}

func (c *cache[K, V]) delete(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *cache[K, V]) deleteFunc(drop func(K, V) bool) {
	c.mu.Lock()
	for k, v := range c.m {
		if drop(k, v) {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

func (c *cache[K, V]) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// recordKey names a record of a tenant (a user, session or token id).
type recordKey struct{ tenant, id string }
