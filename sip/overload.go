package sip

import (
	"bytes"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Overload shedding: 503 before the server collapses.
//
// Past what the machine can serve, a UDP INVITE waits: in the socket's
// receive buffer, then as one of sipgo's goroutines per request waiting
// for the CPU. Once it has waited more than a T1 (500 ms) the caller
// retransmits it, the retransmissions add load, and past that point the
// calls fail by the thousand as their transactions time out
// (docs/benchmarks.md, "Calls per second"). So an INVITE that waited more
// than OverloadDelay (default 2·T1, 1 s) between its read from the socket
// and its handler gets 503 with Retry-After at once (RFC 3261 §21.5.4),
// the cheapest answer there is: no port, no SDP, no call. The default is
// not lower because a server that is late by less still completes its
// calls (the caller's retransmissions are absorbed by the transaction):
// at T1/2 a machine loaded by others refused calls it would have served. The callers whose
// INVITEs were served in time go on; a load balancer in front moves the
// shed calls to another instance, and OPTIONS answers 503 for a second
// after each shed INVITE (availability.go).
//
// sipgo keeps no read time with a request, so the read filter (wire.go),
// which sees every datagram on the reading goroutine just before sipgo
// parses it, writes it into the INVITE as a header of ours, which the
// b2bua does not see (InboundCall.Header). Only the
// last such header counts: a peer's own copy can only make its own INVITE
// look late. Streams (TCP/TLS) have no retransmissions and are not
// stamped.

// rxHeader carries the read time of a datagram, in Unix nanoseconds.
const rxHeader = "X-Tgsip-Rx"

var (
	inviteStart = []byte("INVITE ")
	headerEnd   = []byte("\r\n\r\n")
)

// stampInvite appends to dst the datagram data with rxHeader (now) at the
// end of its header section when data is an INVITE; else data as it is.
func stampInvite(dst, data []byte, now time.Time) []byte {
	if !bytes.HasPrefix(data, inviteStart) {
		return append(dst, data...)
	}
	i := bytes.Index(data, headerEnd)
	if i < 0 {
		return append(dst, data...) // sipgo refuses it anyway
	}
	dst = append(dst, data[:i+2]...)
	dst = append(dst, rxHeader...)
	dst = append(dst, ": "...)
	dst = strconv.AppendInt(dst, now.UnixNano(), 10)
	dst = append(dst, "\r\n"...)
	return append(dst, data[i+2:]...)
}

// takeRxStamp returns the time in the last rxHeader of req. The header
// stays (sipgo's transaction reads the request on goroutines of its own,
// so it is not ours to change); InboundCall.Header hides it.
func takeRxStamp(req *sip.Request) (time.Time, bool) {
	hs := req.GetHeaders(rxHeader)
	if len(hs) == 0 {
		return time.Time{}, false
	}
	v := hs[len(hs)-1].Value()
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// shedLate answers a new INVITE that waited too long since its read with
// 503 (see above); it reports whether it did.
func (s *Server) shedLate(req *sip.Request, tx sip.ServerTransaction, rx time.Time) bool {
	if s.cfg.OverloadDelay <= 0 || rx.IsZero() {
		return false
	}
	late := time.Since(rx)
	if late <= s.cfg.OverloadDelay {
		return false
	}
	s.shed.Add(1)
	now := time.Now().UnixNano()
	last := s.lastShed.Swap(now)
	if now-last > int64(time.Second) {
		s.log.Warn("overloaded: INVITEs refused with 503", "waited", late.Round(time.Millisecond), "overload_delay", s.cfg.OverloadDelay, "shed_so_far", s.shed.Load())
	}
	s.reply(tx, req, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", retryAfter))
	return true
}

// Shed is how many INVITEs were refused with 503 because they waited
// longer than OverloadDelay to be handled.
func (s *Server) Shed() uint64 { return s.shed.Load() }

// shedRecently reports whether an INVITE was shed in the last second.
func (s *Server) shedRecently() bool {
	last := s.lastShed.Load()
	return last != 0 && time.Now().UnixNano()-last < int64(time.Second)
}
