package cputime

import (
	"syscall"
	"time"
	"unsafe"
)

// Thread is the CPU time the calling OS thread has used, cgo calls
// included (clock_gettime(CLOCK_THREAD_CPUTIME_ID), linux/time.h:
// nanosecond resolution, unlike getrusage's scheduler ticks); ok is false
// if it cannot be read.
func Thread() (d time.Duration, ok bool) {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
