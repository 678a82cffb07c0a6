package media

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// audioClockRate is the RTP clock of Telegram audio (Opus, 48 kHz); jitter
// and sender-report timestamps are computed with it.
const audioClockRate = 48000

// maxRecvStreams bounds per-SSRC receive statistics; a 1:1 audio call has
// one, video adds two or three.
const maxRecvStreams = 8

// recvStream is the RFC 3550 §6.4.1/A.1/A.8 receive state of one SSRC.
type recvStream struct {
	ssrc          uint32
	baseSeq       uint32
	maxSeq        uint16
	cycles        uint32
	received      uint64
	expectedPrior uint64
	receivedPrior uint64
	jitter        float64
	lastTransit   int64
	haveTransit   bool
	lastSR        uint32    // middle 32 bits of the last SR's NTP time
	lastSRAt      time.Time // when it arrived
}

func (r *recvStream) update(seq uint16, ts uint32, arrival int64) {
	if r.received == 0 {
		r.baseSeq, r.maxSeq = uint32(seq), seq
	} else if d := seq - r.maxSeq; d != 0 && d < 0x8000 {
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	}
	r.received++
	transit := arrival - int64(ts)
	if r.haveTransit {
		d := float64(transit - r.lastTransit)
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.lastTransit, r.haveTransit = transit, true
}

func (r *recvStream) extMax() uint32 { return r.cycles + uint32(r.maxSeq) }

func (r *recvStream) lost() int64 {
	expected := int64(r.extMax()) - int64(r.baseSeq) + 1
	return expected - int64(r.received)
}

// report builds the reception report block and advances the interval state.
func (r *recvStream) report(now time.Time) rtcp.ReceptionReport {
	expected := uint64(r.extMax()-r.baseSeq) + 1
	expInt := expected - r.expectedPrior
	recvInt := r.received - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	var fraction uint8
	if expInt > 0 && expInt > recvInt {
		fraction = uint8(((expInt - recvInt) << 8) / expInt)
	}
	lost := r.lost()
	switch {
	case lost > 0x7fffff:
		lost = 0x7fffff
	case lost < -0x800000:
		lost = -0x800000
	}
	var dlsr uint32
	if !r.lastSRAt.IsZero() {
		dlsr = uint32(now.Sub(r.lastSRAt).Seconds() * 65536)
	}
	return rtcp.ReceptionReport{
		SSRC:               r.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xffffff,
		LastSequenceNumber: r.extMax(),
		Jitter:             uint32(r.jitter),
		LastSenderReport:   r.lastSR,
		Delay:              dlsr,
	}
}

// rtcpState is what the receive path, send path and RTCP loop share.
type rtcpState struct {
	epoch time.Time

	mu           sync.Mutex
	streams      [maxRecvStreams]recvStream
	nstreams     int
	recorder     *twcc.Recorder
	localSSRC    uint32 // sender SSRC of reports when we send no media
	sendSSRC     uint32
	sendPackets  uint32
	sendOctets   uint32
	lastTS       uint32
	lastTSAt     time.Time
	remoteLost   int32
	remoteFrac   uint8
	remoteJitter uint32

	packetsIn, bytesIn, packetsOut, bytesOut             atomic.Uint64
	authFailures, dropped, earlyDropped                  atomic.Uint64
	rtcpIn, rtcpOut, srIn, rrIn, twccIn, twccOut, nackIn atomic.Uint64
	rtcpErrors                                           atomic.Uint64
}

func (st *rtcpState) init() {
	st.epoch = time.Now()
	st.localSSRC = randomNonZero32()
	st.recorder = twcc.NewRecorder(st.localSSRC)
}

func (st *rtcpState) stream(ssrc uint32) *recvStream {
	for i := range st.nstreams {
		if st.streams[i].ssrc == ssrc {
			return &st.streams[i]
		}
	}
	if st.nstreams == maxRecvStreams {
		return nil
	}
	r := &st.streams[st.nstreams]
	*r = recvStream{ssrc: ssrc}
	st.nstreams++
	return r
}

// received accounts one decrypted RTP packet.
func (st *rtcpState) received(h *rtp.Header, size int, now time.Time, twccSeq uint16, hasTWCC bool) {
	st.packetsIn.Add(1)
	st.bytesIn.Add(uint64(size))
	arrival := now.Sub(st.epoch).Nanoseconds() * audioClockRate / 1e9
	st.mu.Lock()
	if r := st.stream(h.SSRC); r != nil {
		r.update(h.SequenceNumber, h.Timestamp, arrival)
	}
	if hasTWCC {
		st.recorder.Record(h.SSRC, twccSeq, now.Sub(st.epoch).Microseconds())
	}
	st.mu.Unlock()
}

// sent accounts one RTP packet we sent (payload octets for the SR).
func (st *rtcpState) sent(h *rtp.Header, payload int, now time.Time) {
	st.packetsOut.Add(1)
	st.bytesOut.Add(uint64(payload + h.MarshalSize()))
	st.mu.Lock()
	if st.sendSSRC != h.SSRC {
		st.sendSSRC, st.sendPackets, st.sendOctets = h.SSRC, 0, 0
	}
	st.sendPackets++
	st.sendOctets += uint32(payload)
	st.lastTS, st.lastTSAt = h.Timestamp, now
	st.mu.Unlock()
}

// ntpTime converts t to the 64-bit NTP format.
func ntpTime(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + 2208988800
	frac := (uint64(ns%1e9) << 32) / 1e9
	return sec<<32 | frac
}

// reports builds SR (when we send) or RR with one block per received SSRC.
func (st *rtcpState) reports(now time.Time) rtcp.Packet {
	st.mu.Lock()
	defer st.mu.Unlock()
	blocks := make([]rtcp.ReceptionReport, 0, st.nstreams)
	for i := range st.nstreams {
		blocks = append(blocks, st.streams[i].report(now))
	}
	if st.sendSSRC != 0 {
		ts := st.lastTS + uint32(now.Sub(st.lastTSAt).Seconds()*audioClockRate)
		return &rtcp.SenderReport{
			SSRC:        st.sendSSRC,
			NTPTime:     ntpTime(now),
			RTPTime:     ts,
			PacketCount: st.sendPackets,
			OctetCount:  st.sendOctets,
			Reports:     blocks,
		}
	}
	return &rtcp.ReceiverReport{SSRC: st.localSSRC, Reports: blocks}
}

func (st *rtcpState) feedback() []rtcp.Packet {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.recorder.PacketsHeld() == 0 {
		return nil
	}
	return st.recorder.BuildFeedbackPacket()
}

// handleSRTCP decrypts and accounts incoming RTCP. Bad RTCP is counted and
// dropped, never fatal.
func (s *Session) handleSRTCP(pkt []byte) {
	keys := s.keys.Load()
	out, err := keys.in.DecryptRTCP(s.rtcpIn[:0], pkt, nil)
	if err != nil {
		if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) {
			s.st.authFailures.Add(1)
		} else {
			s.st.dropped.Add(1)
		}
		return
	}
	if !validRTCP(out) {
		s.st.rtcpErrors.Add(1)
		return
	}
	now := time.Now()
	for b := out; len(b) > 0; {
		p, rest, _ := nextRTCP(b)
		b = rest
		s.st.rtcpIn.Add(1)
		switch p[1] {
		case rtcpSR:
			s.st.srIn.Add(1)
			s.st.mu.Lock()
			if r := s.st.stream(rtcpSenderSSRC(p)); r != nil {
				r.lastSR, r.lastSRAt = uint32(srNTP(p)>>16), now
			}
			s.st.mu.Unlock()
			s.st.remoteReports(p)
		case rtcpRR:
			s.st.rrIn.Add(1)
			s.st.remoteReports(p)
		case rtcpRTPFB:
			switch p[0] & 0x1f {
			case rtcpFmtTWCC:
				s.st.twccIn.Add(1)
			case rtcpFmtNACK:
				s.st.nackIn.Add(1)
			}
		}
	}
}

// remoteReports keeps what the peer says about our stream: the report
// blocks of the SR or RR p (checked by nextRTCP).
func (st *rtcpState) remoteReports(p []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range int(p[0] & 0x1f) {
		r := reportBlockAt(p, i)
		if r.ssrc != st.sendSSRC || st.sendSSRC == 0 {
			continue
		}
		lost := int32(r.totalLost<<8) >> 8 // sign-extend 24 bits
		st.remoteLost, st.remoteFrac, st.remoteJitter = lost, r.fraction, r.jitter
	}
}

func (s *Session) sendRTCP(pkts []rtcp.Packet) {
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		s.log.Debug("marshal RTCP", "err", err)
		return
	}
	keys := s.keys.Load()
	s.txMu.Lock()
	defer s.txMu.Unlock()
	out, err := keys.out.EncryptRTCP(s.rtcpOut[:0], raw, nil)
	if err != nil {
		s.log.Debug("protect RTCP", "err", err)
		return
	}
	if err := s.send(out); err == nil {
		s.st.rtcpOut.Add(uint64(len(pkts)))
	}
}
