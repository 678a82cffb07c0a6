package sip

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/stacks"
)

// udpDialReaders counts sipgo's readers of UDP sockets it dialled itself
// (not our listeners, which sipgo reads in readListenerConnection called
// from Serve).
func udpDialReaders() int {
	return bytes.Count(stacks.All(), []byte("(*TransportUDP).readUDPConnection("))
}

// TestCloseLeavesNoUDPDialSocket: requests that reach the UDP listener
// while the server closes are handled on sipgo's own goroutines; one that
// looks its connection up after the listener has gone makes sipgo open a
// new UDP socket with a reader of its own, and its connection pool, once
// cleared, never closes it. Close must close such sockets: no reader of
// a socket sipgo dialled may outlive it.
func TestCloseLeavesNoUDPDialSocket(t *testing.T) {
	before := udpDialReaders()
	for i := range 40 {
		s := newTestServer(t, nil)
		start(t, s)
		p := newRawPeer(t, s, UDP)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// Send errors after Close are expected: nobody listens.
				_, _ = p.udp.WriteToUDP(optionsPing(p.lport, UDP, p.host, p.port, fmt.Sprintf("%d-%d", i, n)), p.dst)
				if n%8 == 7 {
					runtime.Gosched()
				}
			}
		})
		time.Sleep(time.Duration(i%5) * time.Millisecond) // let the flood reach the listener at varying depths
		s.Close()
		close(stop)
		wg.Wait()
		// A socket Close closed has its reader return at once; a leaked
		// one is read for ever.
		deadline := time.Now().Add(2 * time.Second)
		for udpDialReaders() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				for _, g := range bytes.Split(buf, []byte("\n\n")) {
					if bytes.Contains(g, []byte("readUDPConnection")) {
						t.Logf("%s", g)
					}
				}
				t.Fatalf("round %d: %d readers of UDP sockets sipgo dialled outlive Server.Close", i, udpDialReaders()-before)
			}
			time.Sleep(5 * time.Millisecond) // no event marks a reader's return
		}
	}
}
