package sip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/tgsip/tgsip/sip/rtpendpoint"
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
	// setLogger gives the endpoint the call's logger (before the first
	// negotiation).
	setLogger(l *slog.Logger)
	// close closes the call's RTP endpoint (its RTCP BYE goes out); the
	// caller releases the port after it. Later negotiations make none.
	close()
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

// Media is a call's media for the b2bua: its RTP endpoint and what the
// last offer/answer exchange agreed (remote address, codec, DTMF payload
// type, ptime, direction). It changes on re-INVITE and UPDATE; MediaChanged
// reports each change.
type Media struct {
	// Endpoint reads and writes the call's plain RTP (ReadRTP, WriteRTP)
	// with SRTP, RTCP, symmetric RTP and rekeying inside, and counts
	// (Stats). It is the same endpoint for the whole call: every
	// renegotiation updates it, and the call's end closes it (ReadRTP
	// and WriteRTP then return errors wrapping net.ErrClosed). Nil until
	// the first negotiation completed: an outbound call before the PBX's
	// answer (or early media), an inbound late-offer call before the ACK.
	Endpoint *rtpendpoint.Endpoint
	// Negotiated is the outcome the endpoint runs on: the bridge reads
	// the codec, ptime, DTMF and direction from it. Its SRTP keys are the
	// endpoint's business; printing or logging them shows the profile
	// only.
	sdp.Negotiated
}

// sdpEngine is the mediaEngine over a sip/sdp Session. It owns the call's
// RTP endpoint: made by the first successful negotiation, updated by every
// later one, closed at the call's end. Its negotiations run on the call's
// loop (and before it starts, for the INVITE's offer); what they agreed is
// published in cur for media(), which any goroutine may call.
type sdpEngine struct {
	sess  *sdp.Session
	port  *RTPPort
	agent string
	opts  rtpendpoint.Options

	// Owned by the loop.
	ep     *rtpendpoint.Endpoint
	closed bool

	cur atomic.Pointer[Media]
}

// defaultEngine makes the SDP session of a new call on its RTP port under
// the call's SRTP policy (its trunk's, or the global one); latch turns on
// symmetric RTP for the call's endpoint (the trunk's symmetric_rtp).
func (s *Server) defaultEngine(port *RTPPort, policy sdp.SRTPPolicy, latch bool) mediaEngine {
	cfg := s.cfg.Media
	cfg.SRTP = policy
	if s.cfg.ExternalMediaAddr.IsValid() {
		cfg.Addr = s.cfg.ExternalMediaAddr
	}
	local := netip.AddrPortFrom(s.cfg.MediaAddr, port.Port())
	return &sdpEngine{
		sess:  sdp.NewSession(cfg, local, nil),
		port:  port,
		agent: s.cfg.UserAgent,
		opts:  rtpendpoint.Options{Latch: latch, Scheduler: s.rtcp, Poller: s.poller(), Logger: s.log},
	}
}

func (e *sdpEngine) negotiationError(err error) error {
	var ne *sdp.NegotiationError
	if errors.As(err, &ne) {
		return &MediaError{Status: ne.Status, Warning: ne.WarningHeader(e.agent), Err: err}
	}
	return err
}

// apply puts a negotiation in force: the first one makes the endpoint,
// later ones update it. Updating the receive side before our answer
// leaves is safe: the endpoint accepts the old keys and address until the
// peer's first packet under the new ones (RFC 4568 §7.1.4, RFC 3264
// §8.3.1). After close only the negotiation is recorded.
func (e *sdpEngine) apply(n sdp.Negotiated) error {
	if !e.closed {
		var err error
		if e.ep == nil {
			var ep *rtpendpoint.Endpoint
			if ep, err = rtpendpoint.New(e.port.RTP, e.port.RTCP, n, e.opts); err == nil {
				e.ep = ep
			}
		} else {
			err = e.ep.Update(n)
		}
		if err != nil {
			// sip/sdp negotiates only what the endpoint implements, so
			// this is a bug, answered like any unusable SDP (488,
			// asMediaError).
			return fmt.Errorf("sip: rtp endpoint: %w", err)
		}
	}
	e.cur.Store(&Media{Endpoint: e.ep, Negotiated: n})
	return nil
}

func (e *sdpEngine) answer(offer []byte) ([]byte, error) {
	ans, n, err := e.sess.Answer(offer)
	if err != nil {
		return nil, e.negotiationError(err)
	}
	if err := e.apply(n); err != nil {
		return nil, err
	}
	return ans, nil
}

func (e *sdpEngine) offer(hold bool) []byte {
	if hold {
		return e.sess.Offer(sdp.SendOnly)
	}
	return e.sess.Offer(sdp.SendRecv)
}

// acceptAnswer takes the answer to our offer, from an 18x, a 2xx or an
// ACK. An answer repeating the one in force (ErrRepeatedAnswer: the 2xx
// after an unreliable 183 with the same SDP) changes nothing.
func (e *sdpEngine) acceptAnswer(answer []byte) error {
	n, err := e.sess.AcceptAnswer(answer)
	if err != nil {
		return e.negotiationError(err)
	}
	return e.apply(n)
}

// previewAnswer takes the early media of an unreliable 183: the endpoint
// runs on it until the 2xx confirms or replaces it.
func (e *sdpEngine) previewAnswer(answer []byte) error {
	n, err := e.sess.PreviewAnswer(answer)
	if err != nil {
		return e.negotiationError(err)
	}
	return e.apply(n)
}

func (e *sdpEngine) media() Media {
	if m := e.cur.Load(); m != nil {
		return *m
	}
	return Media{}
}

func (e *sdpEngine) setLogger(l *slog.Logger) { e.opts.Logger = l }

func (e *sdpEngine) close() {
	e.closed = true
	if e.ep != nil {
		_ = e.ep.Close() // Close reports no error
	}
}
