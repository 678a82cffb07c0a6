package media

import (
	"testing"
	"time"
)

// BenchmarkWriteReadRTP measures one RTP packet through a connected pair:
// WriteRTP (extensions, SRTP protect, ICE send) and ReadRTP (ICE receive,
// demux, SRTP unprotect, stats, transport-cc record) on loopback.
func BenchmarkWriteReadRTP(b *testing.B) {
	for _, tc := range []struct {
		name   string
		relay  bool
		twccOn bool
		shared bool // the receiver's host candidate on a shared port
	}{{"p2p", false, false, false}, {"p2p-twcc", false, true, false}, {"reflector-twcc", true, true, false}, {"shared-port-twcc", false, true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var ca, cb Config
			if tc.relay {
				ref := newTestReflector(b)
				refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(b)}}
				ca, cb = Config{Reflectors: refl}, Config{Reflectors: refl}
			} else {
				ca, cb = Config{P2PAllowed: true}, Config{P2PAllowed: true}
			}
			if tc.shared {
				mux, closer, err := NewSharedPort("127.0.0.1:0", testLogger())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = closer.Close() })
				cb.Transport = loopbackTransport()
				cb.Transport.UDPMux = mux
			}
			a, s := connectedPair(b, ca, cb)
			if tc.twccOn {
				a.SetRTPExtensions(2, 3)
				s.SetRTPExtensions(2, 3)
			}
			// Warm up until packets pass (the first ones may beat the keys).
			r := startReader(s)
			flow(b, a, r, 7, "warm", 3)
			_ = s.Close() // stop the reader; measure on a fresh pair below
			r.wait(b)
			_ = a.Close()

			a, s = connectedPair(b, ca, cb)
			if tc.twccOn {
				a.SetRTPExtensions(2, 3)
				s.SetRTPExtensions(2, 3)
			}
			pkt := rtpPacket(b, 7, 1, make([]byte, 160))
			buf := make([]byte, 1500)
			seq := uint16(0)
			write := func() {
				seq++
				pkt[2], pkt[3] = byte(seq>>8), byte(seq)
				if err := a.WriteRTP(pkt); err != nil {
					b.Fatal(err)
				}
			}
			// The first packets after connecting may beat the receiver's
			// key derivation; send on a ticker until one gets through.
			primed := make(chan error, 1)
			go func() {
				_, err := s.ReadRTP(buf)
				primed <- err
			}()
			tick := time.NewTicker(time.Millisecond)
			for waiting := true; waiting; {
				select {
				case err := <-primed:
					if err != nil {
						b.Fatal(err)
					}
					waiting = false
				case <-tick.C:
					write()
				}
			}
			tick.Stop()
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				write()
				if _, err := s.ReadRTP(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
		})
	}
}
