package proxy

import (
	"sync"
	"sync/atomic"
)

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
// exist, a tenant's proxy extensions). A read is one atomic load: readers on different cores write no
// shared cache line, as a read lock's reader count does on every request. A write copies the map, so
// its keys must be ones the directory bounds, never ones a client chooses (an unrouted Host header).
type snapshot[K comparable, V any] struct {
	mu sync.Mutex // serialises writers
	p  atomic.Pointer[map[K]V]
}

func (s *snapshot[K, V]) get(k K) (V, bool) {
	if m := s.p.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// getSnapshotBytes is get for a key held as bytes, without copying them.
func getSnapshotBytes[V any](s *snapshot[string, V], b []byte) (V, bool) {
	if m := s.p.Load(); m != nil {
		v, ok := (*m)[string(b)]
		return v, ok
	}
	var zero V
	return zero, false
}

// putIfAbsent stores v unless k has a value, and returns the value k has after the call.
func (s *snapshot[K, V]) putIfAbsent(k K, v V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.p.Load()
	if old != nil {
		if have, ok := (*old)[k]; ok {
			return have
		}
	}
	m := make(map[K]V, 1)
	if old != nil {
		m = make(map[K]V, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = v
	s.p.Store(&m)
	return v
}

func (s *snapshot[K, V]) put(k K, v V) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[K]V{}
	if old := s.p.Load(); old != nil {
		m = make(map[K]V, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = v
	s.p.Store(&m)
}

func (s *snapshot[K, V]) clear() {
	s.mu.Lock()
	s.p.Store(nil)
	s.mu.Unlock()
}
