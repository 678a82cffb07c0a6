package sdp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// ErrNoOffer is returned by AcceptAnswer when no offer of ours is waiting
// for an answer.
var ErrNoOffer = errors.New("sdp: answer without a pending offer")

// ErrRepeatedAnswer is returned by AcceptAnswer, with the media in force,
// when the answer repeats the one already taken: same o= session id and
// version. RFC 3264 §8: an unchanged version means an unchanged
// description, so it is not a new answer. A PBX sends it when the 2xx to
// an INVITE repeats the SDP of an earlier 183 (RFC 6337 §3.1).
var ErrRepeatedAnswer = errors.New("sdp: answer repeats the one in force")

// Session is our side of the media session of one SIP dialog. It keeps
// what must stay stable across re-INVITEs: the o= session id and version
// (RFC 3264 §8), our RTP address and our SDES keys. A Session is safe for
// concurrent use, but offer/answer exchanges of a dialog are sequential by
// nature (RFC 3264 §4, RFC 3261 §14.1).
type Session struct {
	mu    sync.Mutex
	cfg   Config
	local netip.AddrPort
	rnd   io.Reader

	id, version uint64
	lastBody    []byte // the last SDP we produced, for RFC 3264 §8 versioning

	keys    []Crypto    // our key per suite, reused by later offers and answers
	remote  *Crypto     // the peer's key in use, to notice when it changes
	pending *offerState // our offer awaiting its answer
	// previewed: pending already has an early answer from an unreliable
	// provisional response (PreviewAnswer); the final one may repeat or
	// replace it.
	previewed bool
	// answerOrigin is the o= session id and version of the last answer
	// taken (preview or final) and answerNeg what it negotiated.
	answerOrigin string
	answerNeg    Negotiated
}

// offerState remembers what we offered, to check the answer against.
type offerState struct {
	dir    Direction
	secure bool     // RTP/SAVP
	crypto []Crypto // our a=crypto lines, tags 1..n
	codecs []Codec  // audio codecs and telephone-events with our PTs
}

// NewSession starts the media side of a dialog. local is our RTP socket
// address (its port goes in m=, cfg.Addr or else its address in c=); rnd is
// the source of the session id and SRTP keys, crypto/rand.Reader when nil.
func NewSession(cfg Config, local netip.AddrPort, rnd io.Reader) *Session {
	if rnd == nil {
		rnd = rand.Reader
	}
	s := &Session{cfg: cfg.normalized(local), local: local, rnd: rnd}
	// RFC 8866 §5.2: sess-id is a numeric string chosen to be unique; an
	// NTP-sized 32-bit value keeps strict parsers happy. The version only
	// has to increase (RFC 3264 §8), so it starts at 1.
	var b [4]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		rand.Read(b[:]) //nolint:errcheck // documented never to return an error
	}
	s.id = uint64(binary.BigEndian.Uint32(b[:]) | 1) // never 0
	s.version = 1
	return s
}

// Offer returns our SDP offer, for an initial INVITE, a 200 OK to a
// bodiless INVITE, or a re-INVITE (dir SendOnly or Inactive puts the peer
// on hold, RFC 3264 §8.4; SendRecv resumes). It lists every configured codec
// in preference order plus telephone-event at each codec clock, a=ptime,
// a=rtcp-mux and, unless SRTP is off, one a=crypto line per configured suite
// (RTP/SAVP when SRTP is required, "optimistic" RTP/AVP when optional). The
// answer goes to AcceptAnswer.
func (s *Session) Offer(dir Direction) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &offerState{dir: dir, secure: s.cfg.SRTP == SRTPRequired}
	need8k, need48k := false, false
	for _, name := range s.cfg.Codecs {
		c := ourCodec(name)
		o.codecs = append(o.codecs, c)
		if c.ClockRate == 48000 {
			need48k = true
		} else {
			need8k = true
		}
	}
	if s.cfg.DTMF {
		// RFC 4733 §2.1 ties the event clock to the audio clock, so
		// each clock in the offer gets its own telephone-event.
		if need8k {
			o.codecs = append(o.codecs, Codec{Name: TelephoneEvent, PayloadType: ptDTMF8k, ClockRate: 8000, Channels: 1, Fmtp: dtmfFmtp})
		}
		if need48k {
			o.codecs = append(o.codecs, Codec{Name: TelephoneEvent, PayloadType: ptDTMF48k, ClockRate: 48000, Channels: 1, Fmtp: dtmfFmtp})
		}
	}
	if s.cfg.SRTP != SRTPOff {
		// RFC 4568 §7.1.1: one line per suite, in our preference order;
		// RFC 4568 §7.1.4 lets a re-offer keep the keys in use. Only the
		// first maxOfferedSuites go out (any subset may be offered): six
		// lines push an INVITE past the 1300 bytes at which RFC 3261
		// §18.1.1 moves it from UDP to TCP, which many PBXs do not listen
		// on. Answers still accept every configured suite.
		suites := s.cfg.Suites
		if len(suites) > maxOfferedSuites {
			suites = suites[:maxOfferedSuites]
		}
		for i, suite := range suites {
			c := s.keyFor(suite)
			c.Tag = i + 1
			o.crypto = append(o.crypto, c)
		}
	}
	s.pending, s.previewed = o, false
	proto := "RTP/AVP"
	if o.secure {
		proto = "RTP/SAVP"
	}
	st := streamSpec{proto: proto, codecs: o.codecs, dir: dir, rtcpMux: true, crypto: o.crypto}
	return s.emit([]streamSpec{st})
}

// keysFor records remote as the peer's crypto in use and returns the SRTP
// keys of both directions. remote's suite must be one we implement.
func (s *Session) keysFor(local, remote Crypto) *SRTPKeys {
	prof, _ := remote.Suite.Profile()
	r := remote
	s.remote = &r
	return &SRTPKeys{
		Profile:  prof,
		LocalKey: local.Key, LocalSalt: local.Salt,
		RemoteKey: remote.Key, RemoteSalt: remote.Salt,
		RemoteMKI: remote.MKI,
	}
}

// maxOfferedSuites is how many crypto lines our offers carry.
const maxOfferedSuites = 2

// keyFor returns our key for suite, drawing one on first use.
func (s *Session) keyFor(suite Suite) Crypto {
	for _, k := range s.keys {
		if k.Suite == suite {
			return k
		}
	}
	k := newCrypto(0, suite, s.rnd)
	s.keys = append(s.keys, k)
	return k
}

// setKey replaces our key for k.Suite.
func (s *Session) setKey(k Crypto) {
	for i := range s.keys {
		if s.keys[i].Suite == k.Suite {
			s.keys[i] = k
			return
		}
	}
	s.keys = append(s.keys, k)
}

// Answer answers a peer's offer (an INVITE or re-INVITE body). It picks
// the first audio stream it can accept and rejects every other m-line with
// port zero (RFC 3264 §6). Within the stream: our most preferred codec
// among those offered, under the offerer's payload type; telephone-event
// when offered and enabled; rtcp-mux when offered; the mirrored direction;
// SDES per the SRTP policy. The error is a *NegotiationError whose status
// and warning the SIP layer sends (488, or 400 for a body that is not SDP).
func (s *Session) Answer(offer []byte) ([]byte, Negotiated, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := parseDescription(offer)
	if err != nil {
		if errors.Is(err, ErrNoAudio) {
			return nil, Negotiated{}, notAcceptable(WarnMediaTypeNotAvailable, "Media type not available: no audio stream")
		}
		return nil, Negotiated{}, &NegotiationError{Status: 400, Code: WarnMiscellaneous, Warning: "Malformed session description"}
	}
	var firstErr *NegotiationError
	for i := range d.lines {
		l := &d.lines[i]
		if l.media != "audio" || l.port == 0 {
			continue
		}
		if l.err != nil {
			if firstErr == nil {
				firstErr = notAcceptable(WarnIncompatibleNetworkAddress, "Incompatible network address: audio stream has no usable c= address")
			}
			continue
		}
		n, st, nerr := s.answerStream(l.audio)
		if nerr != nil {
			if firstErr == nil {
				firstErr = nerr
			}
			continue
		}
		streams := make([]streamSpec, len(d.lines))
		for j := range d.lines {
			if j == i {
				streams[j] = st
			} else {
				streams[j] = rejected(&d.lines[j])
			}
		}
		return s.emit(streams), n, nil
	}
	if firstErr == nil {
		firstErr = notAcceptable(WarnMediaTypeNotAvailable, "Media type not available: no active audio stream")
	}
	return nil, Negotiated{}, firstErr
}

// answerStream negotiates one offered audio stream and commits the keys.
func (s *Session) answerStream(m *Media) (Negotiated, streamSpec, *NegotiationError) {
	var secure bool
	proto := strings.ToUpper(m.Proto) // RFC 8866 §5.14 names are case-insensitive
	switch proto {
	case "RTP/AVP", "RTP/AVPF":
	case "RTP/SAVP", "RTP/SAVPF":
		secure = true
	default:
		// UDP/TLS/RTP/SAVP (DTLS-SRTP), TCP, … — RFC 3264 §6: the
		// answerer rejects a stream whose transport it does not support.
		return Negotiated{}, streamSpec{}, notAcceptable(WarnIncompatibleProtocol, "Incompatible transport protocol: only RTP/AVP and RTP/SAVP with SDES")
	}

	remote, useSRTP, nerr := s.chooseCrypto(m, secure)
	if nerr != nil {
		return Negotiated{}, streamSpec{}, nerr
	}

	codec, ok := s.chooseCodec(m.Codecs)
	if !ok {
		return Negotiated{}, streamSpec{}, notAcceptable(WarnIncompatibleFormat,
			"Incompatible media format: no common codec (we accept "+strings.Join(s.cfg.Codecs, ", ")+")")
	}
	n := Negotiated{Codec: codec, Remote: m.Addr, RemoteRTCP: m.RTCPAddr, RTCPMux: m.RTCPMux}
	st := streamSpec{proto: proto, codecs: []Codec{answerCodec(codec)}, rtcpMux: m.RTCPMux}
	if dtmf, ok := s.chooseDTMF(m.Codecs, codec.ClockRate); ok {
		n.DTMF = &dtmf
		// RFC 4733 §7.1.1: the answer lists the events it accepts; we
		// echo a well-formed offered list, else the default 0-15.
		ans := dtmf
		if !isEventList(ans.Fmtp) {
			ans.Fmtp = "0-15"
		}
		st.codecs = append(st.codecs, ans)
	}
	if n.RTCPMux {
		n.RemoteRTCP = n.Remote // RFC 5761 §5.1.3
	}

	// RFC 3264 §6.1: sendonly is answered recvonly, recvonly sendonly,
	// inactive inactive. RFC 3264 §8.4: c=0.0.0.0 is the older way of
	// saying "do not send to me".
	n.Direction = m.Direction.Answer()
	if m.Addr.Addr().IsUnspecified() {
		n.Direction = n.Direction.restrict(RecvOnly)
	}
	st.dir = n.Direction
	n.PTime = sendPTime(m, s.cfg.PTime)

	if useSRTP {
		local := s.answerKey(remote)
		st.crypto = []Crypto{local}
		n.SRTP = s.keysFor(local, remote) // chooseCrypto only returns supported suites
	} else {
		s.remote = nil
	}
	return n, st, nil
}

// chooseCrypto applies the SRTP policy to an offered stream.
func (s *Session) chooseCrypto(m *Media, secure bool) (Crypto, bool, *NegotiationError) {
	var usable *Crypto
	if s.cfg.SRTP != SRTPOff {
		// RFC 4568 §7.1.1: the offerer lists its crypto lines in order
		// of preference; we take the first one whose suite we allow.
		for i := range m.Crypto {
			c := &m.Crypto[i]
			if slices.Contains(s.cfg.Suites, c.Suite) && sessionParamsOK(c.SessionParams) {
				usable = c
				break
			}
		}
	}
	switch {
	case usable != nil:
		return *usable, true, nil
	case secure && s.cfg.SRTP == SRTPOff:
		return Crypto{}, false, notAcceptable(WarnIncompatibleProtocol, "Incompatible transport protocol: SRTP is disabled")
	case secure:
		// RFC 4568 §7.1.2: with none of the offered crypto attributes
		// acceptable, the answerer rejects the stream.
		return Crypto{}, false, notAcceptable(WarnAttributeNotUnderstood, "Attribute not understood: no supported SRTP crypto suite")
	case s.cfg.SRTP == SRTPRequired:
		return Crypto{}, false, notAcceptable(WarnIncompatibleProtocol, "Incompatible transport protocol: SRTP required")
	}
	// Plain RTP/AVP (its a=crypto lines, if any, are optional to honour).
	return Crypto{}, false, nil
}

// sessionParamsOK reports whether we can honour every SDES session
// parameter of a crypto line. RFC 4568 §6.3: a line with a session
// parameter the answerer does not support must not be accepted. We key
// pion/srtp with the defaults only: no key derivation rate (KDR=0 is the
// default, §6.3.1), everything encrypted and authenticated (§6.3.2,
// §6.3.3), no FEC (§6.3.5). WSH is only a hint for the receiver's replay
// window (§6.3.6), so it is harmless to ignore.
func sessionParamsOK(params []string) bool {
	for _, p := range params {
		switch {
		case p == "KDR=0", strings.HasPrefix(p, "WSH="):
		default:
			return false
		}
	}
	return true
}

// answerKey returns our key for the answer to the remote crypto line: the
// key we already use when the peer keeps its own (a re-INVITE for hold,
// a session refresh), a fresh one of the remote's suite otherwise.
// RFC 4568 §7.1.4: a re-offer with new keys or a new suite starts a new
// cryptographic context, so the answer gets a new key too.
func (s *Session) answerKey(remote Crypto) Crypto {
	var local Crypto
	if s.remote != nil && s.remote.Suite == remote.Suite &&
		bytes.Equal(s.remote.Key, remote.Key) && bytes.Equal(s.remote.Salt, remote.Salt) {
		local = s.keyFor(remote.Suite)
	} else {
		local = newCrypto(0, remote.Suite, s.rnd)
		s.setKey(local)
	}
	// RFC 4568 §7.1.2: the answer carries the tag of the accepted line.
	local.Tag = remote.Tag
	return local
}

// chooseCodec returns the offered format of our most preferred codec.
func (s *Session) chooseCodec(offered []Codec) (Codec, bool) {
	for _, name := range s.cfg.Codecs {
		for _, c := range offered {
			if accepts(c, name) {
				return c, true
			}
		}
	}
	return Codec{}, false
}

// chooseDTMF returns the telephone-event to use with an audio clock: the
// one at the same clock (RFC 4733 §2.1 says the event clock is the audio
// clock), else — for peers that offer Opus with telephone-event/8000 only —
// the first one offered, so DTMF still works; its ClockRate says which
// clock its timestamps use.
func (s *Session) chooseDTMF(offered []Codec, clock uint32) (Codec, bool) {
	if !s.cfg.DTMF {
		return Codec{}, false
	}
	var fallback *Codec
	for i := range offered {
		c := &offered[i]
		if c.Name != TelephoneEvent {
			continue
		}
		if c.ClockRate == clock {
			return *c, true
		}
		if fallback == nil {
			fallback = c
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return Codec{}, false
}

// answerCodec is how the chosen codec appears in our SDP: the offerer's
// payload type and encoding, our own receive preferences for Opus
// (RFC 7587 §7: fmtp parameters describe what the writer receives).
func answerCodec(c Codec) Codec {
	a := c
	a.Fmtp = ""
	if c.Name == Opus {
		a.Fmtp = opusFmtp
	}
	return a
}

// sendPTime is the packetization we send with: the peer's ptime if it
// asked for one (RFC 8866 §6.4: ptime is what the writer wants to
// receive), bounded by its maxptime (§6.5), else ours.
func sendPTime(m *Media, ours int) int {
	p := ours
	if m.PTime > 0 {
		p = m.PTime
	}
	if m.MaxPTime > 0 && p > m.MaxPTime {
		p = m.MaxPTime
	}
	return p
}

// AcceptAnswer checks the peer's answer against our pending offer
// (RFC 3264 §6, §7) and returns the negotiated media. Errors are
// *NegotiationError for an answer we cannot use (the SIP layer then ends
// the dialog), or ErrNoOffer. Either way the offer is no longer pending.
//
// An answer that repeats the one in force (same o= session id and
// version, RFC 3264 §8) returns that media with ErrRepeatedAnswer when no
// new offer waits for an answer, or when the pending offer only has an
// early answer from PreviewAnswer (which it then makes final).
func (s *Session) AcceptAnswer(answer []byte) (Negotiated, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acceptLocked(answer, true)
}

// PreviewAnswer takes the SDP of an unreliable provisional response to
// our offer (183 without 100rel) as the media to use for early media,
// and leaves the offer pending: RFC 3261 §13.2.1 makes only a reliable
// response carry the answer, so the 2xx (AcceptAnswer) either repeats it
// (ErrRepeatedAnswer) or replaces it (RFC 6337 §3.1.1). A preview that
// cannot be used leaves the offer pending too.
func (s *Session) PreviewAnswer(answer []byte) (Negotiated, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acceptLocked(answer, false)
}

// origin is the o= identity of a description for RFC 3264 §8 versioning.
func (d *description) origin() string {
	if d.sessionID == "" || d.version == "" {
		return ""
	}
	return d.sessionID + " " + d.version
}

func (s *Session) acceptLocked(answer []byte, final bool) (Negotiated, error) {
	d, err := parseDescription(answer)
	if err == nil && s.answerOrigin != "" && d.origin() == s.answerOrigin && (s.pending == nil || s.previewed) {
		if final {
			s.pending, s.previewed = nil, false
		}
		return s.answerNeg, ErrRepeatedAnswer
	}
	o := s.pending
	if o == nil {
		return Negotiated{}, ErrNoOffer
	}
	if final {
		s.pending, s.previewed = nil, false
	}
	n, nerr := s.negotiateAnswer(o, d, err)
	if nerr != nil {
		return Negotiated{}, nerr
	}
	if !final {
		s.previewed = true
	}
	s.answerOrigin, s.answerNeg = d.origin(), n
	return n, nil
}

// negotiateAnswer checks a parsed answer (or its parse error) against
// offer o and commits the SRTP keys.
func (s *Session) negotiateAnswer(o *offerState, d *description, err error) (Negotiated, error) {
	if err != nil {
		if errors.Is(err, ErrNoAudio) {
			return Negotiated{}, notAcceptable(WarnMediaTypeNotAvailable, "Media type not available: answer has no audio stream")
		}
		return Negotiated{}, &NegotiationError{Status: 400, Code: WarnMiscellaneous, Warning: "Malformed session description"}
	}
	// RFC 3264 §6: the answer has exactly as many m-lines as the offer,
	// and we offer one.
	if len(d.lines) != 1 || d.lines[0].media != "audio" {
		return Negotiated{}, notAcceptable(WarnMiscellaneous, "Answer does not match the offer's single audio stream")
	}
	l := &d.lines[0]
	if l.port == 0 {
		return Negotiated{}, notAcceptable(WarnMediaTypeNotAvailable, "Media type not available: audio stream rejected")
	}
	if l.err != nil {
		return Negotiated{}, notAcceptable(WarnIncompatibleNetworkAddress, "Incompatible network address: answer has no usable c= address")
	}
	m := l.audio

	local, remote, useSRTP, nerr := s.checkAnswerCrypto(o, m)
	if nerr != nil {
		return Negotiated{}, nerr
	}

	// RFC 3264 §6.1: the answer lists the formats the answerer accepts,
	// most preferred first; we send with its payload type numbers.
	var codec Codec
	found := false
	for _, c := range m.Codecs {
		for _, off := range o.codecs {
			if off.Name != TelephoneEvent && accepts(c, off.Name) {
				codec, found = c, true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return Negotiated{}, notAcceptable(WarnIncompatibleFormat, "Incompatible media format: answer has none of the offered codecs")
	}
	n := Negotiated{Codec: codec, Remote: m.Addr, RemoteRTCP: m.RTCPAddr, RTCPMux: m.RTCPMux}
	if n.RTCPMux {
		n.RemoteRTCP = n.Remote
	}
	if slices.ContainsFunc(o.codecs, func(c Codec) bool { return c.Name == TelephoneEvent }) {
		if dtmf, ok := s.chooseDTMF(m.Codecs, codec.ClockRate); ok {
			n.DTMF = &dtmf
		}
	}
	// RFC 3264 §6.1: the answer's direction is the answerer's view; ours
	// is its mirror, never more than we offered.
	n.Direction = o.dir.restrict(m.Direction.Answer())
	if m.Addr.Addr().IsUnspecified() {
		n.Direction = n.Direction.restrict(RecvOnly)
	}
	n.PTime = sendPTime(m, s.cfg.PTime)
	if useSRTP {
		n.SRTP = s.keysFor(local, remote)
	} else {
		s.remote = nil
	}
	return n, nil
}

// checkAnswerCrypto matches the answer's SDES line to our offer.
func (s *Session) checkAnswerCrypto(o *offerState, m *Media) (local, remote Crypto, use bool, _ *NegotiationError) {
	secure := strings.HasPrefix(strings.ToUpper(m.Proto), "RTP/SAVP")
	if len(o.crypto) == 0 {
		if secure {
			return local, remote, false, notAcceptable(WarnIncompatibleProtocol, "Incompatible transport protocol: answer uses RTP/SAVP, we offered RTP/AVP without keys")
		}
		return local, remote, false, nil // a=crypto in an AVP answer to a keyless offer means nothing
	}
	if len(m.Crypto) == 0 {
		if secure || o.secure || s.cfg.SRTP == SRTPRequired || m.BadCrypto > 0 {
			return local, remote, false, notAcceptable(WarnAttributeNotUnderstood, "Attribute not understood: answer has no usable a=crypto")
		}
		return local, remote, false, nil // optimistic offer answered in the clear
	}
	// RFC 4568 §7.1.3: the answer's single crypto line carries the tag of
	// the offered line it accepts, with the same suite.
	remote = m.Crypto[0]
	for _, c := range o.crypto {
		if c.Tag == remote.Tag && c.Suite == remote.Suite && sessionParamsOK(remote.SessionParams) {
			return c, remote, true, nil
		}
	}
	return local, Crypto{}, false, notAcceptable(WarnAttributeNotUnderstood, "Attribute not understood: answer's a=crypto matches no offered line")
}

// isEventList reports whether s looks like an RFC 4733 §7.1.1 event list
// ("0-15", "0-16,32,36").
func isEventList(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '-' && s[i] != ',' {
			return false
		}
	}
	return true
}
