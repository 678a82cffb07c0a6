package media

import (
	"testing"

	"github.com/pion/rtcp"
)

// rtcpSeeds are compound packets as the peer sends them: SR or RR with
// report blocks, transport-cc feedback, NACK, SDES, BYE.
func rtcpSeeds(t testing.TB) [][]byte {
	rb := []rtcp.ReceptionReport{
		{SSRC: 0x11, FractionLost: 3, TotalLost: 0xfffffe, LastSequenceNumber: 70000, Jitter: 12, LastSenderReport: 5, Delay: 6},
		{SSRC: 0x22, FractionLost: 0, TotalLost: 7, LastSequenceNumber: 1, Jitter: 999},
	}
	cc := &rtcp.TransportLayerCC{
		SenderSSRC: 1, MediaSSRC: 2, BaseSequenceNumber: 100, PacketStatusCount: 3, ReferenceTime: 4, FbPktCount: 5,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 3}},
		RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 500}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 0}},
	}
	cc.Header = rtcp.Header{Padding: cc.MarshalSize()%4 != 0, Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Length: uint16((cc.MarshalSize()+3)/4 - 1)}
	var out [][]byte
	for _, pkts := range [][]rtcp.Packet{
		{&rtcp.SenderReport{SSRC: 0xabc, NTPTime: 0x0102030405060708, RTPTime: 9, PacketCount: 10, OctetCount: 11, Reports: rb}},
		{&rtcp.ReceiverReport{SSRC: 0xdef, Reports: rb[:1]}},
		{&rtcp.ReceiverReport{SSRC: 0xdef}, cc},
		{&rtcp.SenderReport{SSRC: 1, Reports: rb[1:]}, &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 5, LostPackets: 1}}},
			&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x"}}}}},
			&rtcp.Goodbye{Sources: []uint32{1}}},
	} {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// checkRTCPIn compares the in-place reading with pion/rtcp's Unmarshal:
// where pion parses the compound, validRTCP accepts it and every packet's
// type, sender SSRC, SR NTP time and report blocks are the same. Where pion
// fails and validRTCP accepts, the failure must be in a packet that is
// neither SR nor RR (those are not read beyond their header).
func checkRTCPIn(t *testing.T, b []byte) {
	t.Helper()
	pkts, err := rtcp.Unmarshal(b)
	ok := validRTCP(b)
	if err == nil && !ok {
		t.Fatalf("pion parses %x, validRTCP rejects it", b)
	}
	if !ok {
		return
	}
	i := 0
	for rest := b; len(rest) > 0; i++ {
		p, r, pok := nextRTCP(rest)
		if !pok {
			t.Fatalf("validRTCP accepted %x but packet %d does not split", b, i)
		}
		rest = r
		if err != nil {
			if p[1] == rtcpSR || p[1] == rtcpRR {
				if _, perr := rtcp.Unmarshal(p); perr != nil {
					t.Fatalf("packet %d (%x): pion: %v, read in place", i, p, perr)
				}
			}
			continue
		}
		if i >= len(pkts) {
			t.Fatalf("more packets than pion's %d", len(pkts))
		}
		var want []rtcp.ReceptionReport
		switch q := pkts[i].(type) {
		case *rtcp.SenderReport:
			if p[1] != rtcpSR || rtcpSenderSSRC(p) != q.SSRC || srNTP(p) != q.NTPTime {
				t.Fatalf("packet %d: SR %+v, read %x", i, q, p)
			}
			want = q.Reports
		case *rtcp.ReceiverReport:
			if p[1] != rtcpRR || rtcpSenderSSRC(p) != q.SSRC {
				t.Fatalf("packet %d: RR %+v, read %x", i, q, p)
			}
			want = q.Reports
		case *rtcp.TransportLayerCC:
			if p[1] != rtcpRTPFB || p[0]&0x1f != rtcpFmtTWCC {
				t.Fatalf("packet %d: transport-cc, read %x", i, p)
			}
		case *rtcp.TransportLayerNack:
			if p[1] != rtcpRTPFB || p[0]&0x1f != rtcpFmtNACK {
				t.Fatalf("packet %d: NACK, read %x", i, p)
			}
		default:
			if p[1] == rtcpSR || p[1] == rtcpRR || (p[1] == rtcpRTPFB && (p[0]&0x1f == rtcpFmtTWCC || p[0]&0x1f == rtcpFmtNACK)) {
				t.Fatalf("packet %d: pion %T, read %x", i, q, p)
			}
		}
		if p[1] == rtcpSR || p[1] == rtcpRR {
			if n := int(p[0] & 0x1f); n != len(want) {
				t.Fatalf("packet %d: %d report blocks, pion %d", i, n, len(want))
			}
			for j, w := range want {
				got := reportBlockAt(p, j)
				if got != (reportBlock{ssrc: w.SSRC, fraction: w.FractionLost, totalLost: w.TotalLost, jitter: w.Jitter}) {
					t.Fatalf("packet %d block %d: %+v, pion %+v", i, j, got, w)
				}
			}
		}
	}
	if err == nil && i != len(pkts) {
		t.Fatalf("%d packets, pion %d", i, len(pkts))
	}
}

func TestRTCPIn(t *testing.T) {
	for _, b := range rtcpSeeds(t) {
		if _, err := rtcp.Unmarshal(b); err != nil {
			t.Fatalf("seed %x: %v", b, err)
		}
		checkRTCPIn(t, b)
		if !validRTCP(b) {
			t.Fatalf("valid compound %x rejected", b)
		}
		// Truncations: SR and RR are rejected as pion rejects them.
		for n := 1; n < len(b); n++ {
			checkRTCPIn(t, b[:n])
		}
		bad := append([]byte(nil), b...)
		bad[0] &^= 0xc0
		if validRTCP(bad) {
			t.Fatal("version 0 accepted")
		}
	}
	// Reading a compound allocates nothing.
	b := rtcpSeeds(t)[3]
	var st rtcpState
	st.sendSSRC = 0x22
	if n := testing.AllocsPerRun(100, func() {
		for p, rest, ok := nextRTCP(b); ok; p, rest, ok = nextRTCP(rest) {
			if p[1] == rtcpSR || p[1] == rtcpRR {
				st.remoteReports(p)
			}
		}
	}); n != 0 {
		t.Fatalf("%v allocations per compound", n)
	}
	if st.remoteJitter != 999 || st.remoteLost != 7 {
		t.Fatalf("remote report not kept: lost %d jitter %d", st.remoteLost, st.remoteJitter)
	}
}

func FuzzRTCPIn(f *testing.F) {
	for _, b := range rtcpSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkRTCPIn(t, b) })
}
