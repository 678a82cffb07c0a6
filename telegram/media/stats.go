package media

import (
	"net"
	"strconv"
	"time"

	"github.com/pion/ice/v4"

	"github.com/tgsip/tgsip/telegram/wire"
)

// Stats is a snapshot of one session's media counters.
type Stats struct {
	PacketsSent, BytesSent         uint64 // RTP, plain size
	PacketsReceived, BytesReceived uint64 // RTP, plain size
	// PacketsLost is the RFC 3550 cumulative loss over all received SSRCs.
	PacketsLost int64
	// Jitter is the largest interarrival jitter among received SSRCs.
	Jitter time.Duration
	// SRTPAuthFailures counts SRTP/SRTCP packets that failed authentication;
	// Dropped counts other undeliverable packets (replays, malformed, too
	// large); EarlyDropped counts media that arrived before our keys.
	SRTPAuthFailures, Dropped, EarlyDropped uint64

	RTCPSent, RTCPReceived               uint64 // RTCP packets (compound members)
	SenderReportsReceived                uint64
	ReceiverReportsReceived              uint64
	TransportCCReceived, TransportCCSent uint64
	NACKsReceived                        uint64
	RTCPErrors                           uint64
	// RemoteLost, RemoteFractionLost and RemoteJitter are the peer's view of
	// our stream from its last report (RTP timestamp units for jitter).
	RemoteLost         int32
	RemoteFractionLost uint8
	RemoteJitter       uint32

	// Selected pair: candidate types ("host", "srflx", "prflx", "relay") and
	// addresses; Relayed is true when either side is a relay (reflector or
	// TURN). Empty before ICE has selected a pair.
	LocalCandidateType, RemoteCandidateType string
	LocalAddress, RemoteAddress             string
	Relayed                                 bool
	// SRTPProfile is the negotiated DTLS-SRTP profile name.
	SRTPProfile string
}

// Stats returns the current counters.
func (s *Session) Stats() Stats {
	st := &s.st
	out := Stats{
		PacketsSent:             st.packetsOut.Load(),
		BytesSent:               st.bytesOut.Load(),
		PacketsReceived:         st.packetsIn.Load(),
		BytesReceived:           st.bytesIn.Load(),
		SRTPAuthFailures:        st.authFailures.Load(),
		Dropped:                 st.dropped.Load(),
		EarlyDropped:            st.earlyDropped.Load(),
		RTCPSent:                st.rtcpOut.Load(),
		RTCPReceived:            st.rtcpIn.Load(),
		SenderReportsReceived:   st.srIn.Load(),
		ReceiverReportsReceived: st.rrIn.Load(),
		TransportCCReceived:     st.twccIn.Load(),
		TransportCCSent:         st.twccOut.Load(),
		NACKsReceived:           st.nackIn.Load(),
		RTCPErrors:              st.rtcpErrors.Load(),
	}
	st.mu.Lock()
	var jitter float64
	for i := range st.nstreams {
		r := &st.streams[i]
		out.PacketsLost += r.lost()
		if r.jitter > jitter {
			jitter = r.jitter
		}
	}
	out.RemoteLost, out.RemoteFractionLost, out.RemoteJitter = st.remoteLost, st.remoteFrac, st.remoteJitter
	st.mu.Unlock()
	out.Jitter = time.Duration(jitter * float64(time.Second) / audioClockRate)
	if k := s.keys.Load(); k != nil {
		out.SRTPProfile = profileName(k.profile)
	}
	if pair, err := s.agent.GetSelectedCandidatePair(); err == nil && pair != nil {
		out.LocalCandidateType = pair.Local.Type().String()
		out.RemoteCandidateType = pair.Remote.Type().String()
		out.LocalAddress = s.candidateAddress(pair.Local, true)
		out.RemoteAddress = s.candidateAddress(pair.Remote, false)
		out.Relayed = pair.Local.Type() == ice.CandidateTypeRelay || pair.Remote.Type() == ice.CandidateTypeRelay
	}
	return out
}

// candidateAddress names a candidate of the selected pair, with the
// reflector hostnames for reflector candidates (the agent hands out copies,
// so they are recognised by type and address).
func (s *Session) candidateAddress(c ice.Candidate, local bool) string {
	if c.Type() == ice.CandidateTypeRelay {
		for _, p := range s.ports {
			if c.Address() != p.addr.Addr().String() || c.Port() != int(p.addr.Port()) {
				continue
			}
			if local {
				return p.hostname()
			}
			if tag := p.remoteTag.Load(); tag != 0 {
				return wire.ReflectorHostname(p.ServerID, tag)
			}
		}
	}
	return net.JoinHostPort(c.Address(), strconv.Itoa(c.Port()))
}
