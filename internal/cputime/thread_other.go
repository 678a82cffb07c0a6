//go:build !linux

package cputime

import "time"

// Thread is not measured off Linux: ok is false.
func Thread() (time.Duration, bool) { return 0, false }
