package rtpbridge

import (
	"testing"
	"time"
)

// FuzzDirectionPacket feeds arbitrary datagrams, as a leg would deliver
// them, through every kind of direction: passthrough with DTMF detection
// and rendering, and transcoding both ways. Bad input must be dropped and
// counted, never panic.
func FuzzDirectionPacket(f *testing.F) {
	f.Add([]byte{0x80, 112, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3}, uint8(0))
	f.Add(pktExt(112, 1, 2, 3, []byte{1, 2}, []byte{2, 1, 2, 3}), uint8(1))
	f.Add(pkt(101, 5, 5, 3, true, []byte{1, 0x8a, 0, 160}), uint8(2))
	f.Add(pkt(96, 5, 5, 3, true, []byte{1, 2, 3, 4}), uint8(3))
	f.Add(pkt(107, 65535, 1<<31, 3, false, []byte{0xf8, 0xff, 0xfe}), uint8(0))
	sink := func() *sinkEndpoint {
		return &sinkEndpoint{all: make(chan struct{}), done: make(chan struct{}), want: -1}
	}
	pass := passDTMFConfig(sink(), sink())
	pass.DetectDTMF, pass.RenderDTMF = true, true
	passB, err := New(pass)
	if err != nil {
		f.Fatal(err)
	}
	tc, _, _ := transcodingConfig(sink(), sink())
	tc.DetectDTMF, tc.RenderDTMF = true, true
	tcB, err := New(tc)
	if err != nil {
		f.Fatal(err)
	}
	dirs := []*direction{passB.dirs[LegTelegram], passB.dirs[LegSIP], tcB.dirs[LegTelegram], tcB.dirs[LegSIP]}
	var clock time.Duration
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		if len(b) > maxPacket {
			return // ReadRTP reads into the bridge's maxPacket buffer
		}
		d := dirs[int(which)%len(dirs)]
		buf := make([]byte, len(b), maxPacket)
		copy(buf, b)
		clock += 7 * time.Millisecond
		d.packet(buf, clock)
	})
}
