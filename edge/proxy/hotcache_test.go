package proxy

import (
	"fmt"
	"sync"
	"testing"
)

func TestHotCache(t *testing.T) {
	c := newHotCache[string, int](hotShards*4, hashString)
	c.put("a", 1)
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Fatalf("get a = %v %v", v, ok)
	}
	if v, ok := getHotBytes(c, []byte("a")); !ok || v != 1 {
		t.Fatalf("getHotBytes a = %v %v", v, ok)
	}
	if v := c.putIfAbsent("a", 2); v != 1 {
		t.Fatalf("putIfAbsent over a = %v, want the value kept, 1", v)
	}
	c.put("a", 3)
	if v, _ := c.get("a"); v != 3 {
		t.Fatalf("put over a: %v, want 3", v)
	}
	c.delete("a")
	if _, ok := c.get("a"); ok {
		t.Fatal("a still there after delete")
	}

	// Bounded: a shard never holds more than its share, however many keys come.
	for i := range 10_000 {
		c.put(fmt.Sprint("k", i), i)
	}
	n := 0
	for i := range c.shards {
		if p := c.shards[i].m.Load(); p != nil {
			if len(*p) > c.max {
				t.Fatalf("shard %d holds %d entries, over %d", i, len(*p), c.max)
			}
			n += len(*p)
		}
	}
	if n == 0 || n > hotShards*c.max {
		t.Fatalf("%d entries in all", n)
	}
	if v, ok := c.get("k9999"); !ok || v != 9999 {
		t.Fatalf("the newest key was evicted: %v %v", v, ok)
	}
	c.deleteFunc(func(k string, v int) bool { return v%2 == 0 })
	for i := range c.shards {
		if p := c.shards[i].m.Load(); p != nil {
			for k, v := range *p {
				if v%2 == 0 {
					t.Fatalf("deleteFunc left %s=%d", k, v)
				}
			}
		}
	}
	c.clear()
	if _, ok := c.get("k9999"); ok {
		t.Fatal("an entry survived clear")
	}
}

// TestHotCacheConcurrent: readers never see a torn map while writers copy shards (run with -race).
func TestHotCacheConcurrent(t *testing.T) {
	c := newHotCache[recordKey, int](1024, hashRecord)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := recordKey{"t", fmt.Sprint(w, "-", i%50)}
				switch i % 4 {
				case 0, 1:
					c.put(k, i)
				case 2:
					c.delete(k)
				default:
					c.deleteFunc(func(k recordKey, v int) bool { return v == i-1 })
				}
			}
		})
		wg.Go(func() {
			for i := range 20000 {
				if v, ok := c.get(recordKey{"t", fmt.Sprint(w, "-", i%50)}); ok && v < 0 {
					t.Errorf("negative value %d", v)
				}
			}
		})
	}
	wg.Wait()
}
