//go:build linux

package codec

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time (user + system) the calling OS thread has
// used (getrusage RUSAGE_THREAD, Linux).
func threadCPU() time.Duration {
	const rusageThread = 1
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
