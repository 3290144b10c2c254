package proxy

import "sync"

// cache is a bounded map behind a read-write lock, for keys a client chooses freely (the Host headers
// found not routed): a copy per new key, as hotCache makes, would be work a client could ask for. A map
// indexed with a string(bytes) conversion does not allocate, where sync.Map boxes every key. When full,
// an arbitrary entry makes room (Go's map order): a flood of distinct keys costs re-reads, not memory.
type cache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

func newCache[K comparable, V any](max int) *cache[K, V] {
	return &cache[K, V]{m: make(map[K]V), max: max}
}

// getBytes is get for a key held as bytes: indexing a map with string(b) does not copy b.
func getBytes[V any](c *cache[string, V], b []byte) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[string(b)]
	c.mu.RUnlock()
	return v, ok
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

func (c *cache[K, V]) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// recordKey names a record of a tenant (a user, session or token id).
type recordKey struct{ tenant, id string }

// snapshot is a map for what every request reads and the directory rarely changes (routes that
// exist, a tenant's proxy extensions): one unbounded shard of a [hotCache], so a read is one atomic
// load and a write copies the map. Its keys must be ones the directory bounds, never ones a client
// chooses (an unrouted Host header).
type snapshot[K comparable, V any] struct{ hotShard[K, V] }

func (s *snapshot[K, V]) put(k K, v V) { s.store(k, v, false, 0) }

// putIfAbsent stores v unless k has a value, and returns the value k has after the call.
func (s *snapshot[K, V]) putIfAbsent(k K, v V) V { return s.store(k, v, true, 0) }

// getSnapshotBytes is get for a key held as bytes, without copying them.
func getSnapshotBytes[V any](s *snapshot[string, V], b []byte) (V, bool) {
	return shardGetBytes(&s.hotShard, b)
}
