package codec

import (
	"errors"
	"fmt"

	"gopkg.in/hraban/opus.v2"
)

// Opus through libopus (cgo, Debian's libopus-dev). Only opus.v2's encoder
// and decoder are used, so this builds with or without -tags nolibopusfile
// (the tag drops opus.v2's Ogg reader and its libopusfile dependency).
//
// Settings toward Telegram follow tgcalls v2 (tgcalls/v2/InstanceV2Impl.cpp):
// VoIP application, in-band FEC on, bitrate within 16–32 kbit/s. We send
// 20 ms frames (no batching latency; a tgcalls receiver decodes any Opus
// frame size), while tgcalls itself sends 60 ms (kCodecParamPTime 60).

// maxOpusFrameMs is the longest Opus packet duration, 120 ms (RFC 6716 §3.2.1).
const maxOpusFrameMs = 120

var opusRates = map[int]bool{8000: true, 12000: true, 16000: true, 24000: true, 48000: true}

// OpusDecoder decodes Opus payloads of any frame size and conceals losses
// with in-band FEC (when the next payload is at hand) or PLC.
type OpusDecoder struct {
	dec     *opus.Decoder
	rate    int
	scratch []int16 // for concealing gaps that are not whole 2.5 ms units
}

// NewOpusDecoder opens a mono libopus decoder that outputs PCM at
// sampleRate (8000, 12000, 16000, 24000 or 48000; 0 means 48000).
func NewOpusDecoder(sampleRate int) (*OpusDecoder, error) {
	if sampleRate == 0 {
		sampleRate = 48000
	}
	if !opusRates[sampleRate] {
		return nil, fmt.Errorf("%w: opus rate %d", ErrUnsupported, sampleRate)
	}
	d, err := opus.NewDecoder(sampleRate, 1)
	if err != nil {
		return nil, fmt.Errorf("codec: opus decoder: %w", err)
	}
	return &OpusDecoder{dec: d, rate: sampleRate}, nil
}

// SampleRate is the rate the decoder was opened at.
func (d *OpusDecoder) SampleRate() int { return d.rate }

// Decode decodes one Opus packet; pcm must hold its duration (up to 120 ms
// at SampleRate). A malformed packet gives an error and leaves the decoder
// usable.
func (d *OpusDecoder) Decode(payload []byte, pcm []int16) (int, error) {
	if len(payload) == 0 {
		return 0, ErrEmptyPayload
	}
	if len(pcm) == 0 {
		return 0, ErrShortBuffer
	}
	// opus.v2 passes cap(pcm) to libopus as the room it has: cut the
	// capacity to the caller's length.
	n, err := d.dec.Decode(payload, pcm[:len(pcm):len(pcm)])
	if err != nil {
		return 0, fmt.Errorf("codec: opus decode: %w", err)
	}
	return n, nil
}

// Conceal fills len(pcm) samples of lost audio. With next, the packet that
// follows the loss, libopus recovers the last part from next's in-band FEC
// (LBRR) data and conceals the rest; without next, or when next carries no
// FEC (CELT-only packets) or is malformed, it runs PLC. Any length works:
// libopus conceals whole 2.5 ms units only (opus_decode wants a multiple of
// 2.5 ms for PLC and FEC), so a gap measured from timestamps that is not
// one is concealed rounded up and cut; a gap over 120 ms is concealed in
// 120 ms pieces (libopus fades them to silence).
func (d *OpusDecoder) Conceal(next []byte, pcm []int16) (int, error) {
	if len(pcm) == 0 {
		return 0, ErrBadFrame
	}
	long := d.rate * maxOpusFrameMs / 1000
	out := pcm
	for len(out) > long {
		if err := d.dec.DecodePLC(out[:long:long]); err != nil {
			return 0, fmt.Errorf("codec: opus conceal: %w", err)
		}
		out = out[long:]
	}
	unit := d.rate / 400
	n := (len(out) + unit - 1) / unit * unit
	buf := out[:n:n]
	if n != len(out) {
		if d.scratch == nil {
			d.scratch = make([]int16, long) // once per decoder, only if needed
		}
		buf = d.scratch[:n:n]
	}
	err := errNoFEC
	if len(next) > 0 {
		// A malformed next packet (it will fail its own Decode too) must
		// not cost the lost frame its concealment: PLC then.
		err = d.dec.DecodeFEC(next, buf)
	}
	if err != nil {
		if err := d.dec.DecodePLC(buf); err != nil {
			return 0, fmt.Errorf("codec: opus conceal: %w", err)
		}
	}
	if n != len(out) {
		copy(out, buf)
	}
	return len(pcm), nil
}

var errNoFEC = errors.New("codec: no packet to take FEC from")

// OpusEncoder is a mono libopus encoder in VoIP mode with in-band FEC on.
type OpusEncoder struct {
	enc  *opus.Encoder
	rate int
}

// NewOpusEncoder opens a libopus encoder with opts (SampleRate, Bitrate,
// Complexity, PacketLossPercent; zero fields take the defaults).
func NewOpusEncoder(opts Options) (*OpusEncoder, error) {
	rate := opts.SampleRate
	if rate == 0 {
		rate = 48000
	}
	if !opusRates[rate] {
		return nil, fmt.Errorf("%w: opus rate %d", ErrUnsupported, rate)
	}
	enc, err := opus.NewEncoder(rate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("codec: opus encoder: %w", err)
	}
	e := &OpusEncoder{enc: enc, rate: rate}
	cx := opts.Complexity
	switch {
	case cx == 0:
		cx = DefaultComplexity
	case cx < 0:
		cx = 0
	case cx > 10:
		cx = 10
	}
	if err := enc.SetComplexity(cx); err != nil {
		return nil, fmt.Errorf("codec: opus complexity %d: %w", cx, err)
	}
	// In-band FEC: tgcalls sets kCodecParamUseInbandFec 1; libopus puts
	// LBRR data in SILK frames only when it also expects loss.
	if err := enc.SetInBandFEC(true); err != nil {
		return nil, fmt.Errorf("codec: opus fec: %w", err)
	}
	loss := opts.PacketLossPercent
	if loss == 0 {
		loss = DefaultPacketLossPercent
	}
	if err := e.SetPacketLossPercent(loss); err != nil {
		return nil, err
	}
	br := opts.Bitrate
	if br == 0 {
		br = DefaultOpusBitrate
	}
	if err := e.SetBitrate(br); err != nil {
		return nil, err
	}
	return e, nil
}

// SetBitrate changes the target bitrate, clamped to Telegram's range
// [MinOpusBitrate, MaxOpusBitrate] (the bridge may lower it on loss).
func (e *OpusEncoder) SetBitrate(bps int) error {
	bps = min(max(bps, MinOpusBitrate), MaxOpusBitrate)
	if err := e.enc.SetBitrate(bps); err != nil {
		return fmt.Errorf("codec: opus bitrate %d: %w", bps, err)
	}
	return nil
}

// SetPacketLossPercent tells the encoder the loss to expect (from RTCP
// receiver reports); 0 or less turns the FEC data off, more makes it
// stronger. Values are clamped to 0..100. The FEC data (SILK LBRR) costs
// 16–40 % more encoder CPU whatever the percentage (docs/codecs.md);
// WebRTC, under tgcalls, likewise drives this hint from the loss the
// receiver reports. libopus sends no LBRR at narrowband 16 kbit/s
// whatever the hint.
func (e *OpusEncoder) SetPacketLossPercent(p int) error {
	p = min(max(p, 0), 100)
	if err := e.enc.SetPacketLossPerc(p); err != nil {
		return fmt.Errorf("codec: opus packet loss %d%%: %w", p, err)
	}
	return nil
}

// SampleRate is the rate the encoder was opened at.
func (e *OpusEncoder) SampleRate() int { return e.rate }

// Encode codes one frame: len(pcm) must be an Opus frame size (2.5, 5, 10,
// 20, 40 or 60 ms at SampleRate). out should hold at least 1275 bytes (the
// largest Opus frame); a smaller out caps the packet size.
func (e *OpusEncoder) Encode(pcm []int16, out []byte) (int, error) {
	if !validOpusFrame(len(pcm), e.rate) {
		return 0, ErrBadFrame
	}
	if len(out) == 0 {
		return 0, ErrShortBuffer
	}
	n, err := e.enc.Encode(pcm, out[:len(out):len(out)])
	if err != nil {
		return 0, fmt.Errorf("codec: opus encode: %w", err)
	}
	return n, nil
}

// validOpusFrame reports whether n samples at rate are one Opus frame
// size: 2.5, 5, 10, 20, 40 or 60 ms (RFC 6716 §2.1.4).
func validOpusFrame(n, rate int) bool {
	switch n * 400 / rate {
	case 1, 2, 4, 8, 16, 24:
		return n*400%rate == 0
	}
	return false
}
