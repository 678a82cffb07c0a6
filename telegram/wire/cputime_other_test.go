//go:build !linux

package wire

// threadCPU is not measured here.
func threadCPU() (int64, bool) { return 0, false }
