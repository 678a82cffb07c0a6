package rtpbridge

import (
	"math/rand/v2"
	"time"
)

// RFC 3550 Appendix A.1: a sequence number jump of more than maxDropout
// ahead or maxMisorder behind means the source restarted.
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// outStream is the RTP stream the bridge sends toward one leg: one SSRC
// whose sequence numbers and timestamps never jump back, whatever the
// sources feeding it do.
type outStream struct {
	ssrc SSRC
	seq  uint16 // last sequence number sent
	ts   uint32 // timestamp of the last packet sent
	at   time.Duration
	sent bool
	// resync makes the next packet jump by the wall time since the last
	// one instead of by its own advance (after a break in the stream).
	resync bool
	clock  int
	frame  uint32 // ticks of one ptime, the least advance across a gap
}

func newOutStream(f Format) outStream {
	s := outStream{ssrc: f.SSRC, clock: f.ClockRate, frame: f.samples(f.ptime())}
	if s.ssrc == 0 {
		s.ssrc = SSRC(rand.Uint32() | 1)
	}
	// RFC 3550 §5.1: initial sequence number and timestamp are random.
	s.seq = uint16(rand.Uint32())
	s.ts = rand.Uint32()
	return s
}

// gapTicks is how far the timestamp should move for a packet sent at now
// after a break in the stream: the wall time elapsed since the last packet
// (RTP timestamps follow the sampling clock, RFC 3550 §5.1), and at least
// one frame so that no two packets share a timestamp.
func (s *outStream) gapTicks(now time.Duration) uint32 {
	if !s.sent {
		return 0
	}
	el := uint32(int64(now-s.at) * int64(s.clock) / int64(time.Second))
	if el < s.frame {
		return s.frame
	}
	return el
}

// next takes the next sequence number for a packet the bridge makes
// itself, advance ticks after the previous one.
func (s *outStream) next(advance uint32, now time.Duration) (uint16, uint32) {
	if s.resync {
		advance = max(advance, s.gapTicks(now))
		s.resync = false
	}
	s.seq++
	s.ts += advance
	s.at, s.sent = now, true
	return s.seq, s.ts
}

// relay maps a relayed source's sequence numbers and timestamps onto an
// outStream: out = in + offset, both modulo their width, so wraparound
// needs no special case. A new source SSRC, a restart of the same SSRC or
// a packet the bridge inserted (silence, DTMF) re-anchors the offsets so
// that the output stays continuous.
type relay struct {
	out      *outStream
	anchored bool
	inSSRC   SSRC
	inSeq    uint16 // highest source sequence number seen
	seqOff   uint16
	tsOff    uint32
}

// rewrite returns the output sequence number and timestamp of a source
// packet, received at now.
func (r *relay) rewrite(h *header, now time.Duration) (uint16, uint32) {
	if h.ssrc != r.inSSRC {
		r.anchored = false
	}
	if r.anchored {
		d := h.seq - r.inSeq
		switch {
		case d == 0 || d < maxDropout:
			// In order (or a duplicate): keep the offsets.
		case d > 0xffff-maxMisorder:
			// Reordered within the window: keep the offsets; the far
			// end's jitter buffer puts it back in place.
			return h.seq + r.seqOff, h.ts + r.tsOff
		default:
			r.anchored = false
		}
	}
	if !r.anchored {
		// Continue the output stream: next sequence number, timestamp
		// advanced by the wall time since the last packet sent.
		seq := r.out.seq + 1
		ts := r.out.ts + r.out.gapTicks(now)
		r.seqOff, r.tsOff = seq-h.seq, ts-h.ts
		r.inSSRC, r.anchored = h.ssrc, true
		r.out.resync = false
		r.inSeq = h.seq
	}
	r.inSeq = h.seq
	seq, ts := h.seq+r.seqOff, h.ts+r.tsOff
	r.out.seq, r.out.ts, r.out.at, r.out.sent = seq, ts, now, true
	return seq, ts
}

// reanchor makes the next source packet continue from the output stream's
// current position (after the bridge sent packets of its own).
func (r *relay) reanchor() { r.anchored = false }
