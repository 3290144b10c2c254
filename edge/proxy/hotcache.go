package proxy

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// hotCache is a bounded map for what every proxied request reads and only a first sight or a
// revocation writes: verified tokens and cookies, users, session and revocation states. A read lock,
// as in [cache], writes its reader count on every read, and with every core reading the same few
// locks that cache line moves between cores on each request. Here a read is an atomic load of an
// immutable map: the key picks one of hotShards shards, and a write copies that shard only (a
// 64th of the entries). Keys must be ones the proxy has verified (a token's signature, a user of the
// directory), never ones a client chooses freely: each new key costs a copy of its shard.
type hotCache[K comparable, V any] struct {
	seed   maphash.Seed
	hash   func(maphash.Seed, K) uint64
	max    int // entries per shard
	shards [hotShards]hotShard[K, V]
}

const hotShards = 64

type hotShard[K comparable, V any] struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[K]V]
	_  [48]byte // one shard per cache line: writers of one do not disturb readers of the next
}

// newHotCache makes a cache of about max entries; hash spreads keys over the shards.
func newHotCache[K comparable, V any](size int, hash func(maphash.Seed, K) uint64) *hotCache[K, V] {
	return &hotCache[K, V]{seed: maphash.MakeSeed(), hash: hash, max: max(2, size/hotShards)}
}

// hashString and hashRecord are the shard hashes of the two key kinds.
func hashString(seed maphash.Seed, k string) uint64    { return maphash.String(seed, k) }
func hashRecord(seed maphash.Seed, k recordKey) uint64 { return maphash.String(seed, k.id) }

func (c *hotCache[K, V]) shard(h uint64) *hotShard[K, V] { return &c.shards[h%hotShards] }

func (c *hotCache[K, V]) get(k K) (V, bool) {
	if m := c.shard(c.hash(c.seed, k)).m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// getHotBytes is get for a key held as bytes, without copying them (maphash.Bytes of b equals
// maphash.String of the same text).
func getHotBytes[V any](c *hotCache[string, V], b []byte) (V, bool) {
	if m := c.shard(maphash.Bytes(c.seed, b)).m.Load(); m != nil {
		v, ok := (*m)[string(b)]
		return v, ok
	}
	var zero V
	return zero, false
}

func (c *hotCache[K, V]) put(k K, v V) { c.store(k, v, false) }

// putIfAbsent stores v unless k has a value, and returns the value k has after the call.
func (c *hotCache[K, V]) putIfAbsent(k K, v V) V { return c.store(k, v, true) }

func (c *hotCache[K, V]) store(k K, v V, ifAbsent bool) V {
	s := c.shard(c.hash(c.seed, k))
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[K]V
	if p := s.m.Load(); p != nil {
		old = *p
	}
	if have, ok := old[k]; ok && ifAbsent {
		return have
	}
	m := make(map[K]V, min(len(old)+1, c.max))
	for ok, ov := range old {
		if len(m) >= c.max-1 { // full: the entries left out make room (Go's map order is arbitrary)
			break
		}
		if ok != k {
			m[ok] = ov
		}
	}
	m[k] = v
	s.m.Store(&m)
	return v
}

func (c *hotCache[K, V]) delete(k K) {
	s := c.shard(c.hash(c.seed, k))
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.m.Load()
	if p == nil {
		return
	}
	if _, ok := (*p)[k]; !ok {
		return
	}
	m := make(map[K]V, len(*p))
	for ok, ov := range *p {
		if ok != k {
			m[ok] = ov
		}
	}
	s.m.Store(&m)
}

func (c *hotCache[K, V]) deleteFunc(drop func(K, V) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if p := s.m.Load(); p != nil {
			m := make(map[K]V, len(*p))
			for k, v := range *p {
				if !drop(k, v) {
					m[k] = v
				}
			}
			if len(m) != len(*p) {
				s.m.Store(&m)
			}
		}
		s.mu.Unlock()
	}
}

func (c *hotCache[K, V]) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.m.Store(nil)
		s.mu.Unlock()
	}
}
