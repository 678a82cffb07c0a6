package cputime

import (
	"runtime"
	"testing"
	"time"
)

var sink uint64

// work burns a fixed amount of CPU, whatever the machine's load.
func work() {
	x := uint64(1)
	for i := 0; i < 50_000_000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink = x
}

// TestCPUTimeAdvances: a fixed piece of work shows in the thread's CPU
// time and at least as much in the process's (where they are measured),
// and a sleep does not show in the thread's.
func TestCPUTimeAdvances(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p0 := Process()
	t0, ok := Thread()
	work()
	t1, _ := Thread()
	p1 := Process()
	if runtime.GOOS != "linux" {
		return
	}
	if !ok || t1-t0 < time.Millisecond {
		t.Fatalf("thread CPU grew %v (ok %v) over the work", t1-t0, ok)
	}
	// getrusage counts in microseconds: allow its rounding.
	if p1-p0 < t1-t0-time.Millisecond {
		t.Errorf("process CPU grew %v, less than the thread's %v", p1-p0, t1-t0)
	}
	time.Sleep(50 * time.Millisecond)
	if t2, _ := Thread(); t2-t1 > (t1-t0)/2 {
		t.Errorf("thread CPU grew %v over a 50 ms sleep (the work took %v)", t2-t1, t1-t0)
	}
}
