package sip

import (
	"log/slog"
	"net"
)

// udpReadBuffer is the receive buffer asked for the SIP UDP listener.
// One goroutine reads it (sipgo's read loop); when that goroutine is late
// (the process descheduled, a GC pause) datagrams queue in the kernel, and
// Linux's default of 208 KiB holds ~300 INVITEs: a burst beyond it is
// dropped, and each dropped request costs its sender a retransmission
// timer, 500 ms (RFC 3261 §17.1.1.2 T1), before it is tried again. In
// internal/cpsbench at 2,800 calls/s about 1,000 datagrams a run were
// dropped with the default (docs/benchmarks.md). Linux caps the value at
// net.core.rmem_max (raise it with sysctl to get the whole 4 MiB).
const udpReadBuffer = 4 << 20

// tuneUDPListener sizes the receive buffer of a SIP UDP listener; a
// refusal only costs the burst headroom, so it is logged, not fatal.
func tuneUDPListener(c *net.UDPConn, log *slog.Logger) {
	if err := c.SetReadBuffer(udpReadBuffer); err != nil {
		log.Warn("SIP UDP receive buffer not raised", "want", udpReadBuffer, "err", err)
	}
}
