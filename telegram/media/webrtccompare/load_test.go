//go:build unix

// Package webrtccompare measures pion/webrtc/v4's track API under the load
// of telegram/media's TestLoadPairs, for docs/media-performance.md. It is
// its own module so that pion/webrtc (and the pion releases it requires)
// stay out of the trunk's go.mod.
package webrtccompare

import (
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestLoadWebRTCPairs is TestLoadPairs through pion/webrtc/v4's track API
// (PeerConnection, TrackLocalStaticRTP, TrackRemote.Read) with its default
// interceptors (NACK, RTCP reports, transport-cc), for the comparison in
// docs/media-performance.md:
//
//	cd telegram/media/webrtccompare && MEDIA_LOAD_PAIRS=200 taskset -c 1 \
//	  go test -run TestLoadWebRTCPairs -count=1 -v .
func TestLoadWebRTCPairs(t *testing.T) {
	pairs, _ := strconv.Atoi(os.Getenv("MEDIA_LOAD_PAIRS"))
	if pairs <= 0 {
		t.Skip("set MEDIA_LOAD_PAIRS to run the load measurement")
	}
	window := 10 * time.Second
	if s, err := time.ParseDuration(os.Getenv("MEDIA_LOAD_WINDOW")); err == nil && s > 0 {
		window = s
	}
	defaults := os.Getenv("MEDIA_LOAD_INTERCEPTORS") != "0"

	newAPI := func() *webrtc.API {
		m := &webrtc.MediaEngine{}
		if err := m.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
		ir := &interceptor.Registry{}
		if defaults {
			if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
				t.Fatal(err)
			}
		}
		se := webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	}
	api := newAPI()

	var received, sent atomic.Uint64
	var readers sync.WaitGroup
	type end struct {
		pc        *webrtc.PeerConnection
		track     *webrtc.TrackLocalStaticRTP
		connected chan struct{}
	}
	ends := make([]end, 0, 2*pairs)
	newEnd := func(i int) end {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "s"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		snd, err := pc.AddTrack(track)
		if err != nil {
			t.Fatal(err)
		}
		readers.Add(1)
		go func() { // the interceptors need the sender's RTCP read
			defer readers.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := snd.Read(buf); err != nil {
					return
				}
			}
		}()
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			readers.Add(1)
			go func() {
				defer readers.Done()
				buf := make([]byte, 1500)
				for {
					if _, _, err := tr.Read(buf); err != nil {
						return
					}
					received.Add(1)
				}
			}()
		})
		connected := make(chan struct{})
		var once sync.Once
		pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
			if st == webrtc.PeerConnectionStateConnected {
				once.Do(func() { close(connected) })
			}
		})
		return end{pc: pc, track: track, connected: connected}
	}
	for i := range pairs {
		a, b := newEnd(2*i), newEnd(2*i+1)
		offer, err := a.pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		ga := webrtc.GatheringCompletePromise(a.pc)
		if err := a.pc.SetLocalDescription(offer); err != nil {
			t.Fatal(err)
		}
		<-ga
		if err := b.pc.SetRemoteDescription(*a.pc.LocalDescription()); err != nil {
			t.Fatal(err)
		}
		answer, err := b.pc.CreateAnswer(nil)
		if err != nil {
			t.Fatal(err)
		}
		gb := webrtc.GatheringCompletePromise(b.pc)
		if err := b.pc.SetLocalDescription(answer); err != nil {
			t.Fatal(err)
		}
		<-gb
		if err := a.pc.SetRemoteDescription(*b.pc.LocalDescription()); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, a, b)
	}
	defer func() {
		for _, e := range ends {
			_ = e.pc.Close()
		}
		readers.Wait()
	}()
	deadline := time.After(testTimeout + time.Duration(pairs)*50*time.Millisecond)
	for _, e := range ends {
		select {
		case <-e.connected:
		case <-deadline:
			t.Fatalf("peer connection state %v", e.pc.ConnectionState())
		}
	}

	stop := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		pkts := make([][]byte, len(ends))
		for i := range ends {
			pkts[i] = rtpPacket(t, uint32(1000+i), 0, make([]byte, 160))
		}
		sendSlot := func(slot int) {
			for i := slot; i < len(ends); i += 20 {
				p := pkts[i]
				seq := uint16(p[2])<<8 | uint16(p[3]) + 1
				p[2], p[3] = byte(seq>>8), byte(seq)
				ts := uint32(seq) * 960
				p[4], p[5], p[6], p[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				if _, err := ends[i].track.Write(p); err == nil {
					sent.Add(1)
				}
			}
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start, done := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			due := int(time.Since(start) / time.Millisecond)
			for ; done < due; done++ {
				sendSlot(done % 20)
			}
		}
	}()

	time.Sleep(2 * time.Second) // warm-up: a fixed measurement schedule
	n0, s0, c0, w0 := received.Load(), sent.Load(), processCPU(), time.Now()
	time.Sleep(window)
	n1, s1, c1, w1 := received.Load(), sent.Load(), processCPU(), time.Now()
	close(stop)
	<-senderDone
	pkts := n1 - n0
	if pkts == 0 {
		t.Fatal("no packets received in the window")
	}
	wall := w1.Sub(w0)
	expected := float64(len(ends)) * 50 * wall.Seconds()
	t.Logf("webrtc pairs=%d interceptors=%v window=%v packets=%d (sent %d, %.1f%% of the %0.f due) cpu=%v (%.1f%% of one core) cpu/packet=%v",
		pairs, defaults, wall.Round(time.Millisecond), pkts, s1-s0, 100*float64(pkts)/expected, expected,
		(c1 - c0).Round(time.Millisecond), 100*float64(c1-c0)/float64(wall), time.Duration(float64(c1-c0)/float64(pkts)))
}

const testTimeout = 15 * time.Second

// processCPU is the user+system CPU time of the process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rtpPacket is a plain RTP packet (PT 111) with the given payload.
func rtpPacket(t testing.TB, ssrc uint32, seq uint16, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: ssrc}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
