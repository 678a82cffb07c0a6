package sip

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/tgsip/tgsip/sip/sdp"
)

// mediaEngine negotiates the SDP of one call over its RTP port. The real
// one wraps sip/sdp's Session; tests may install another.
type mediaEngine interface {
	// answer answers an offer; a *MediaError says which 4xx to send.
	answer(offer []byte) ([]byte, error)
	// offer makes an offer (for a late-offer INVITE or our re-INVITE);
	// hold asks for sendonly.
	offer(hold bool) []byte
	// acceptAnswer takes the peer's answer to our last offer. An answer
	// that repeats the one in force returns sdp.ErrRepeatedAnswer.
	acceptAnswer(answer []byte) error
	// previewAnswer takes the SDP of an unreliable provisional response
	// for early media; the offer stays pending for the 2xx.
	previewAnswer(answer []byte) error
	// media is the endpoint after the last successful negotiation.
	media() Media
}

// MediaError is a failed negotiation: the status to answer (488 …) and an
// RFC 3261 §20.43 Warning value.
type MediaError struct {
	Status  int
	Warning string
	Err     error
}

func (e *MediaError) Error() string {
	if e.Err != nil {
		return "sip: media negotiation: " + e.Err.Error()
	}
	return "sip: media negotiation failed: " + e.Warning
}

func (e *MediaError) Unwrap() error { return e.Err }

// asMediaError turns any negotiation error into a MediaError (488 unless
// the engine said otherwise).
func asMediaError(err error) *MediaError {
	var me *MediaError
	if errors.As(err, &me) {
		return me
	}
	return &MediaError{Status: 488, Warning: `399 tgsip "` + sanitizeHeaderText(err.Error()) + `"`, Err: err}
}

// Media is a call's RTP endpoint for the media bridge: our sockets and
// what the last offer/answer exchange agreed (remote address, codec, DTMF
// payload type, ptime, direction, SDES keys). It changes on re-INVITE and
// UPDATE; OnMedia reports each change.
type Media struct {
	// Conn is our RTP socket; RTCPConn is the RTCP socket (unused when
	// RTCPMux is negotiated).
	Conn     *net.UDPConn
	RTCPConn *net.UDPConn
	sdp.Negotiated
}

// sdpEngine is the mediaEngine over a sip/sdp Session.
type sdpEngine struct {
	sess  *sdp.Session
	port  *RTPPort
	agent string

	mu  sync.Mutex
	neg sdp.Negotiated
}

// defaultEngine makes the SDP session of a new call on its RTP port under
// the call's SRTP policy (its trunk's, or the global one).
func (s *Server) defaultEngine(port *RTPPort, policy sdp.SRTPPolicy) mediaEngine {
	cfg := s.cfg.Media
	cfg.SRTP = policy
	if s.cfg.ExternalMediaAddr.IsValid() {
		cfg.Addr = s.cfg.ExternalMediaAddr
	}
	local := netip.AddrPortFrom(s.cfg.MediaAddr, port.Port())
	return &sdpEngine{sess: sdp.NewSession(cfg, local, nil), port: port, agent: s.cfg.UserAgent}
}

func (e *sdpEngine) negotiationError(err error) error {
	var ne *sdp.NegotiationError
	if errors.As(err, &ne) {
		return &MediaError{Status: ne.Status, Warning: ne.WarningHeader(e.agent), Err: err}
	}
	return err
}

func (e *sdpEngine) answer(offer []byte) ([]byte, error) {
	ans, n, err := e.sess.Answer(offer)
	if err != nil {
		return nil, e.negotiationError(err)
	}
	e.mu.Lock()
	e.neg = n
	e.mu.Unlock()
	return ans, nil
}

func (e *sdpEngine) offer(hold bool) []byte {
	if hold {
		return e.sess.Offer(sdp.SendOnly)
	}
	return e.sess.Offer(sdp.SendRecv)
}

func (e *sdpEngine) acceptAnswer(answer []byte) error {
	n, err := e.sess.AcceptAnswer(answer)
	if err != nil {
		return e.negotiationError(err)
	}
	e.mu.Lock()
	e.neg = n
	e.mu.Unlock()
	return nil
}

func (e *sdpEngine) previewAnswer(answer []byte) error {
	n, err := e.sess.PreviewAnswer(answer)
	if err != nil {
		return e.negotiationError(err)
	}
	e.mu.Lock()
	e.neg = n
	e.mu.Unlock()
	return nil
}

func (e *sdpEngine) media() Media {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Media{Conn: e.port.RTP, RTCPConn: e.port.RTCP, Negotiated: e.neg}
}
