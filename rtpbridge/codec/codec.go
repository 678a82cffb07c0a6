// Package codec holds the audio codecs the media bridge transcodes with when
// the SIP leg has no Opus: G.711 µ-law and A-law and G.722 in pure Go, Opus
// through libopus (cgo), and an integer-ratio polyphase resampler.
//
// Place in the call flow: rtpbridge decodes the SIP leg's payloads
// (PCMU/PCMA/G722) to 16-bit mono PCM, resamples if the Opus side runs at
// another rate, and encodes 20 ms Opus frames toward Telegram; from Telegram
// it decodes Opus frames of any size (tgcalls sends 60 ms), conceals losses
// with Opus in-band FEC or PLC, and encodes the SIP codec at the SIP leg's
// ptime. This package does no I/O, starts no goroutines, and allocates
// nothing per frame: every Decode/Encode/Conceal/Resample writes into
// buffers the caller owns. A codec value is not safe for concurrent use; the
// bridge owns one per call and direction.
//
// Rates: the RTP clock rate of G.722 is 8000 (RFC 3551 §4.5.2, kept for
// historical reasons) although it carries 16 kHz audio; Opus always has
// clock rate 48000 (RFC 7587 §4.1) whatever rate it is decoded at. The PCM
// rate of a codec is its SampleRate(). Opus can be opened at 8, 12, 16, 24
// or 48 kHz; opening it at the SIP codec's rate (OpusRateFor) skips the
// resampler and is cheaper (docs/codecs.md has the numbers).
//
// Gaps: G.711/G.722 concealment is waveform repetition (in the spirit of
// G.711 Appendix I), not the G.722 Appendix III/IV PLC; the G.722 decoder's
// ADPCM state is not re-synchronised after a loss (it adapts back within a
// few milliseconds). Only the 64 kbit/s G.722 mode is offered (the only one
// RTP uses, RFC 3551 §4.5.2).
package codec

import (
	"errors"
	"fmt"
	"strings"
)

// Decoder turns one RTP payload into 16-bit mono PCM at SampleRate().
type Decoder interface {
	// SampleRate is the rate of the PCM Decode and Conceal write.
	SampleRate() int
	// Decode decodes payload into pcm and returns the samples written.
	Decode(payload []byte, pcm []int16) (int, error)
	// Conceal fills pcm with a lost frame of len(pcm) samples. next is the
	// payload that follows the loss, used by Opus in-band FEC, or nil
	// (packet loss concealment from the past only).
	Conceal(next []byte, pcm []int16) (int, error)
}

// Encoder encodes one frame of PCM (len(pcm) samples at SampleRate()) into
// out.
type Encoder interface {
	// SampleRate is the rate of the PCM Encode takes.
	SampleRate() int
	// Encode encodes pcm into out and returns the bytes written.
	Encode(pcm []int16, out []byte) (int, error)
}

// Resampler converts PCM between rates (integer ratios), keeping filter
// state across calls.
type Resampler interface {
	// Resample converts in and writes the result to out, returning the
	// samples written.
	Resample(in []int16, out []int16) int
}

// Codec names as they appear in SDP rtpmap lines (matched case-insensitively).
const (
	PCMU = "PCMU"
	PCMA = "PCMA"
	G722 = "G722"
	Opus = "opus"
)

// Errors returned by the constructors and codecs.
var (
	// ErrUnsupported is returned for a codec name or rate this package lacks.
	ErrUnsupported = errors.New("codec: unsupported")
	// ErrShortBuffer is returned when out or pcm cannot hold the result.
	ErrShortBuffer = errors.New("codec: buffer too short")
	// ErrBadFrame is returned for a frame size the codec cannot take.
	ErrBadFrame = errors.New("codec: bad frame size")
	// ErrEmptyPayload is returned when Decode is given no bytes.
	ErrEmptyPayload = errors.New("codec: empty payload")
)

// Options tunes the encoders and decoders. The zero value gives the
// defaults: Opus at 48 kHz, DefaultOpusBitrate, DefaultComplexity,
// DefaultPacketLossPercent. Only Opus reads it.
type Options struct {
	// SampleRate is the PCM rate an Opus codec is opened at: 8000, 12000,
	// 16000, 24000 or 48000; 0 means 48000. OpusRateFor gives the cheapest
	// choice for a SIP codec.
	SampleRate int
	// Bitrate of the Opus encoder in bit/s, clamped to Telegram's range
	// [MinOpusBitrate, MaxOpusBitrate]; 0 means DefaultOpusBitrate.
	Bitrate int
	// Complexity of the Opus encoder, 1..10; 0 means DefaultComplexity and
	// a negative value asks for libopus complexity 0 (the cheapest).
	Complexity int
	// PacketLossPercent is the expected loss the Opus encoder starts
	// with and sizes its in-band FEC for, 1..100; 0 means
	// DefaultPacketLossPercent and a negative value 0 (libopus then sends
	// no FEC until SetPacketLossPercent says otherwise).
	PacketLossPercent int
}

// Defaults and limits of Options. The bitrate range is Telegram's: tgcalls
// v2 configures its Opus codec with min 16, start 32 and max 32 kbit/s,
// in-band FEC on and 60 ms ptime (tgcalls/v2/InstanceV2Impl.cpp, the
// kCodecParamMinBitrate/StartBitrate/MaxBitrate block).
const (
	MinOpusBitrate     = 16000
	MaxOpusBitrate     = 32000
	DefaultOpusBitrate = 32000
	DefaultComplexity  = 5
	// DefaultPacketLossPercent is 0: no loss expected until the Telegram
	// peer reports some, as WebRTC's Opus encoder in the Telegram apps
	// starts (AudioEncoderOpusImpl: packet_loss_rate_ 0.0, then the
	// receiver's smoothed uplink loss, OnReceivedUplinkPacketLossFraction;
	// the Android app's copy of WebRTC has no minimum-loss field trial,
	// and tgcalls v2, our protocol versions, passes an empty
	// FieldTrialsView, tgcalls/FieldTrialsConfig.h). The 1 % floor
	// (WebRTC-Audio-OpusMinPacketLossRate/Enabled-1) is only set by
	// tgcalls' v1 MediaManager.cpp and its group calls. libopus codes no
	// LBRR at 0 %, which saves 16–23 % of the encoder on a clean path
	// (docs/codecs.md); rtpbridge raises the hint when a report shows loss.
	DefaultPacketLossPercent = 0
)

// ClockRate is the RTP clock rate of a codec (RFC 3551 §4.5, RFC 7587),
// or 0 for an unknown name.
func ClockRate(name string) int {
	switch canonical(name) {
	case PCMU, PCMA, G722:
		return 8000
	case Opus:
		return 48000
	}
	return 0
}

// OpusRateFor is the rate to open Opus at when it is transcoded to or from
// the SIP codec name: the SIP codec's own PCM rate (8000 for G.711, 16000
// for G.722), so no resampler runs and libopus works on fewer samples.
// Unknown names give 48000.
func OpusRateFor(name string) int {
	switch canonical(name) {
	case PCMU, PCMA:
		return 8000
	case G722:
		return 16000
	}
	return 48000
}

// NewDecoder returns a decoder for the RTP payload format name at its RTP
// clockRate (8000 for PCMU, PCMA and G722; 48000 for opus). opts is read by
// Opus only.
func NewDecoder(name string, clockRate int, opts Options) (Decoder, error) {
	c := canonical(name)
	if err := checkClock(name, c, clockRate); err != nil {
		return nil, err
	}
	switch c {
	case PCMU:
		return NewPCMUDecoder(), nil
	case PCMA:
		return NewPCMADecoder(), nil
	case G722:
		return NewG722Decoder(), nil
	default:
		return NewOpusDecoder(opts.SampleRate)
	}
}

// NewEncoder returns an encoder for the RTP payload format name at its RTP
// clockRate. opts is read by Opus only.
func NewEncoder(name string, clockRate int, opts Options) (Encoder, error) {
	c := canonical(name)
	if err := checkClock(name, c, clockRate); err != nil {
		return nil, err
	}
	switch c {
	case PCMU:
		return NewPCMUEncoder(), nil
	case PCMA:
		return NewPCMAEncoder(), nil
	case G722:
		return NewG722Encoder(), nil
	default:
		return NewOpusEncoder(opts)
	}
}

func checkClock(name, c string, clockRate int) error {
	want := ClockRate(c)
	if want == 0 {
		return fmt.Errorf("%w: codec %q", ErrUnsupported, name)
	}
	if clockRate != want {
		return fmt.Errorf("%w: %s clock rate %d (want %d)", ErrUnsupported, c, clockRate, want)
	}
	return nil
}

func canonical(name string) string {
	for _, c := range []string{PCMU, PCMA, G722, Opus} {
		if strings.EqualFold(name, c) {
			return c
		}
	}
	return ""
}

// The concrete codecs satisfy the interfaces the bridge consumes.
var (
	_ Decoder   = (*g711Decoder)(nil)
	_ Decoder   = (*G722Decoder)(nil)
	_ Decoder   = (*OpusDecoder)(nil)
	_ Encoder   = (*g711Encoder)(nil)
	_ Encoder   = (*G722Encoder)(nil)
	_ Encoder   = (*OpusEncoder)(nil)
	_ Resampler = (*PolyResampler)(nil)
)
