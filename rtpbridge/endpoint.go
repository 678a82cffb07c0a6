package rtpbridge

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Endpoint is one leg's RTP socket as the bridge sees it: plain RTP in and
// out (SRTP, ICE and RTCP stay inside the leg). The Telegram call's
// tgcall.Conn and the SIP leg's media endpoint both have this shape.
//
// ReadRTP blocks until a packet arrives and returns its length in b. The
// bridge reads each Endpoint from exactly one goroutine and writes it from
// its one opposite goroutine (plus the silence filler of Run, serialised
// with it), so an Endpoint need not be safe for concurrent reads or for
// concurrent writes.
//
// To stop, the bridge must unblock ReadRTP: if the Endpoint has a
// SetReadDeadline(time.Time) error method the bridge sets a past deadline;
// otherwise, if it is an io.Closer, the bridge closes it; otherwise its
// owner must make ReadRTP return (end the leg) for Run to return.
type Endpoint interface {
	ReadRTP(b []byte) (int, error)
	WriteRTP(b []byte) error
}

// Pusher is an Endpoint that can hand the RTP packets it receives to a
// function on its own receiving goroutine, instead of queueing them for
// ReadRTP: the run-to-completion path of passthrough (read, decrypt,
// rewrite, encrypt, write with no goroutine or channel hop).
type Pusher interface {
	// PushRTP calls deliver with every RTP packet the endpoint receives
	// (plain RTP, exactly what ReadRTP would have returned), on the
	// endpoint's receiving goroutine, until stop is called or the endpoint
	// ends. deliver must not block and must not keep b after it returns;
	// it may call WriteRTP of another endpoint. While pushing, ReadRTP
	// blocks until stop is called (then it returns 0, ErrPushStopped) or the
	// endpoint ends (then it returns the end error as usual), so the bridge
	// can keep one goroutine parked in ReadRTP to learn of the end.
	// stop returns once no deliver call is running and none will start.
	// RTCP, STUN, DTLS and other non-RTP traffic keep being handled inside
	// the endpoint as before.
	PushRTP(deliver func(b []byte)) (stop func())
}

// ErrPushStopped is what ReadRTP returns when PushRTP's stop was called.
var ErrPushStopped = errors.New("rtpbridge: push stopped")

// Decoder turns one RTP payload into 16-bit mono PCM at SampleRate().
type Decoder interface {
	SampleRate() int
	// Decode decodes payload into pcm and returns the samples written.
	Decode(payload []byte, pcm []int16) (int, error)
	// Conceal fills pcm with a lost frame of len(pcm) samples; next is the
	// payload that follows the loss (Opus in-band FEC) or nil (PLC).
	Conceal(next []byte, pcm []int16) (int, error)
}

// Encoder encodes one frame of PCM (len(pcm) samples at SampleRate()) into
// out and returns the payload length.
type Encoder interface {
	SampleRate() int
	Encode(pcm []int16, out []byte) (int, error)
}

// LossReporter is implemented by an Endpoint whose leg learns from its
// peer's RTCP reception reports how much of what the bridge sends toward
// it is lost (the fraction lost of RFC 3550 §6.4.1). The Telegram leg has
// it: tgcall's media reads the peer's receiver reports.
type LossReporter interface {
	// RemoteFractionLost is the fraction lost (in 1/256) of the peer's
	// last report on our stream; ok is false before any report.
	RemoteFractionLost() (fraction uint8, ok bool)
}

// LossAdapter is implemented by an Encoder that sizes its loss protection
// for an expected loss (Opus: the in-band FEC, codec.OpusEncoder).
type LossAdapter interface {
	SetPacketLossPercent(percent int) error
}

// Resampler converts PCM between rates (integer ratios), keeping filter
// state across calls. Resample returns the samples written to out.
type Resampler interface {
	Resample(in []int16, out []int16) int
}

// Codec names as the bridge spells them (the SDP encoding names of RFC 3551
// and RFC 7587, compared case-insensitively).
const (
	CodecOpus = "opus"
	CodecPCMU = "PCMU"
	CodecPCMA = "PCMA"
	CodecG722 = "G722"
)

// PayloadType is an RTP payload type number (0-127).
type PayloadType uint8

// SSRC is an RTP synchronisation source identifier.
type SSRC uint32

// Format is the audio of one leg as negotiated: what the bridge writes in
// the RTP it sends toward that leg and expects in what it receives.
type Format struct {
	// Codec is the encoding name (CodecOpus, CodecPCMU, ...).
	Codec string
	// ClockRate is the RTP timestamp clock (48000 for Opus, 8000 for
	// G.711 and for G.722, RFC 3551 §4.5.2).
	ClockRate int
	// PayloadType is what the bridge sends; RemotePayloadType is what the
	// leg sends to us (0 = the same as PayloadType). Offer/answer normally
	// makes them equal on SIP (RFC 3264 §6.1); on Telegram they are the
	// two sides' own choices.
	PayloadType, RemotePayloadType PayloadType
	// Channels of the RTP stream (Opus says 2 in SDP, RFC 7587 §7; the
	// bridge itself always works in mono).
	Channels int
	// PTime is the packetisation the bridge sends with (0 = 20 ms).
	PTime time.Duration
	// DTMFPayloadType is the telephone-event payload type (RFC 4733), 0 when
	// DTMF events are not negotiated.
	DTMFPayloadType PayloadType
	// SSRC is the source the bridge writes toward this leg (0 = pick one).
	SSRC SSRC
	// Extensions maps header extension ids between the legs: an extension
	// with id k received from the other leg is sent toward this leg with
	// id Extensions[k]; ids not in the map are dropped (RFC 8285 ids are
	// per-session, so nothing passes unmapped: Telegram's abs-send-time and
	// transport-cc ids mean nothing to a PBX).
	Extensions map[uint8]uint8
}

func (f Format) ptime() time.Duration {
	if f.PTime <= 0 {
		return 20 * time.Millisecond
	}
	return f.PTime
}

func (f Format) remotePT() PayloadType {
	if f.RemotePayloadType == 0 {
		return f.PayloadType
	}
	return f.RemotePayloadType
}

// IsOpus says whether the leg's codec is Opus.
func (f Format) IsOpus() bool { return strings.EqualFold(f.Codec, CodecOpus) }

// samples is the number of RTP clock ticks in d.
func (f Format) samples(d time.Duration) uint32 {
	return uint32(int64(f.ClockRate) * int64(d) / int64(time.Second))
}

func (f Format) validate() error {
	if f.Codec == "" {
		return fmt.Errorf("no codec")
	}
	if f.ClockRate <= 0 {
		return fmt.Errorf("%s: clock rate %d", f.Codec, f.ClockRate)
	}
	if f.PayloadType > 127 || f.RemotePayloadType > 127 || f.DTMFPayloadType > 127 {
		return fmt.Errorf("%s: payload type out of range", f.Codec)
	}
	if p := f.ptime(); p < 10*time.Millisecond || p > 120*time.Millisecond || p%(5*time.Millisecond) != 0 {
		return fmt.Errorf("%s: ptime %v", f.Codec, p)
	}
	for k, v := range f.Extensions {
		if k == 0 || v == 0 {
			return fmt.Errorf("%s: extension id mapping %d->%d", f.Codec, k, v)
		}
	}
	return nil
}
