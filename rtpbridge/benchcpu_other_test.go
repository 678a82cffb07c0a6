//go:build !linux

package rtpbridge

import "time"

// benchThreadCPU is not measured off Linux; benchmarks then report 0 cpu-ns/op.
func benchThreadCPU() time.Duration { return 0 }
