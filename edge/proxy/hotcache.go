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

func (c *hotCache[K, V]) get(k K) (V, bool) { return c.shard(c.hash(c.seed, k)).get(k) }

// getHotBytes is get for a key held as bytes, without copying them (maphash.Bytes of b equals
// maphash.String of the same text).
func getHotBytes[V any](c *hotCache[string, V], b []byte) (V, bool) {
	return shardGetBytes(c.shard(maphash.Bytes(c.seed, b)), b)
}

func (c *hotCache[K, V]) put(k K, v V) { c.shard(c.hash(c.seed, k)).store(k, v, false, c.max) }

// putIfAbsent stores v unless k has a value, and returns the value k has after the call.
func (c *hotCache[K, V]) putIfAbsent(k K, v V) V {
	return c.shard(c.hash(c.seed, k)).store(k, v, true, c.max)
}

func (s *hotShard[K, V]) get(k K) (V, bool) {
	if m := s.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// shardGetBytes is get for a string key held as bytes: indexing with string(b) does not copy b.
func shardGetBytes[V any](s *hotShard[string, V], b []byte) (V, bool) {
	if m := s.m.Load(); m != nil {
		v, ok := (*m)[string(b)]
		return v, ok
	}
	var zero V
	return zero, false
}

// store replaces the shard's map by a copy with k set to v (unless ifAbsent and k has a value) and
// returns k's value after the call. A copy holds at most max entries (0: no bound); the entries left
// out make room, whichever Go's map order gives.
func (s *hotShard[K, V]) store(k K, v V, ifAbsent bool, max int) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[K]V
	if p := s.m.Load(); p != nil {
		old = *p
	}
	if have, ok := old[k]; ok && ifAbsent {
		return have
	}
	size := len(old) + 1
	if max > 0 {
		size = min(size, max)
	}
	m := make(map[K]V, size)
	for ok, ov := range old {
		if max > 0 && len(m) >= max-1 {
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

func (s *hotShard[K, V]) clear() {
	s.mu.Lock()
	s.m.Store(nil)
	s.mu.Unlock()
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
		c.shards[i].clear()
	}
}
