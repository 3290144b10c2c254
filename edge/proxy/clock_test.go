package proxy

import (
	"testing"
	"time"
)

// TestCoarseClock: the coarse clock stays within its resolution of the system clock while read, moves,
// stops its ticker when nobody reads it, and starts again on the next read.
func TestCoarseClock(t *testing.T) {
	var c coarseClock
	slack := 5 * coarseResolution // a loaded test machine runs the ticker late
	for range 20 {
		got, want := c.Now(), time.Now()
		if d := want.Sub(got); d < -time.Millisecond || d > slack {
			t.Fatalf("coarse clock %v behind the system clock, want at most %v", d, slack)
		}
		time.Sleep(coarseResolution / 2)
	}
	first := c.Now()
	time.Sleep(3 * coarseResolution)
	if !c.Now().After(first) {
		t.Fatalf("the coarse clock did not move in %v", 3*coarseResolution)
	}
	deadline := time.Now().Add(coarseIdleTicks*coarseResolution + 5*time.Second)
	for c.running.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the ticker kept running with no reader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Stopped: a read is the system clock's, and starts the ticker again.
	if d := time.Since(c.Now()); d > time.Millisecond || !c.running.Load() {
		t.Fatalf("after a stop: %v behind, running %v", d, c.running.Load())
	}
}
