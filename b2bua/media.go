package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tgsip/tgsip/rtpbridge"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/sip/sdp"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// The media of a call: both legs adapted to rtpbridge (which imports
// neither), the choice between passthrough and transcoding, and the codecs.
//
//	SIP peer ⇄ rtpendpoint.Endpoint (SDES-SRTP) ⇄ rtpbridge ⇄ tgcall.Conn (DTLS-SRTP) ⇄ Telegram

// TelegramPTime is the frame size the bridge sends toward Telegram when it
// encodes: 20 ms, so transcoding adds no batching latency (tgcalls itself
// sends 60 ms frames, and its decoder takes any size, RFC 6716 §3.2).
const TelegramPTime = 20 * time.Millisecond

// ErrCodecChanged is returned by Media.Update when a new SIP negotiation
// changed the codec or its payload type: the bridge cannot switch codecs in
// place, so the owner makes a new Media (or ends the call).
var ErrCodecChanged = errors.New("b2bua: SIP codec changed in a re-negotiation")

// MediaOptions tune the media of a call. The zero value is usable.
type MediaOptions struct {
	// Opus tunes the Opus encoder toward Telegram when transcoding
	// (complexity, bitrate, expected loss; codec defaults when zero).
	Opus codec.Options
	// MediaTimeout ends the call when a leg sends no RTP for this long
	// (0 = never); see rtpbridge.Config.
	MediaTimeout time.Duration
	// RenderDTMF and DetectDTMF: see rtpbridge.Config.
	RenderDTMF, DetectDTMF bool
	// Jitter bounds the jitter buffer of a transcoding call, and
	// FillAfter is how long a leg may be silent before the bridge sends
	// it silence; zero values take rtpbridge's defaults (rtpbridge.Config).
	Jitter    rtpbridge.JitterConfig
	FillAfter time.Duration
	// OnDTMF receives telephone events; it must not block.
	OnDTMF func(rtpbridge.DTMFEvent)
	// OnRemoteState, if set, is told the Telegram peer's MediaState when
	// Run starts and after each change, once the bridge has taken it in
	// (from Run's goroutine; it must not block).
	OnRemoteState func(tgcall.MediaState)
	// Logger, nil for slog.Default().
	Logger *slog.Logger
}

// SIPFormat describes the SIP leg's negotiated audio to the bridge.
func SIPFormat(neg sdp.Negotiated) (rtpbridge.Format, error) {
	c := neg.Codec
	name := bridgeCodec(c.Name)
	if name == "" {
		return rtpbridge.Format{}, fmt.Errorf("b2bua: SIP codec %s cannot be bridged", c)
	}
	f := rtpbridge.Format{
		Codec:       name,
		ClockRate:   int(c.ClockRate),
		PayloadType: rtpbridge.PayloadType(c.PayloadType),
		Channels:    c.Channels,
		PTime:       sipPTime(neg.PTime),
	}
	// rtpbridge counts event durations in the audio clock, and RFC 4733
	// §2.1 ties the event clock to the audio's; an event format at another
	// rate is left out rather than misread.
	if d := neg.DTMF; d != nil && d.ClockRate == c.ClockRate {
		f.DTMFPayloadType = rtpbridge.PayloadType(d.PayloadType)
	}
	return f, nil
}

// sipPTime is the packetisation toward the SIP leg: the negotiated a=ptime
// when the bridge can send it (10–120 ms in 5 ms steps), else 20 ms, the
// RFC 3551 §4.5 default for G.711 and G.722.
func sipPTime(ms int) time.Duration {
	if ms >= 10 && ms <= 120 && ms%5 == 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 20 * time.Millisecond
}

// bridgeCodec is rtpbridge's name for a SIP codec, "" for one it cannot
// bridge.
func bridgeCodec(name string) string {
	for _, c := range []string{rtpbridge.CodecOpus, rtpbridge.CodecPCMU, rtpbridge.CodecPCMA, rtpbridge.CodecG722} {
		if strings.EqualFold(name, c) {
			return c
		}
	}
	return ""
}

// SIPHold maps the SIP leg's negotiated direction (ours, RFC 3264 §5.1) to
// the bridge's hold: while we may not send to the SIP peer its leg is
// held; while the SIP peer sends us nothing (it put us on hold with
// inactive, or is recvonly) the Telegram leg is held, which tells the
// Telegram user we are muted. Music on hold (the peer sendonly, we
// recvonly) still flows to Telegram.
func SIPHold(d sdp.Direction) (sipHeld, telegramHeld bool) {
	return !d.Sends(), d != sdp.SendRecv && d != sdp.RecvOnly
}

// TelegramFormat describes the Telegram call's audio to the bridge: Opus
// at 48 kHz (RFC 7587 §4.1) with the payload types and our SSRC that the
// call negotiated. Header extensions are not mapped: the Conn adds its
// own (abs-send-time, transport-cc) on write.
func TelegramFormat(a tgcall.Audio) rtpbridge.Format {
	return rtpbridge.Format{
		Codec:             rtpbridge.CodecOpus,
		ClockRate:         48000,
		PayloadType:       rtpbridge.PayloadType(a.PayloadType),
		RemotePayloadType: rtpbridge.PayloadType(a.RemotePayloadType),
		Channels:          2,
		PTime:             TelegramPTime,
		SSRC:              rtpbridge.SSRC(a.SSRC),
	}
}

// TelegramEndpoint adapts a connected call's tgcall.Conn to
// rtpbridge.Endpoint. tgcall.Conn has no read deadline (its reads block in
// the ICE connection), so the bridge stops reading it by closing the
// adapter, which ends the Telegram call through end: the bridge stops only
// when the call's media ends anyway.
type TelegramEndpoint struct {
	conn *tgcall.Conn
	end  func()
	once sync.Once
}

// NewTelegramEndpoint adapts conn; end is called once, from Close, and must
// make conn's ReadRTP return (hang the call up).
func NewTelegramEndpoint(conn *tgcall.Conn, end func()) *TelegramEndpoint {
	return &TelegramEndpoint{conn: conn, end: end}
}

// ReadRTP reads the next RTP packet from the Telegram peer; while the
// Conn pushes it waits, as rtpbridge.Pusher says.
func (e *TelegramEndpoint) ReadRTP(b []byte) (int, error) {
	n, err := e.conn.ReadRTP(b)
	if errors.Is(err, tgcall.ErrPushStopped) {
		return 0, rtpbridge.ErrPushStopped
	}
	return n, err
}

// PushRTP hands the Telegram peer's RTP packets to deliver on the Conn's
// receiving goroutine (rtpbridge.Pusher; on the shared port, its reader).
func (e *TelegramEndpoint) PushRTP(deliver func(b []byte)) (stop func()) {
	return e.conn.PushRTP(deliver)
}

// WriteRTP sends one RTP packet to the Telegram peer.
func (e *TelegramEndpoint) WriteRTP(b []byte) error { return e.conn.WriteRTP(b) }

// RemoteFractionLost is the Telegram peer's last reported fraction lost
// of our stream (RFC 3550 §6.4.1, from its SR/RR); ok is false before any
// report. It makes the bridge drive the Opus encoder's FEC from it.
func (e *TelegramEndpoint) RemoteFractionLost() (uint8, bool) {
	st := e.conn.Stats()
	return st.RemoteFractionLost, st.SenderReportsReceived+st.ReceiverReportsReceived > 0
}

// lossFloor is the least loss the Opus encoder toward Telegram is told to
// expect once the Telegram peer's reports drive it: an expected loss the
// configuration sets explicitly, else none, as WebRTC does (its Opus
// encoder follows the reported uplink loss down to 0, so a clean path
// pays no FEC; docs/codecs.md measures LBRR at 16–23 % of the encoder's
// CPU). Before the first report the encoder keeps its configured hint
// (codec.DefaultPacketLossPercent, none, when 0: TestDefaultFECOnReport).
func lossFloor(configured int) int { return max(configured, 0) }

// sipEndpoint is the SIP leg's endpoint as the bridge sees it: all of
// rtpendpoint.Endpoint (PushRTP, WriteRTP, Close), with ReadRTP mapping
// rtpendpoint.ErrPushStopped to rtpbridge.ErrPushStopped.
type sipEndpoint struct{ *rtpendpoint.Endpoint }

// ReadRTP reads the SIP peer's next RTP packet (see rtpendpoint).
func (e sipEndpoint) ReadRTP(b []byte) (int, error) {
	n, err := e.Endpoint.ReadRTP(b)
	if errors.Is(err, rtpendpoint.ErrPushStopped) {
		return 0, rtpbridge.ErrPushStopped
	}
	return n, err
}

var (
	_ rtpbridge.Pusher = sipEndpoint{}
	_ rtpbridge.Pusher = (*TelegramEndpoint)(nil)
)

// Close ends the Telegram call's media (once).
func (e *TelegramEndpoint) Close() error {
	e.once.Do(e.end)
	return nil
}

// Codecs are the codecs a bridge needs for one SIP format: none for a
// passthrough unless DTMF is rendered or detected.
type Codecs struct {
	// Passthrough: both legs speak Opus, payloads are relayed untouched.
	Passthrough bool
	SIP         LegCodecs
	Telegram    LegCodecs
}

// LegCodecs are one leg's decoder and encoder (nil when not needed).
type LegCodecs struct {
	Decoder rtpbridge.Decoder
	Encoder rtpbridge.Encoder
}

// NewCodecs picks passthrough (the SIP leg negotiated Opus: payloads are
// relayed untouched) or transcoding (PCMU, PCMA, G.722) and builds the
// codecs. When transcoding, Opus is opened at the SIP codec's PCM rate
// (codec.OpusRateFor: 8 kHz for G.711, 16 kHz for G.722) so no resampler
// runs. A passthrough gets an Opus encoder only to render DTMF and a
// decoder only to detect it.
func NewCodecs(sip rtpbridge.Format, opt MediaOptions) (Codecs, error) {
	var c Codecs
	if sip.IsOpus() {
		c.Passthrough = true
		var err error
		if opt.RenderDTMF {
			if c.Telegram.Encoder, err = codec.NewOpusEncoder(opt.Opus); err != nil {
				return Codecs{}, fmt.Errorf("b2bua: opus encoder: %w", err)
			}
		}
		if opt.DetectDTMF {
			if c.Telegram.Decoder, err = codec.NewOpusDecoder(48000); err != nil {
				return Codecs{}, fmt.Errorf("b2bua: opus decoder: %w", err)
			}
		}
		return c, nil
	}
	var err error
	if c.SIP.Decoder, err = codec.NewDecoder(sip.Codec, sip.ClockRate, codec.Options{}); err != nil {
		return Codecs{}, fmt.Errorf("b2bua: SIP decoder: %w", err)
	}
	if c.SIP.Encoder, err = codec.NewEncoder(sip.Codec, sip.ClockRate, codec.Options{}); err != nil {
		return Codecs{}, fmt.Errorf("b2bua: SIP encoder: %w", err)
	}
	o := opt.Opus
	o.SampleRate = codec.OpusRateFor(sip.Codec)
	if c.Telegram.Decoder, err = codec.NewOpusDecoder(o.SampleRate); err != nil {
		return Codecs{}, fmt.Errorf("b2bua: opus decoder: %w", err)
	}
	if c.Telegram.Encoder, err = codec.NewOpusEncoder(o); err != nil {
		return Codecs{}, fmt.Errorf("b2bua: opus encoder: %w", err)
	}
	return c, nil
}

// Media is the media of one bridged call: the SIP leg's endpoint, the
// Telegram call's Conn and the rtpbridge.Bridge between them.
type Media struct {
	Bridge  *rtpbridge.Bridge
	sip     *rtpendpoint.Endpoint
	sipFmt  rtpbridge.Format
	conn    *tgcall.Conn
	onState func(tgcall.MediaState)
}

// NewMedia bridges the SIP leg's endpoint (negotiated as neg) with the
// Telegram call's conn. end must end the Telegram call (see
// TelegramEndpoint); the bridge calls it whenever it stops, before Run
// returns its cause. So end should discard with the reason of a call that
// broke (call.HangupWith(tgcall.DiscardDisconnect): a media timeout or a
// failed SIP endpoint), and an owner ending the call normally hangs up
// with its own reason before cancelling Run's context (tgcall keeps the
// first hang-up). Both legs ask for a steady stream (a PBX's RTP timeout,
// tgcalls' own media timeout).
func NewMedia(sip *rtpendpoint.Endpoint, neg sdp.Negotiated, conn *tgcall.Conn, end func(), opt MediaOptions) (*Media, error) {
	sipFmt, err := SIPFormat(neg)
	if err != nil {
		return nil, err
	}
	cs, err := NewCodecs(sipFmt, opt)
	if err != nil {
		return nil, err
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Media{sip: sip, sipFmt: sipFmt, conn: conn, onState: opt.OnRemoteState}
	b, err := rtpbridge.New(rtpbridge.Config{
		SIP: rtpbridge.Leg{Endpoint: sipEndpoint{sip}, Format: sipFmt, NeedsPackets: true,
			Decoder: cs.SIP.Decoder, Encoder: cs.SIP.Encoder},
		Telegram: rtpbridge.Leg{Endpoint: NewTelegramEndpoint(conn, end), Format: TelegramFormat(conn.Audio()), NeedsPackets: true,
			Decoder: cs.Telegram.Decoder, Encoder: cs.Telegram.Encoder},
		MediaTimeout:    opt.MediaTimeout,
		Jitter:          opt.Jitter,
		FillAfter:       opt.FillAfter,
		RenderDTMF:      opt.RenderDTMF,
		DetectDTMF:      opt.DetectDTMF,
		OnDTMF:          opt.OnDTMF,
		OnTelegramMuted: conn.SetMuted,
		LossFloor:       lossFloor(opt.Opus.PacketLossPercent),
		Watch:           m.watchRemoteState,
		Logger:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("b2bua: media bridge: %w", err)
	}
	m.Bridge = b
	m.applyHold(neg.Direction)
	return m, nil
}

// Run relays the call's audio until ctx ends or the bridge stops (see
// rtpbridge.Bridge.Run), and meanwhile reflects the Telegram peer's
// MediaState: a muted peer's silence does not time the call out. The
// bridge's stop closes the SIP endpoint and ends the Telegram call.
func (m *Media) Run(ctx context.Context) error { return m.Bridge.Run(ctx) }

// watchRemoteState hands the Telegram peer's MediaState to the bridge and
// to OnRemoteState, and returns the channel that is closed at its next
// change. The bridge calls it on Run's goroutine when it starts and after
// each change (rtpbridge.Config.Watch), so following the state costs no
// goroutine of its own.
func (m *Media) watchRemoteState() <-chan struct{} {
	changed := m.conn.RemoteStateChanged()
	s := m.conn.RemoteState()
	m.Bridge.SetRemoteMuted(rtpbridge.LegTelegram, s.Muted)
	if m.onState != nil {
		m.onState(s)
	}
	return changed
}

// Update applies a later SIP negotiation (re-INVITE, UPDATE: new keys,
// address or direction) to the endpoint and the bridge's hold. A changed
// codec cannot be applied in place: ErrCodecChanged. A changed ptime or
// telephone-event payload type is not applied either: the bridge keeps
// the first negotiation's (a=ptime is only a recommendation, RFC 8866 §6.4).
func (m *Media) Update(neg sdp.Negotiated) error {
	f, err := SIPFormat(neg)
	if err != nil {
		return err
	}
	if f.Codec != m.sipFmt.Codec || f.PayloadType != m.sipFmt.PayloadType || f.ClockRate != m.sipFmt.ClockRate {
		return ErrCodecChanged
	}
	// For a call of package sip the endpoint already follows neg (sip
	// updates it before reporting the change), and an Update with the
	// same negotiation keeps its contexts; an endpoint the owner made
	// itself is updated here.
	if err := m.sip.Update(neg); err != nil {
		return fmt.Errorf("b2bua: SIP media update: %w", err)
	}
	m.applyHold(neg.Direction)
	return nil
}

func (m *Media) applyHold(d sdp.Direction) {
	sipHeld, tgHeld := SIPHold(d)
	m.Bridge.SetHeld(rtpbridge.LegSIP, sipHeld)
	m.Bridge.SetHeld(rtpbridge.LegTelegram, tgHeld)
}
