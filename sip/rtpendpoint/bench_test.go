package rtpendpoint

import (
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/tgsip/tgsip/sip/sdp"

	"github.com/tgsip/tgsip/internal/cputime"
)

// endpointPair makes two endpoints facing each other on loopback, a's send
// keys being b's receive keys.
func endpointPair(b *testing.B, keys *sdp.SRTPKeys) (*Endpoint, *Endpoint) {
	ca, cb := listen(b), listen(b)
	neg := sdp.Negotiated{
		Codec:     sdp.Codec{Name: sdp.Opus, PayloadType: 111, ClockRate: 48000, Channels: 2},
		RTCPMux:   true,
		Direction: sdp.SendRecv,
		SRTP:      keys,
	}
	negA, negB := neg, neg
	negA.Remote, negB.Remote = addrOf(cb), addrOf(ca)
	negA.RemoteRTCP, negB.RemoteRTCP = negA.Remote, negB.Remote
	if keys != nil {
		mirror := *keys
		mirror.LocalKey, mirror.RemoteKey = keys.RemoteKey, keys.LocalKey
		mirror.LocalSalt, mirror.RemoteSalt = keys.RemoteSalt, keys.LocalSalt
		mirror.LocalMKI, mirror.RemoteMKI = keys.RemoteMKI, keys.LocalMKI
		negB.SRTP = &mirror
	}
	a, err := New(ca, nil, negA, Options{RTCPInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	bb, err := New(cb, nil, negB, Options{RTCPInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(); bb.Close() })
	return a, bb
}

// BenchmarkWriteReadRTP is one RTP packet (100 bytes of Opus payload, a
// 20 ms frame at 40 kbit/s) through WriteRTP on one endpoint (SRTP protect,
// sendto) and ReadRTP on the other (recvfrom, source check, SRTP unprotect
// with replay check, RFC 3550 statistics): the per-packet cost of one
// packet in and one packet out of a SIP leg, syscalls included.
func BenchmarkWriteReadRTP(b *testing.B) {
	cases := []struct {
		name  string
		suite sdp.Suite
	}{
		{"plain", ""},
		{"AES_CM_128_HMAC_SHA1_80", sdp.AESCM128HMACSHA180},
		{"AES_CM_128_HMAC_SHA1_32", sdp.AESCM128HMACSHA132},
		{"AES_256_CM_HMAC_SHA1_80", sdp.AES256CMHMACSHA180},
		{"AEAD_AES_128_GCM", sdp.AEADAES128GCM},
		{"AEAD_AES_256_GCM", sdp.AEADAES256GCM},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var keys *sdp.SRTPKeys
			if tc.suite != "" {
				keys = newKeys(b, tc.suite, false)
			}
			a, r := endpointPair(b, keys)
			pkt := rtpPacket(b, 0xabc, 0, 0, make([]byte, 100))
			buf := make([]byte, 1500)
			seq, ts := uint16(0), uint32(0)
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			b.ResetTimer()
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				seq++
				ts += 960
				pkt[2], pkt[3] = byte(seq>>8), byte(seq)
				pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				if err := a.WriteRTP(pkt); err != nil {
					b.Fatal(err)
				}
				if _, err := r.ReadRTP(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if cpu := cputime.Process() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
			if s := r.Stats().Received; s.Packets != uint64(b.N) {
				b.Fatalf("received %d of %d", s.Packets, b.N)
			}
		})
	}
}

// TestZeroAllocsPerPacket pins the allocation-free packet path (what the
// benchmark reports) so that a regression fails the ordinary test run.
func TestZeroAllocsPerPacket(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	res := testing.Benchmark(func(b *testing.B) {
		a, r := endpointPair(b, newKeys(b, sdp.AEADAES128GCM, true))
		pkt := rtpPacket(b, 0xabc, 0, 0, make([]byte, 100))
		buf := make([]byte, 1500)
		// The first packet creates the SSRC state in the SRTP contexts.
		if err := a.WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadRTP(buf); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			pkt[2], pkt[3] = byte(i>>8), byte(i)
			if err := a.WriteRTP(pkt); err != nil {
				b.Fatal(err)
			}
			if _, err := r.ReadRTP(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := res.AllocsPerOp(); n != 0 {
		t.Fatalf("%d allocations per packet", n)
	}
}

// BenchmarkReceivePath is ReadRTP's work without the socket: source check,
// SRTP unprotect with replay check and statistics for one packet, on
// packets protected beforehand by a pion/srtp peer.
func BenchmarkReceivePath(b *testing.B) {
	for _, suite := range []sdp.Suite{sdp.AESCM128HMACSHA180, sdp.AEADAES128GCM} {
		b.Run(string(suite), func(b *testing.B) {
			pr := newPair(b, newKeys(b, suite, false), true, Options{}, nil)
			src := addrOf(pr.peer.conn)
			const chunk = 4096
			pkts := make([][]byte, chunk)
			buf := make([]byte, 1500)
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%chunk == 0 {
					b.StopTimer()
					for j := range pkts {
						pkts[j] = pr.peer.protect(pr.peer.packet(make([]byte, 100)))
					}
					b.StartTimer()
				}
				if n, _ := pr.ep.receive(pkts[i%chunk], src, buf, now); n == 0 {
					b.Fatal("packet dropped")
				}
			}
		})
	}
}

// TestReportNoAllocs: building, protecting and sending a report allocates
// nothing either, so a shared scheduler's pass costs no garbage.
func TestReportNoAllocs(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AEADAES128GCM, false), true, Options{}, nil)
	pr.peer.send(make([]byte, 20)) // a report block to write
	if _, err := pr.ep.ReadRTP(make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	if err := pr.ep.WriteRTP(rtpPacket(t, 5, 1, 1, make([]byte, 20))); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if n := testing.AllocsPerRun(50, func() { pr.ep.sendReport(now, false) }); n != 0 {
		t.Fatalf("%v allocations per report", n)
	}
	if pr.ep.Stats().RTCPSent < 50 {
		t.Fatal("reports not sent")
	}
}

// BenchmarkCMOverhead compares pion/srtp's unprotect of one
// AES_CM_128_HMAC_SHA1_80 packet (12-byte header, 100-byte payload, with
// replay check) with the bare primitives the suite needs for it
// (HMAC-SHA1 over the packet and ROC, AES-CTR over the payload, RFC 3711
// §4.1.1 and §4.2): what an own implementation of the suite could save.
func BenchmarkCMOverhead(b *testing.B) {
	b.Run("pion", func(b *testing.B) {
		key, salt := make([]byte, 16), make([]byte, 14)
		tx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			b.Fatal(err)
		}
		rx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80, srtp.SRTPReplayProtection(replayWindow))
		if err != nil {
			b.Fatal(err)
		}
		pkts := make([][]byte, b.N)
		for i := range pkts {
			p := rtpPacket(b, 5, uint16(i), uint32(i)*960, make([]byte, 100))
			if pkts[i], err = tx.EncryptRTP(nil, p, nil); err != nil {
				b.Fatal(err)
			}
		}
		out := make([]byte, 1500)
		var h rtp.Header
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := rx.DecryptRTP(out[:0], pkts[i], &h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("primitives", func(b *testing.B) {
		blk, err := aes.NewCipher(make([]byte, 16))
		if err != nil {
			b.Fatal(err)
		}
		mac := hmac.New(sha1.New, make([]byte, 20))
		pkt, out := make([]byte, 122), make([]byte, 1500)
		var iv, ks [16]byte
		var sum [sha1.Size]byte
		var roc [4]byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			mac.Reset()
			mac.Write(pkt[:112])
			mac.Write(roc[:])
			mac.Sum(sum[:0])
			copy(out, pkt[:12])
			iv[15] = 0
			for off := 12; off < 112; off += 16 {
				blk.Encrypt(ks[:], iv[:])
				iv[15]++
				subtle.XORBytes(out[off:min(off+16, 112)], pkt[off:min(off+16, 112)], ks[:])
			}
		}
	})
}
