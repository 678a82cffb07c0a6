package rtpbridge

import (
	"math"
	"sync/atomic"
	"time"
)

// DirectionStats are the counters of one direction of a call: what the
// bridge received from the source leg and what it sent toward the other.
type DirectionStats struct {
	// Packets and Bytes received from the source leg (RTP, payload bytes).
	Packets, Bytes uint64
	// Lost is the RFC 3550 §A.3 cumulative loss of the source's streams
	// (expected minus received; duplicates can make it negative).
	Lost int64
	// Jitter is the RFC 3550 §A.8 interarrival jitter of the source.
	Jitter time.Duration
	// Late counts packets that came after the jitter buffer gave up on
	// them; Concealed counts frames made by FEC or PLC instead.
	Late, Concealed uint64
	// Discarded counts packets dropped as malformed or of an unknown
	// payload type.
	Discarded uint64
	// PacketsSent and BytesSent went toward the other leg (payload
	// bytes); WriteErrors failed there.
	PacketsSent, BytesSent, WriteErrors uint64
	// DTMF counts telephone events received (RFC 4733 or detected in-band).
	DTMF uint64
	// RTT is the source leg's round-trip time as its RTCP last reported it
	// (SetRTT), 0 when unknown.
	RTT time.Duration
	// LossHint is the loss, in percent, the encoder toward the other leg
	// was last told to expect from that leg's reception reports (the
	// Opus FEC toward Telegram, Config.LossFloor); 0 when not driven.
	LossHint int
	// MOS is the E-model estimate of this direction's listening quality
	// (see EstimateMOS), 1-4.5.
	MOS float64
}

// Stats are the counters of a call, per direction.
type Stats struct {
	SIPToTelegram, TelegramToSIP DirectionStats
}

// dirCounters are the live counters of one direction: written by its
// goroutine, read by Stats from any goroutine.
type dirCounters struct {
	packets, bytes, late, concealed, discarded atomic.Uint64
	sent, sentBytes, writeErrors, dtmf         atomic.Uint64
	lost                                       atomic.Int64
	jitterNS                                   atomic.Int64
	rttNS                                      atomic.Int64
	bufferNS                                   atomic.Int64 // jitter buffer target, for the E-model
	lossHint                                   atomic.Int32 // encoder loss hint toward the destination
}

// rxStream computes loss and jitter of the received stream (RFC 3550
// Appendix A.1, A.3, A.8); it is owned by the direction's goroutine.
type rxStream struct {
	started    bool
	ssrc       SSRC
	maxSeq     uint16
	cycles     int64
	baseSeq    int64
	received   int64
	lostBefore int64 // loss of earlier sources
	transit    int64
	jitter     float64 // in clock ticks
	clock      int64
}

func (s *rxStream) packet(h *header, now time.Duration, c *dirCounters) {
	if !s.started || h.ssrc != s.ssrc {
		if s.started {
			s.lostBefore += s.expected() - s.received
		}
		*s = rxStream{started: true, ssrc: h.ssrc, maxSeq: h.seq, baseSeq: int64(h.seq),
			lostBefore: s.lostBefore, clock: s.clock, jitter: s.jitter}
		s.transit = int64(now)*s.clock/int64(time.Second) - int64(h.ts)
	} else {
		d := h.seq - s.maxSeq
		switch {
		case d > 0 && d < maxDropout:
			if h.seq < s.maxSeq {
				s.cycles += 1 << 16
			}
			s.maxSeq = h.seq
		case d >= maxDropout && d <= 0xffff-maxMisorder:
			// A restart of the source (§A.1): start counting afresh.
			s.lostBefore += s.expected() - s.received
			s.maxSeq, s.cycles, s.baseSeq, s.received = h.seq, 0, int64(h.seq), 0
		}
		// §A.8: J += (|D| - J)/16 with D the change in transit time.
		arrival := int64(now) * s.clock / int64(time.Second)
		transit := arrival - int64(uint32(h.ts))
		dt := float64(transit - s.transit)
		if dt < 0 {
			dt = -dt
		}
		// A transit change above a minute is a timestamp jump, not jitter.
		if dt < float64(60*s.clock) {
			s.jitter += (dt - s.jitter) / 16
		}
		s.transit = transit
	}
	s.received++
	c.lost.Store(s.lostBefore + s.expected() - s.received)
	if s.clock > 0 {
		c.jitterNS.Store(int64(s.jitter * float64(time.Second) / float64(s.clock)))
	}
}

func (s *rxStream) expected() int64 { return s.cycles + int64(s.maxSeq) - s.baseSeq + 1 }

func (c *dirCounters) snapshot() DirectionStats {
	return DirectionStats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		Lost: c.lost.Load(), Jitter: time.Duration(c.jitterNS.Load()),
		Late: c.late.Load(), Concealed: c.concealed.Load(), Discarded: c.discarded.Load(),
		PacketsSent: c.sent.Load(), BytesSent: c.sentBytes.Load(), WriteErrors: c.writeErrors.Load(),
		DTMF: c.dtmf.Load(), RTT: time.Duration(c.rttNS.Load()), LossHint: int(c.lossHint.Load()),
	}
}

// EstimateMOS is the listening quality (MOS-CQE) the E-model predicts for
// a one-way delay, a packet loss ratio (0-1, losses after concealment
// included) and a codec with equipment impairment ie and packet-loss
// robustness bpl.
//
// It is ITU-T G.107 (06/2015) with its defaults, simplified as is common
// for VoIP monitoring: R = Ro - Is - Id - Ie,eff + A with Ro - Is = 93.2
// (§7.2-7.3 defaults) and A = 0; the delay impairment Id is the
// Cole-Rosenbluth fit of G.107's Idd for echo-free paths,
// Id = 0.024·d + 0.11·(d-177.3)·H(d-177.3) (d in ms; Cole & Rosenbluth,
// "Voice over IP performance monitoring", ACM CCR 31(2), 2001); the loss
// impairment is G.107 §7.5 eq. 7-29 with random loss (BurstR = 1):
// Ie,eff = Ie + (95-Ie)·Ppl/(Ppl+Bpl); R maps to MOS by G.107 Annex B
// eq. B-4.
func EstimateMOS(delay time.Duration, loss, ie, bpl float64) float64 {
	d := float64(delay) / float64(time.Millisecond)
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	ppl := 100 * math.Max(0, math.Min(1, loss))
	ieEff := ie + (95-ie)*ppl/(ppl+bpl)
	return rToMOS(93.2 - id - ieEff)
}

func rToMOS(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}

// codecImpairment gives the E-model's Ie and Bpl of a codec. G.711 with
// PLC: Ie 0, Bpl 25.1 (ITU-T G.113 Appendix I, Tables I.1 and I.3). G.722
// and Opus have no narrowband G.113 values; they are rated like G.711 with
// PLC (their wideband advantage, G.107.1, is not counted), which keeps the
// estimate conservative.
func codecImpairment(string) (ie, bpl float64) { return 0, 25.1 }

// mos estimates a direction's MOS from its counters: delay is half the RTT
// of both legs plus the jitter buffer and one packet of the destination.
func (c *dirCounters) mos(st DirectionStats, other *dirCounters, ptime time.Duration, codec string) float64 {
	delay := (time.Duration(c.rttNS.Load())+time.Duration(other.rttNS.Load()))/2 +
		time.Duration(c.bufferNS.Load()) + ptime
	var loss float64
	if exp := float64(st.Packets) + float64(max(st.Lost, 0)); exp > 0 {
		loss = float64(max(st.Lost, 0)+int64(st.Late)) / exp
	}
	ie, bpl := codecImpairment(codec)
	return EstimateMOS(delay, loss, ie, bpl)
}
