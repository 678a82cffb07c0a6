package rtpendpoint

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of an endpoint's counters, one part per direction.
type Stats struct {
	// Sent is our stream toward the peer.
	Sent SendStats
	// Received is the peer's stream toward us.
	Received RecvStats
	// RTCPSent and RTCPReceived count compound RTCP packets; RTCPErrors
	// counts RTCP that was undecryptable, malformed or from a wrong source.
	RTCPSent, RTCPReceived, RTCPErrors uint64
	// SRTPProfile is the protection profile of the current send keys, ""
	// for plain RTP.
	SRTPProfile string
}

// SendStats describe our stream, partly as the peer reports it.
type SendStats struct {
	// Packets and Bytes count the RTP packets sent and their payload
	// octets (what an RTCP sender report counts, RFC 3550 §6.4.1).
	Packets, Bytes uint64
	// HeldDrops counts WriteRTP calls dropped because our direction does
	// not send (hold) or there is no remote address.
	HeldDrops uint64
	// Errors counts packets WriteRTP refused (not RTP) or failed to send.
	Errors uint64
	// ReportsReceived counts the peer's report blocks about our stream.
	ReportsReceived uint64
	// RemoteLost, RemoteFractionLost and RemoteJitter are the peer's view
	// of our stream from its last report block: cumulative loss, loss in
	// its last interval (0–1) and interarrival jitter.
	RemoteLost         int64
	RemoteFractionLost float64
	RemoteJitter       time.Duration
	// RTT is the round-trip time from the last report block that carried
	// an LSR (RFC 3550 §6.4.1); 0 until one arrived.
	RTT time.Duration
}

// RecvStats describe the peer's stream as we receive it.
type RecvStats struct {
	// Packets and Bytes count authenticated RTP packets handed to ReadRTP
	// and their payload octets.
	Packets, Bytes uint64
	// Lost is the cumulative number of packets lost (RFC 3550 §6.4.1:
	// expected minus received, negative with duplicates), over every SSRC
	// the peer used.
	Lost int64
	// FractionLost is the loss in the last report interval (0–1, A.3).
	FractionLost float64
	// Jitter is the interarrival jitter of the current SSRC (A.8).
	Jitter time.Duration
	// SSRC is the peer's current synchronisation source.
	SSRC uint32
	// Dropped packets, by reason: failed SRTP/SRTCP authentication, SRTP
	// replays, malformed or too short, from an address other than the
	// peer's, larger than the caller's buffer.
	AuthFailures, Replayed, Malformed, WrongSource, TooLarge uint64
	// LastPacket is when the last RTP packet was accepted (zero before the
	// first); the bridge's media timeout can watch it.
	LastPacket time.Time
}

// recvStream is the RFC 3550 A.1/A.3/A.8 state of the peer's current SSRC.
type recvStream struct {
	started       bool
	ssrc          uint32
	baseSeq       uint32
	maxSeq        uint16
	cycles        uint32
	badSeq        uint32
	received      uint64
	expectedPrior uint64
	receivedPrior uint64
	jitter        float64 // RTP timestamp units
	lastTransit   int64
	carried       int64 // loss counted before a resynchronisation
}

// RFC 3550 A.1 constants.
const (
	maxDropout  = 3000
	maxMisorder = 100
	seqMod      = 1 << 16
)

func (r *recvStream) reset(ssrc uint32, seq uint16) {
	*r = recvStream{started: true, ssrc: ssrc, baseSeq: uint32(seq), maxSeq: seq, badSeq: seqMod + 1}
}

// updateSeq follows RFC 3550 A.1 (without the probation, which belongs to
// sources not yet validated: SRTP or the address check already did that).
// It reports false for a packet that must not count (a big jump not yet
// confirmed by its successor).
func (r *recvStream) updateSeq(seq uint16) bool {
	delta := seq - r.maxSeq
	switch {
	case delta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += seqMod // wrapped
		}
		r.maxSeq = seq
	case uint32(delta) <= seqMod-maxMisorder:
		// A very large jump: the peer restarted, or one stray packet.
		if uint32(seq) == r.badSeq {
			// Two in a row: resynchronise (A.1 "assume the other side
			// restarted without telling us").
			r.resync(seq)
		} else {
			r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return false
		}
	default:
		// Duplicate or reordered: counted as received (A.3 allows a
		// negative loss for duplicates).
	}
	return true
}

func (r *recvStream) resync(seq uint16) {
	lostBefore := r.lost()
	r.reset(r.ssrc, seq)
	r.carried = lostBefore
}

func (r *recvStream) extMax() uint32 { return r.cycles + uint32(r.maxSeq) }

func (r *recvStream) expected() uint64 { return uint64(r.extMax()-r.baseSeq) + 1 }

// lost is cumulative loss for this SSRC (A.3), including what was carried
// over a resynchronisation.
func (r *recvStream) lost() int64 {
	if !r.started {
		return 0
	}
	return int64(r.expected()) - int64(r.received) + r.carried
}

// interval returns the fraction lost since the previous call (A.3) as the
// 8-bit fixed-point RFC 3550 field and advances the interval.
func (r *recvStream) interval() uint8 {
	expected := r.expected()
	expInt := expected - r.expectedPrior
	recvInt := r.received - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	if expInt == 0 || recvInt >= expInt || int64(expInt) < 0 {
		return 0
	}
	return uint8(((expInt - recvInt) << 8) / expInt)
}

// counters are the endpoint's statistics. The stream and send state are
// under mu, touched once per packet for a few nanoseconds; the drop counters
// are atomics because they are bumped where no lock is held.
type counters struct {
	epoch time.Time // for arrival times in RTP units (A.8)

	mu           sync.Mutex
	rx           recvStream
	lostPrior    int64 // loss of the SSRCs the peer used before rx.ssrc
	rxPackets    uint64
	rxBytes      uint64
	lastRx       time.Time
	fraction     uint8     // rx loss fraction of our last report
	srSSRC       uint32    // sender of the last SR received
	lastSR       uint32    // middle 32 bits of its NTP time (LSR)
	srAt         time.Time // when it arrived
	sendSSRC     uint32
	sendPackets  uint32 // per SSRC, for the SR (RFC 3550 §6.4.1)
	sendOctets   uint32
	txPackets    uint64
	txBytes      uint64
	lastTS       uint32
	lastTSAt     time.Time
	remoteLost   int64
	remoteFrac   uint8
	remoteJitter uint32
	rtt          time.Duration
	reportsIn    uint64

	heldDrops, txErrors                                   atomic.Uint64
	authFailures, replayed, malformed, wrongSource, large atomic.Uint64
	rtcpIn, rtcpOut, rtcpErrors                           atomic.Uint64
}

// received accounts one authenticated RTP packet of payload size n.
// RFC 3550 A.8: transit = arrival - timestamp, both in RTP units;
// J += (|D| - J)/16.
func (c *counters) received(f rtpFields, n int, now time.Time, clock uint32) {
	arrival := now.Sub(c.epoch).Microseconds() * int64(clock) / 1e6
	c.mu.Lock()
	c.rxPackets++
	c.rxBytes += uint64(n)
	c.lastRx = now
	r := &c.rx
	if !r.started || r.ssrc != f.ssrc {
		// A new source (RFC 3550 §8.2 collision or a re-INVITE towards
		// another media server): its loss starts from zero; the loss of
		// the old one is kept in the total.
		c.lostPrior += r.lost()
		r.reset(f.ssrc, f.seq)
		r.lastTransit = arrival - int64(f.ts)
	} else if !r.updateSeq(f.seq) {
		c.mu.Unlock()
		return
	}
	r.received++
	transit := arrival - int64(f.ts)
	d := float64(transit - r.lastTransit)
	if d < 0 {
		d = -d
	}
	r.jitter += (d - r.jitter) / 16
	r.lastTransit = transit
	c.mu.Unlock()
}

// sent accounts one RTP packet sent.
func (c *counters) sent(f rtpFields, payload int, now time.Time) {
	c.mu.Lock()
	c.txPackets++
	c.txBytes += uint64(payload)
	if c.sendSSRC != f.ssrc {
		c.sendSSRC, c.sendPackets, c.sendOctets = f.ssrc, 0, 0
	}
	c.sendPackets++
	c.sendOctets += uint32(payload)
	c.lastTS, c.lastTSAt = f.ts, now
	c.mu.Unlock()
}

// snapshot fills a Stats from the counters; clock converts jitter.
func (c *counters) snapshot(clock uint32) Stats {
	var s Stats
	c.mu.Lock()
	s.Sent = SendStats{
		Packets:            c.txPackets,
		Bytes:              c.txBytes,
		ReportsReceived:    c.reportsIn,
		RemoteLost:         c.remoteLost,
		RemoteFractionLost: float64(c.remoteFrac) / 256,
		RemoteJitter:       rtpDuration(float64(c.remoteJitter), clock),
		RTT:                c.rtt,
	}
	s.Received = RecvStats{
		Packets:      c.rxPackets,
		Bytes:        c.rxBytes,
		Lost:         c.lostPrior + c.rx.lost(),
		FractionLost: float64(c.fraction) / 256,
		Jitter:       rtpDuration(c.rx.jitter, clock),
		SSRC:         c.rx.ssrc,
		LastPacket:   c.lastRx,
	}
	c.mu.Unlock()
	s.Sent.HeldDrops = c.heldDrops.Load()
	s.Sent.Errors = c.txErrors.Load()
	s.Received.AuthFailures = c.authFailures.Load()
	s.Received.Replayed = c.replayed.Load()
	s.Received.Malformed = c.malformed.Load()
	s.Received.WrongSource = c.wrongSource.Load()
	s.Received.TooLarge = c.large.Load()
	s.RTCPSent = c.rtcpOut.Load()
	s.RTCPReceived = c.rtcpIn.Load()
	s.RTCPErrors = c.rtcpErrors.Load()
	return s
}

// rtpDuration converts RTP timestamp units at clock Hz to a duration.
func rtpDuration(units float64, clock uint32) time.Duration {
	if clock == 0 {
		return 0
	}
	return time.Duration(units * float64(time.Second) / float64(clock))
}
