package tgcall

import (
	"encoding/binary"
	"io"
	"strings"

	"github.com/tgsip/tgsip/telegram/wire"
)

// RTP header extensions tgcalls negotiates for audio
// (research/tgcalls.md §4.5: abs-send-time id 2, transport-wide-cc id 3).
const (
	uriAbsSendTime = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
	uriTransportCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

	opusPayloadType = 111 // the WebRTC media engine's usual Opus PT
)

// channel is one negotiated audio stream.
type channel struct {
	ssrc        uint32
	payloadType uint8
	absSendTime int
	transportCC int
}

// negotiator runs tgcalls' ContentNegotiation for audio only
// (tgcalls v2/ContentNegotiation.cpp, research/tgcalls.md §4.5):
//   - each side offers only its own outgoing (send-only) streams, with a new
//     exchange id per offer;
//   - an offer from the peer is answered with the same exchange id, echoing
//     the peer's SSRCs, with the codecs and extensions both support under the
//     peer's ids; those become our incoming channels;
//   - the answer to our pending offer creates our outgoing channel, only for
//     contents whose SSRC is ours, with the answer's codec;
//   - glare: the caller ignores the callee's offer, the callee drops its own
//     pending offer and answers;
//   - after any NegotiateChannels the side offers again if it still needs to.
type negotiator struct {
	outgoing bool
	rnd      io.Reader
	ssrc     uint32
	pending  *wire.NegotiateChannels
	answered bool     // tgcalls clears _needNegotiation in setAnswer
	out      *channel // ours, once answered
	in       *channel // the peer's audio, once offered
}

func newNegotiator(outgoing bool, rnd io.Reader) *negotiator {
	n := &negotiator{outgoing: outgoing, rnd: rnd}
	for n.ssrc == 0 {
		n.ssrc = n.random()
	}
	return n
}

func (n *negotiator) random() uint32 {
	var b [4]byte
	if _, err := io.ReadFull(n.rnd, b[:]); err != nil {
		return 0
	}
	return binary.BigEndian.Uint32(b[:])
}

// localContent is our outgoing audio as tgcalls describes it: Opus only,
// 48000/2, minptime=10;useinbandfec=1, transport-cc feedback.
func (n *negotiator) localContent() wire.Content {
	return wire.Content{
		Type: "audio",
		SSRC: n.ssrc,
		PayloadTypes: []wire.PayloadType{{
			ID:            opusPayloadType,
			Name:          "opus",
			ClockRate:     48000,
			Channels:      2,
			FeedbackTypes: []wire.FeedbackType{{Type: "transport-cc", Subtype: ""}},
			Parameters:    map[string]string{"minptime": "10", "useinbandfec": "1"},
		}},
		RTPExtensions: []wire.RTPExtension{
			{ID: 2, URI: uriAbsSendTime},
			{ID: 3, URI: uriTransportCC},
		},
	}
}

// offer returns a new offer while our stream was never answered and no
// offer is pending (tgcalls getPendingOffer: _needNegotiation starts true and
// only setAnswer clears it).
func (n *negotiator) offer() *wire.NegotiateChannels {
	if n.answered || n.pending != nil {
		return nil
	}
	id := n.random()
	n.pending = &wire.NegotiateChannels{ExchangeID: id, Contents: []wire.Content{n.localContent()}}
	return n.pending
}

// handle processes a NegotiateChannels and returns the answer to send, if any.
func (n *negotiator) handle(m *wire.NegotiateChannels) *wire.NegotiateChannels {
	if n.pending != nil && m.ExchangeID == n.pending.ExchangeID {
		n.setAnswer(m)
		return nil
	}
	if n.pending != nil {
		if n.outgoing {
			return nil // glare: the caller's offer wins
		}
		n.pending = nil
	}
	return n.answer(m)
}

func (n *negotiator) setAnswer(m *wire.NegotiateChannels) {
	n.pending = nil
	n.answered = true
	n.out = nil
	for _, c := range m.Contents {
		if c.Type != "audio" || c.SSRC != n.ssrc {
			continue
		}
		pt, ok := pickOpus(c.PayloadTypes)
		if !ok {
			continue
		}
		ch := &channel{ssrc: n.ssrc, payloadType: pt.ID}
		ch.absSendTime, ch.transportCC = extensionIDs(c.RTPExtensions)
		n.out = ch
		return
	}
}

func (n *negotiator) answer(m *wire.NegotiateChannels) *wire.NegotiateChannels {
	reply := &wire.NegotiateChannels{ExchangeID: m.ExchangeID}
	for _, c := range m.Contents {
		if c.Type != "audio" {
			continue // no video: not answering it means the peer creates no video sender
		}
		pt, ok := pickOpus(c.PayloadTypes)
		if !ok {
			continue
		}
		abs, tcc := extensionIDs(c.RTPExtensions)
		var exts []wire.RTPExtension
		for _, e := range c.RTPExtensions {
			if e.URI == uriAbsSendTime || e.URI == uriTransportCC {
				exts = append(exts, e)
			}
		}
		reply.Contents = append(reply.Contents, wire.Content{
			Type:          "audio",
			SSRC:          c.SSRC,
			SSRCGroups:    c.SSRCGroups,
			PayloadTypes:  []wire.PayloadType{pt},
			RTPExtensions: exts,
		})
		n.in = &channel{ssrc: c.SSRC, payloadType: pt.ID, absSendTime: abs, transportCC: tcc}
	}
	return reply
}

// pickOpus finds Opus 48000/2 among the peer's payload types, keeping its id.
func pickOpus(pts []wire.PayloadType) (wire.PayloadType, bool) {
	for _, pt := range pts {
		if strings.EqualFold(pt.Name, "opus") && pt.ClockRate == 48000 {
			return pt, true
		}
	}
	return wire.PayloadType{}, false
}

func extensionIDs(exts []wire.RTPExtension) (absSendTime, transportCC int) {
	for _, e := range exts {
		switch e.URI {
		case uriAbsSendTime:
			absSendTime = e.ID
		case uriTransportCC:
			transportCC = e.ID
		}
	}
	return absSendTime, transportCC
}

// audio is what rtpbridge needs to build and recognise packets.
func (n *negotiator) audio() Audio {
	var a Audio
	if n.out != nil {
		a.SSRC, a.PayloadType = n.out.ssrc, n.out.payloadType
		a.AbsSendTimeID, a.TransportCCID = n.out.absSendTime, n.out.transportCC
	}
	if n.in != nil {
		a.RemoteSSRC, a.RemotePayloadType = n.in.ssrc, n.in.payloadType
	}
	return a
}
