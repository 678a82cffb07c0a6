//go:build !linux

package media

import (
	"net"
	"net/netip"
)

// readLoop reads the shared socket one datagram at a time until it is
// closed (recvmmsg batching is Linux only: mux_linux.go).
func (m *sharedMux) readLoop() {
	defer close(m.done)
	buf := make([]byte, receiveMTU)
	for {
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !isClosed(err) {
				m.log.Warn("shared port read", "err", err)
			}
			return
		}
		m.route(buf[:n], from)
	}
}

// muxWriter batches writes on Linux only (mux_linux.go); here every write
// is sent on its own.
type muxWriter struct{}

func (w *muxWriter) init(*net.UDPConn)                 {}
func (w *muxWriter) hold()                             {}
func (w *muxWriter) release()                          {}
func (w *muxWriter) write([]byte, netip.AddrPort) bool { return false }
