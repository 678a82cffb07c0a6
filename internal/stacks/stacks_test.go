package stacks

import (
	"bytes"
	"sync"
	"testing"
)

// TestAllHasEveryGoroutine: a parked goroutine's function is in the dump
// beside the caller's, however many goroutines there are.
func TestAllHasEveryGoroutine(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	var parked sync.WaitGroup
	parked.Add(2000)
	for range 2000 { // more stack text than the first 1 MiB buffer holds
		go func() {
			parkedForStacksTest(&parked, stop)
			done <- struct{}{}
		}()
	}
	parked.Wait()
	all := All()
	close(stop)
	for range 2000 {
		<-done
	}
	if n := bytes.Count(all, []byte("stacks.parkedForStacksTest(")); n != 2000 {
		t.Errorf("%d parked goroutines in the dump, want 2000", n)
	}
	if !bytes.Contains(all, []byte("stacks.TestAllHasEveryGoroutine(")) {
		t.Error("the caller's goroutine is missing")
	}
}

//go:noinline
func parkedForStacksTest(parked *sync.WaitGroup, stop <-chan struct{}) {
	parked.Done()
	<-stop
}
