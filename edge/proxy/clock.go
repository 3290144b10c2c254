package proxy

import (
	"sync/atomic"
	"time"
)

// coarse is the proxy's default clock. Reading the system clock costs 50 to 90 ns on the virtual
// machines the edges run on, and a proxied request needs the time four or five times (token expiry,
// assertion renewal, upstream idle deadlines): a clock read from memory, moved every
// coarseResolution, takes that off the hot path. Nothing the proxy decides needs finer time: token
// and cookie expiry are whole seconds, deadlines are tens of seconds.
var coarse coarseClock

// coarseResolution is how stale the coarse clock may be (more when the machine is overloaded and its
// ticker runs late).
const coarseResolution = 10 * time.Millisecond

// coarseIdleTicks is how many ticks without a reader stop the ticker, so an idle node does not wake a
// hundred times a second for nothing.
const coarseIdleTicks = 100

// coarseClock is a time kept in memory by a ticker that runs only while the clock is being read.
type coarseClock struct {
	now     atomic.Int64 // Unix nanoseconds
	running atomic.Bool
	used    atomic.Bool // read since the last tick
}

// Now returns the time, at most about coarseResolution old. Without a running ticker it reads the
// system clock and starts one.
func (c *coarseClock) Now() time.Time {
	if c.running.Load() {
		if !c.used.Load() { // a store only once per tick, not on every read
			c.used.Store(true)
		}
		return time.Unix(0, c.now.Load())
	}
	t := time.Now()
	if c.running.CompareAndSwap(false, true) {
		c.now.Store(t.UnixNano())
		c.used.Store(true)
		go c.tick()
	}
	return t
}

func (c *coarseClock) tick() {
	t := time.NewTicker(coarseResolution)
	defer t.Stop()
	idle := 0
	for now := range t.C {
		c.now.Store(now.UnixNano())
		if c.used.Swap(false) {
			idle = 0
			continue
		}
		if idle++; idle >= coarseIdleTicks {
			c.running.Store(false)
			return
		}
	}
}
